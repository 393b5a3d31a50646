"""RAG retrieval: nbllm's index and query on Chroma, FAISS and LanceDB side by side, against plain
sentence-transformers encoding and exact (numpy) search.

    bench rag index_chunks_per_s_nbllm[_STORE] / _st / index_chunks_per_s_ratio[_STORE]
                                                          indexing (split + embed + store) against
                                                          plain SentenceTransformer.encode of the same
                                                          chunks (target ratio >= 0.9); no suffix: Chroma
    bench rag search_p50_ms[_STORE]_N                     the store's own top-10 search, query vector given
    bench rag reindex_speedup                             first index / re-index of the unchanged corpus
                                                          (target >= 20)
    bench rag query_p50_ms[_STORE]_N / query_p95_ms...    retrieval-only rag.query latency at N chunks
                                                          (embedding the question included)
    bench rag recall_at_10[_STORE]_N                      the store's top-10 against numpy brute force
                                                          (target >= 0.98; goal: FAISS and LanceDB p50
                                                          <= Chroma's at 100k)

The indexing corpus is the shipped corpus's chunks, repeated with a copy number so no text repeats.
For the latency/recall sizes, the collection holds the real minilm embeddings of those chunks plus
synthetic vectors drawn around them (a real vector plus Gaussian noise, renormalised): embedding
100k real chunks takes too long on 2 cores, so the indexing throughput is measured on the real
chunks only (--chunks) and the 10k/100k store figures on these precomputed vectors. Queries are
real embedded questions plus synthetic ones.

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

STORES = ("chroma", "faiss", "lancedb")  # side by side, on the same chunks and vectors

QUESTIONS = [
    "What is LoRA?",
    "How are chunks split?",
    "What does BM25 score?",
    "How many records has Alpaca?",
    "What is groundedness?",
    "Which distance is Chroma's default?",
    "What is a KV cache?",
    "How does DPO use a reference model?",
    "What is HellaSwag?",
    "Why normalise embeddings?",
]


def corpus_chunks(n: int) -> list[str]:
    emb = get_embedder("minilm")
    docs = rag.index(rag.corpus_dir(), "bench-source")  # the shipped corpus, chunked as nbllm does
    base = store.all_rows(store.get_collection("bench-source"), include=("documents",))["documents"]
    rag.drop("bench-source")
    assert docs.total == len(base)
    texts = [f"(copy {i // len(base)}) {base[i % len(base)]}" for i in range(n)]
    return [t for t in texts if emb.tokens(t) <= 128]


def bench_index(texts: list[str], tmp: Path, repeats: int = 1) -> None:
    """Index throughput of each store against plain encoding of the same chunks, best of
    `repeats` interleaved runs (other processes share the CPU); every run embeds from scratch."""
    emb = get_embedder("minilm")
    emb.encode(texts[:64])  # warm both paths
    st_s, ours_s, re_s = [], {s: [] for s in STORES}, []
    for _ in range(repeats):
        start = time.perf_counter()
        emb._st.encode(texts, batch_size=emb.batch_size, convert_to_numpy=True, show_progress_bar=False)
        st_s.append(time.perf_counter() - start)
        for kind in STORES:
            emb.cache = EmbeddingCache("minilm:bench", tmp / f"{uuid.uuid4().hex}.sqlite")  # nothing cached
            start = time.perf_counter()
            first = rag.index(texts, "bench-index", chunk_size=128, overlap=16, store=kind)
            ours_s[kind].append(time.perf_counter() - start)
            assert first.embedded == len(texts)
            if kind == "chroma":
                start = time.perf_counter()
                again = rag.index(texts, "bench-index", chunk_size=128, overlap=16)
                re_s.append(time.perf_counter() - start)
                assert again.added == 0 and again.embedded == 0
            rag.drop("bench-index", store=kind)
    st = min(st_s)
    print(f"bench rag index_chunks {len(texts)}")
    print(f"bench rag index_chunks_per_s_st {len(texts) / st:.1f}")
    for kind in STORES:
        suffix = "" if kind == "chroma" else f"_{kind}"
        print(f"bench rag index_chunks_per_s_nbllm{suffix} {len(texts) / min(ours_s[kind]):.1f}")
        print(f"bench rag index_chunks_per_s_ratio{suffix} {st / min(ours_s[kind]):.3f}")
    print(f"bench rag reindex_seconds {min(re_s):.3f}")
    print(f"bench rag reindex_speedup {min(ours_s['chroma']) / min(re_s):.1f}")


def synthetic(real: np.ndarray, n: int, rng, noise: float = 0.06) -> np.ndarray:
    """Vectors that resemble the real ones: a real vector plus Gaussian noise, renormalised."""
    picks = real[rng.integers(0, len(real), n)]
    out = picks + rng.normal(0.0, noise, picks.shape).astype(np.float32)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def bench_size(size: int, real_texts: list[str], real_vecs: np.ndarray, rng) -> None:
    """Each store in turn holds the same `size` vectors: build time, search and query latency,
    recall@10 against numpy brute force."""
    n_real = min(len(real_texts), size)
    vecs = np.concatenate([real_vecs[:n_real], synthetic(real_vecs, size - n_real, rng)])
    texts = real_texts[:n_real] + [f"synthetic vector {i}" for i in range(size - n_real)]
    ids = [f"{j:08d}" for j in range(size)]
    metas = [{"source": "bench", "page": 0, "offset": j} for j in range(size)]
    emb = get_embedder("minilm")
    queries = np.concatenate([emb.encode(QUESTIONS), synthetic(real_vecs, 90, rng, noise=0.1)])
    truth = [{ids[i] for i in search.top_k(search.distances(vecs, qv)["l2"], ids, 10)} for qv in queries]
    for kind in STORES:
        name = f"bench-{size}"
        if store.exists(name, store=kind):
            store.drop(name, store=kind)
        start = time.perf_counter()
        col = store.open_for_write(name, "minilm", vecs.shape[1], "l2", {}, store=kind)
        batch = store.client().get_max_batch_size() if kind == "chroma" else None
        store.write(col, ids, vecs, texts, metas, batch=batch)
        build_s = time.perf_counter() - start
        store.remember(name, None, None, kind)
        search.WRITES[0] += 1
        search.dense(col, queries[0], 10)  # FAISS builds its index at the first search after a write
        searches, latencies, recall = [], [], []
        for qv, want in zip(queries, truth):
            start = time.perf_counter()
            got = {h["id"] for h in search.dense(col, qv, 10)}
            searches.append(1000 * (time.perf_counter() - start))
            recall.append(len(want & got) / 10)
        for q in range(40):  # a new question each time, so its embedding is part of the latency
            question = f"{QUESTIONS[q % len(QUESTIONS)]} ({kind} {size} {q})"  # never in the embedding cache
            start = time.perf_counter()
            rag.query(question, name, k=10, generate=False, store=kind)
            latencies.append(1000 * (time.perf_counter() - start))
        what = {
            "chroma": "hnsw",
            "faiss": getattr(col, "kind", ""),
            "lancedb": "ivf_flat" if kind == "lancedb" and col.index_type() else "flat",
        }[kind]
        store.drop(name, store=kind)
        suffix = "" if kind == "chroma" else f"_{kind}"
        print(f"bench rag index_{kind}_{size} {what}")
        print(f"bench rag build_seconds{suffix}_{size} {build_s:.1f}")
        print(f"bench rag search_p50_ms{suffix}_{size} {np.percentile(searches[5:], 50):.2f}")
        print(f"bench rag query_p50_ms{suffix}_{size} {np.percentile(latencies[5:], 50):.1f}")
        print(f"bench rag query_p95_ms{suffix}_{size} {np.percentile(latencies[5:], 95):.1f}")
        print(f"bench rag recall_at_10{suffix}_{size} {np.mean(recall):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that the script works")
    parser.add_argument("--chunks", type=int, default=None, help="chunks for the indexing figures (default 1000)")
    parser.add_argument("--sizes", default=None, help="collection sizes for latency/recall (default 10000,100000)")
    args = parser.parse_args()
    chunks = args.chunks or (200 if args.quick else 1000)
    sizes = [int(s) for s in (args.sizes or ("2000,10000" if args.quick else "10000,100000")).split(",")]
    from nbllm.retrieval.stores import faiss as faiss_store, lancedb as lance_store

    print(f"bench rag hnsw {store.HNSW}")
    print(f"bench rag faiss_hnsw {faiss_store.HNSW} above {faiss_store.AUTO_HNSW} chunks")
    print(
        f"bench rag lancedb_ivf_flat nprobes {lance_store.NPROBE_SHARE:.3f} of sqrt(n) partitions "
        f"(at least {lance_store.MIN_NPROBES}) above "
        f"{lance_store.AUTO_ANN} chunks"
    )
    print(
        "bench rag note latency/recall collections: real minilm embeddings of the corpus chunks plus "
        "synthetic vectors drawn around them"
    )
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        texts = corpus_chunks(chunks)
        bench_index(texts, Path(tmp))
        real_vecs = get_embedder("minilm").embed(texts)
        for size in sizes:
            bench_size(size, texts, real_vecs, rng)


if __name__ == "__main__":
    main()
