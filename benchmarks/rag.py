"""RAG retrieval: nbllm's index and query against plain sentence-transformers and exact search.

    bench rag index_chunks_per_s_nbllm / _st / _ratio    indexing (split + embed + store) against
                                                          plain SentenceTransformer.encode of the same
                                                          chunks (target ratio >= 0.9)
    bench rag reindex_speedup                             first index / re-index of the unchanged corpus
                                                          (target >= 20)
    bench rag query_p50_ms_N / query_p95_ms_N             retrieval-only rag.query latency at N chunks
    bench rag recall_at_10_N                              Chroma HNSW top-10 against numpy brute force
                                                          (target >= 0.98)

The indexing corpus is the shipped corpus's chunks, repeated with a copy number so no text repeats.
For the latency/recall sizes, the collection holds the real minilm embeddings of those chunks plus
synthetic vectors drawn around them (a real vector plus Gaussian noise, renormalised): embedding
100k real chunks takes too long on 2 cores. Queries are real embedded questions.

    python benchmarks/rag.py [--quick] [--chunks 2000] [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from nbllm import rag
from nbllm.retrieval import search, store
from nbllm.retrieval.embed import EmbeddingCache, get_embedder

QUESTIONS = ["What is LoRA?", "How are chunks split?", "What does BM25 score?", "How many records has Alpaca?",
             "What is groundedness?", "Which distance is Chroma's default?", "What is a KV cache?",
             "How does DPO use a reference model?", "What is HellaSwag?", "Why normalise embeddings?"]


def corpus_chunks(n: int) -> list[str]:
    emb = get_embedder("minilm")
    docs = rag.index(rag.corpus_dir(), "bench-source")  # the shipped corpus, chunked as nbllm does
    base = store.all_rows(store.get_collection("bench-source"), include=("documents",))["documents"]
    rag.drop("bench-source")
    assert docs.total == len(base)
    texts = [f"(copy {i // len(base)}) {base[i % len(base)]}" for i in range(n)]
    return [t for t in texts if emb.tokens(t) <= 128]


def bench_index(texts: list[str], tmp: Path, repeats: int = 2) -> None:
    """Best of `repeats` interleaved runs each (other processes share the CPU)."""
    emb = get_embedder("minilm")
    emb.encode(texts[:64])  # warm both paths
    st_s, ours_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        emb._st.encode(texts, batch_size=emb.batch_size, convert_to_numpy=True, show_progress_bar=False)
        st_s.append(time.perf_counter() - start)
        emb.cache = EmbeddingCache("minilm:bench", tmp / f"{uuid.uuid4().hex}.sqlite")  # nothing cached
        start = time.perf_counter()
        first = rag.index(texts, "bench-index", chunk_size=128, overlap=16)
        ours_s.append(time.perf_counter() - start)
        assert first.embedded == len(texts)
        start = time.perf_counter()
        again = rag.index(texts, "bench-index", chunk_size=128, overlap=16)
        re_s = time.perf_counter() - start
        assert again.added == 0 and again.embedded == 0
        rag.drop("bench-index")
    st_s, ours_s = min(st_s), min(ours_s)
    print(f"bench rag index_chunks {len(texts)}")
    print(f"bench rag index_chunks_per_s_st {len(texts) / st_s:.1f}")
    print(f"bench rag index_chunks_per_s_nbllm {len(texts) / ours_s:.1f}")
    print(f"bench rag index_chunks_per_s_ratio {st_s / ours_s:.3f}")
    print(f"bench rag reindex_seconds {re_s:.3f}")
    print(f"bench rag reindex_speedup {ours_s / re_s:.1f}")


def synthetic(real: np.ndarray, n: int, rng, noise: float = 0.06) -> np.ndarray:
    """Vectors that resemble the real ones: a real vector plus Gaussian noise, renormalised."""
    picks = real[rng.integers(0, len(real), n)]
    out = picks + rng.normal(0.0, noise, picks.shape).astype(np.float32)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def bench_size(size: int, real_texts: list[str], real_vecs: np.ndarray, rng) -> None:
    name = f"bench-{size}"
    if name in store.names(store.client()):
        store.client().delete_collection(name)
    col = store.open_for_write(name, "minilm", real_vecs.shape[1], "l2", {}, None, None)
    n_real = min(len(real_texts), size)
    vecs = np.concatenate([real_vecs[:n_real], synthetic(real_vecs, size - n_real, rng)])
    texts = real_texts[:n_real] + [f"synthetic vector {i}" for i in range(size - n_real)]
    batch = store.client().get_max_batch_size()
    start = time.perf_counter()
    for i in range(0, size, batch):
        col.add(ids=[f"{j:08d}" for j in range(i, min(size, i + batch))], embeddings=vecs[i:i + batch],
                documents=texts[i:i + batch], metadatas=[{"source": "bench", "page": 0, "offset": j}
                                                        for j in range(i, min(size, i + batch))])
    build_s = time.perf_counter() - start
    store.remember(name, None, None)
    search.WRITES[0] += 1
    latencies = []
    for q in range(60):  # a new question each time, so its embedding is part of the latency
        question = f"{QUESTIONS[q % len(QUESTIONS)]} ({q})"
        start = time.perf_counter()
        rag.query(question, name, k=10, generate=False)
        latencies.append(1000 * (time.perf_counter() - start))
    emb = get_embedder("minilm")
    queries = np.concatenate([emb.encode(QUESTIONS), synthetic(real_vecs, 90, rng, noise=0.1)])
    ids = [f"{j:08d}" for j in range(size)]
    recall = []
    for qv in queries:
        exact = {ids[i] for i in search.top_k(search.distances(vecs, qv)["l2"], ids, 10)}
        hnsw = {h["id"] for h in search.dense(col, qv, 10)}
        recall.append(len(exact & hnsw) / 10)
    store.client().delete_collection(name)
    print(f"bench rag build_seconds_{size} {build_s:.1f}")
    print(f"bench rag query_p50_ms_{size} {np.percentile(latencies[5:], 50):.1f}")
    print(f"bench rag query_p95_ms_{size} {np.percentile(latencies[5:], 95):.1f}")
    print(f"bench rag recall_at_10_{size} {np.mean(recall):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that the script works")
    parser.add_argument("--chunks", type=int, default=None, help="chunks for the indexing figures (default 2000)")
    parser.add_argument("--sizes", default=None, help="collection sizes for latency/recall (default 10000,100000)")
    args = parser.parse_args()
    chunks = args.chunks or (200 if args.quick else 2000)
    sizes = [int(s) for s in (args.sizes or ("2000,10000" if args.quick else "10000,100000")).split(",")]
    print(f"bench rag hnsw {store.HNSW}")
    print("bench rag note latency/recall collections: real minilm embeddings of the corpus chunks plus "
          "synthetic vectors drawn around them")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        texts = corpus_chunks(chunks)
        bench_index(texts, Path(tmp))
        real_vecs = get_embedder("minilm").embed(texts)
        for size in sizes:
            bench_size(size, texts, real_vecs, rng)


if __name__ == "__main__":
    main()
