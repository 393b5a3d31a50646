"""%rag / %%rag and nbllm.rag: load, split, embed (minilm, cached), store (Chroma: memory,
persistent, server), retrieve (dense, exact, hybrid, rerank), generate with citations."""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from IPython.core.error import UsageError

from nbllm import models, rag
from nbllm.widgets.retrieval import explore
from nbllm.errors import ConfigError, DataError, ModelError, OfflineError, ServerError
from nbllm.retrieval import generate, load, search, split, store
from nbllm.retrieval.embed import EmbeddingCache, get_embedder
from nbllm.testing import register_tiny_model
from pdfwriter import write_pdf

CORPUS = rag.corpus_dir()


@pytest.fixture(scope="module")
def corpus():
    """The shipped corpus indexed once, in memory, as collection 'test-corpus'."""
    report = rag.index(CORPUS, "test-corpus")
    yield report
    rag.drop("test-corpus")


@pytest.fixture(scope="module")
def tiny_lm():
    register_tiny_model("tiny-rag")
    yield "tiny-rag"
    models.unregister("tiny-rag")


@pytest.fixture
def fresh_cache(tmp_path):
    """Give minilm an empty embedding cache for the test, then put the shared one back."""
    emb = get_embedder("minilm")
    saved = emb.cache
    emb.cache = EmbeddingCache(saved.model, tmp_path / "emb.sqlite")
    yield emb
    emb.cache = saved


@pytest.fixture
def docs(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.md").write_text("# Cats\n\nCats are small felines that purr when content.\n")
    (d / "b.txt").write_text("Rust is a systems programming language focused on memory safety.\n")
    (d / "c.html").write_text(
        "<html><head><title>T</title><style>p{color:red}</style>"
        "<script>var hidden = 'SCRIPTTEXT';</script></head><body><p>Volcanoes erupt molten "
        "rock called lava.</p><script>alert('x')</script></body></html>"
    )
    return d


def unique(text: str) -> str:
    return f"{text} ({time.time_ns()})"  # new text: the embedding cache has never seen it


# ---------------------------------------------------------------- load


def test_load_formats_keep_source_and_page(docs, tmp_path):
    write_pdf(docs / "d.pdf", ["The first page talks about glaciers.", "The second page is about deserts."])
    (docs / "e.jsonl").write_text(
        '{"id": 1, "body": "Jupiter is the largest planet."}\n{"id": 2, "body": "Mercury is closest to the sun."}\n'
    )
    (docs / "f.csv").write_text("name,note\nx,Bees make honey.\ny,Ants build colonies.\n")
    (docs / "g.json").write_text(json.dumps({"records": [{"text": "Owls hunt at night."}]}))
    got = load.load(str(docs))
    by = {(d.source, d.page): d.text for d in got.documents}
    assert got.skipped == [] and got.files == 7
    assert "purr" in by[("a.md", None)] and "memory safety" in by[("b.txt", None)]
    assert by[("c.html", None)] == "Volcanoes erupt molten rock called lava."  # no title, style or script
    assert "glaciers" in by[("d.pdf", 1)] and "deserts" in by[("d.pdf", 2)]
    assert by[("e.jsonl", 2)] == "Mercury is closest to the sun."  # the only string field: body
    assert by[("f.csv", 1)] == "Bees make honey." and by[("g.json", 1)] == "Owls hunt at night."
    assert [d.page for d in load.load(str(docs / "e.jsonl"), text_field="body").documents] == [1, 2]
    with pytest.raises(DataError, match="no field 'nope'"):
        load.load(str(docs / "e.jsonl"), text_field="nope")
    assert [d.source for d in load.load(str(docs / "*.md")).documents] == ["a.md"]


def test_load_lists_and_dataframes():
    import pandas as pd

    got = load.load(["alpha text", "beta text"])
    assert [(d.text, d.source, d.page) for d in got.documents] == [("alpha text", "list", 1), ("beta text", "list", 2)]
    df = pd.DataFrame({"content": ["one", "two"], "tag": ["x", "y"]})
    got = load.load(df)
    assert [d.text for d in got.documents] == ["one", "two"] and got.documents[1].meta == {"tag": "y"}


@pytest.mark.slow
def test_bad_files_are_skipped_and_counted(docs):
    (docs / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (docs / "empty.md").write_text("   \n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / "image.png").write_bytes(b"\x89PNG")
    (docs / "bad.jsonl").write_text('{"text": "fine"}\n{not json\n')
    report = rag.index(str(docs), "skips-test")
    try:
        skipped = dict(report.skipped_files)
        assert report.skipped == 5 and report.documents == 3
        assert skipped["latin1.txt"] == "not UTF-8 text" and skipped["empty.md"] == "empty (no text)"
        assert skipped["image.png"].startswith("unsupported type") and "invalid JSON" in skipped["bad.jsonl"]
        assert skipped["broken.pdf"].startswith("unreadable")
        assert "skipped latin1.txt: not UTF-8 text" in repr(report)
    finally:
        rag.drop("skips-test")


# ---------------------------------------------------------------- split


def test_split_never_cuts_words_and_offsets_are_exact():
    text = (CORPUS / "lora.md").read_text()
    emb = get_embedder("minilm")
    chunks = split.split_documents([load.Document(text, "lora.md")], 40, 8, emb.tokens)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.offset : c.offset + len(c.text)] == c.text
        assert c.offset == 0 or not text[c.offset - 1].isalnum()  # starts at a word boundary
        end = c.offset + len(c.text)
        assert end == len(text) or not text[end].isalnum()  # ends at a word boundary
        assert emb.tokens(c.text) <= 40 + 2  # sizes add up per piece; joins may differ by a token
    overlaps = [a for a, b in zip(chunks, chunks[1:]) if b.offset < a.offset + len(a.text)]
    assert overlaps, "with overlap 8 some chunks should repeat the previous chunk's tail"
    assert len({c.id for c in chunks}) == len(chunks)
    assert chunks[0].id == split.chunk_id("lora.md", None, chunks[0].offset)


def test_split_keeps_a_long_word_whole_and_prefers_paragraphs():
    word = "x" * 50
    spans = split.split_text(f"short words here {word} more words", 10, 0, len)
    texts = [f"short words here {word} more words"[a:b] for a, b in spans]
    assert word in texts
    text = "First paragraph here.\n\nSecond one is here."
    assert [text[a:b] for a, b in split.split_text(text, 25, 0, len)] == [
        "First paragraph here.",
        "Second one is here.",
    ]


@pytest.mark.parametrize(
    "size, overlap, message",
    [
        (0, 0, "--chunk-size must be > 0"),
        (10, 10, "--overlap must be >= 0 and smaller"),
        (300, 10, "longer than the embedder's input limit of 256"),
    ],
)
def test_bad_chunk_sizes(size, overlap, message):
    with pytest.raises(ConfigError, match=message):
        rag.index(["some text"], "bad-sizes", chunk_size=size, overlap=overlap)


# ---------------------------------------------------------------- index, cache


@pytest.mark.slow
def test_reindexing_adds_nothing_and_embeds_only_what_changed(tmp_path, fresh_cache):
    d = tmp_path / "corpus"
    shutil.copytree(CORPUS, d)
    first = rag.index(str(d), "reindex-test")
    try:
        assert first.added == first.chunks == first.total and first.embedded == first.chunks
        again = rag.index(str(d), "reindex-test")
        assert (again.added, again.updated, again.removed, again.embedded) == (0, 0, 0, 0)
        assert again.unchanged == first.chunks and again.total == first.total
        lima = d / "lima.txt"
        lima.write_text(lima.read_text().replace("LIMA experiment", "LIMA study") + "\nA new closing paragraph.\n")
        edited = rag.index(str(d), "reindex-test")
        assert edited.updated + edited.added >= 1 and edited.embedded == edited.updated + edited.added
        assert edited.unchanged >= first.chunks - 4
        (d / "lima.txt").write_text("LIMA, shortened to one line.")
        shrunk = rag.index(str(d), "reindex-test")
        assert (
            shrunk.removed >= 1
            and shrunk.total == rag.collections().to_pandas().set_index("collection").loc["reindex-test", "chunks"]
        )
        # a new collection over the same texts finds every vector in the cache
        other = rag.index(str(d), "reindex-other", distance="cosine")
        assert other.added == other.chunks and other.embedded == 0
        rag.drop("reindex-other")
    finally:
        rag.drop("reindex-test")


@pytest.mark.slow
def test_embedding_cache_survives_a_new_process_cache_object(tmp_path, fresh_cache):
    texts = [unique("the cache keeps this vector"), unique("and this one")]
    first = fresh_cache.embed(texts)
    fresh_cache.cache = EmbeddingCache(fresh_cache.cache.model, fresh_cache.cache.path)  # a "new kernel"
    before = fresh_cache.stats["embedded"]
    again = fresh_cache.embed(texts)
    assert fresh_cache.stats["embedded"] == before and np.array_equal(first, again)


# ---------------------------------------------------------------- retrieve


@pytest.mark.parametrize(
    "question, source, page",
    [
        ("How many records does the Alpaca dataset have?", "instruction_tuning.md", None),
        ("Which benchmark has grade school math word problems?", "evaluation_benchmarks.pdf", 2),
        ("What does a transformer keep in its KV cache during generation?", "glossary.jsonl", 6),
        ("How does reciprocal rank fusion merge ranked lists?", "hybrid_search.html", None),
        ("What are Chatbot Arena's pairwise human votes turned into?", "chatbot_arena.txt", None),
    ],
)
@pytest.mark.slow
def test_the_right_source_comes_first(corpus, question, source, page):
    res = rag.query(question, "test-corpus", k=3, generate=False)
    top = res.hits.iloc[0]
    assert top.source == source and (page is None or top.page == page)


@pytest.mark.slow
def test_result_contract_for_eval_triad(corpus):
    res = rag.query("What is LoRA?", "test-corpus", k=3, generate=False)
    assert res.question == "What is LoRA?" and res.answer is None
    assert list(res.hits.columns[:7]) == ["rank", "id", "source", "page", "text", "score", "distance"]
    assert res.contexts == list(res.hits.text) and len(res.contexts) == 3
    assert list(res.hits["rank"]) == [1, 2, 3] and res.hits.distance.is_monotonic_increasing
    assert {"collection", "k", "distance", "hybrid", "rerank", "embedder", "model"} <= set(res.config)
    assert res.config["collection"] == "test-corpus" and res.config["embedder"] == "minilm"
    assert repr(res) == repr(rag.query("What is LoRA?", "test-corpus", k=3, generate=False))


def test_where_filter_and_k_clamp(corpus):
    res = rag.query("What is LoRA?", "test-corpus", k=3, generate=False, where='{"source": "chunking.md"}')
    assert set(res.sources) == {"chunking.md"}
    big = rag.query("What is LoRA?", "test-corpus", k=10_000, generate=False)
    assert len(big.hits) == corpus.total and "using k=" in big.notices[0] and "notice:" in repr(big)
    with pytest.raises(ConfigError, match="--k must be >= 1"):
        rag.query("x", "test-corpus", k=0)
    with pytest.raises(DataError, match="no chunk of 'test-corpus' matches"):
        rag.query("What is LoRA?", "test-corpus", generate=False, where={"source": "nope.md"})
    with pytest.raises(ConfigError, match="--where is not valid JSON"):
        rag.query("What is LoRA?", "test-corpus", generate=False, where="{source")


def test_ties_are_ordered_by_id():
    rag.index(["the same sentence", "the same sentence", "the same sentence", "something else"], "ties-test")
    try:
        for _ in range(3):
            res = rag.query("the same sentence", "ties-test", k=3, generate=False)
            assert list(res.hits.id) == sorted(res.hits.id) and res.hits.distance.nunique() == 1
    finally:
        rag.drop("ties-test")


def test_numpy_distances_match_chroma_for_all_three_spaces():
    texts = ["apples and pears", "engines and gears", "rivers and lakes", "pears are fruit"]
    for space in ("l2", "ip", "cosine"):
        rag.index(texts, f"space-{space}", distance=space)
    try:
        for space in ("l2", "ip", "cosine"):
            col = store.get_collection(f"space-{space}")
            qvec = get_embedder("minilm").embed(["fruit"])[0]
            hnsw = search.dense(col, qvec, 4)
            exact = search.exact(col, qvec, 4)
            assert [h["id"] for h in hnsw] == [h["id"] for h in exact]
            for h, e in zip(hnsw, exact):
                assert abs(h["distance"] - e[space]) < 1e-4
            # unit vectors: l2 = 2 - 2 a.b = 2 * ip = 2 * cosine, so all three rank alike
            for e in exact:
                assert abs(e["l2"] - 2 * e["ip"]) < 1e-4 and abs(e["ip"] - e["cosine"]) < 1e-4
                assert e["rank_l2"] == e["rank_ip"] == e["rank_cosine"]
    finally:
        for space in ("l2", "ip", "cosine"):
            rag.drop(f"space-{space}")


def test_distances_disagree_on_vectors_of_different_length():
    rows = np.array([[1.0, 0.0], [3.0, 1.0], [0.6, 0.6]])
    d = search.distances(rows, np.array([1.0, 0.0]))
    assert d["l2"].argmin() == 0 and d["cosine"].argmin() == 0
    assert d["ip"].argmin() == 1  # the inner product favours the long vector
    assert np.allclose(d["ip"], 1 - rows @ [1.0, 0.0])


def test_exact_flag_shows_all_distances_and_hnsw_agrees(corpus):
    res = rag.query("What is the RAG triad?", "test-corpus", k=5, exact=True, generate=False)
    hits = res.hits
    assert {"l2", "ip", "cosine", "rank_l2", "rank_ip", "rank_cosine", "hnsw_rank"} <= set(hits.columns)
    assert list(hits.hnsw_rank) == [1, 2, 3, 4, 5]  # HNSW finds the exact top 5 on this small corpus
    by_cosine = rag.query("What is the RAG triad?", "test-corpus", k=5, distance="cosine", generate=False)
    assert list(by_cosine.hits.id) == list(hits.id)


def test_hybrid_fuses_bm25_with_dense_by_reciprocal_rank(corpus):
    a = [{"id": "x"}, {"id": "y"}, {"id": "z"}]
    b = [{"id": "z"}, {"id": "x"}]
    fused = search.rrf(a, b, k=3)
    assert [h["id"] for h in fused] == ["x", "z", "y"]
    assert abs(fused[0]["score"] - (1 / 61 + 1 / 62)) < 1e-12
    bm = search.bm25(store.get_collection("test-corpus"), "GSM8K arithmetic", 3)
    assert bm[0]["source"] == "evaluation_benchmarks.pdf" and bm[0]["page"] == 2
    assert search.bm25(store.get_collection("test-corpus"), "the of and", 3) == []  # only stopwords
    res = rag.query("GSM8K", "test-corpus", k=3, hybrid=True, generate=False)
    assert res.hits.iloc[0].source == "evaluation_benchmarks.pdf" and res.config["hybrid"] is True
    assert search.matched_terms("GSM8K grade problems", res.contexts[0]) == ["grade", "gsm8k", "problems"]


@pytest.mark.slow
def test_rerank_reorders_candidates(corpus, tiny_lm):
    hits = [{"id": str(i), "text": t} for i, t in enumerate(["aaa", "bbb", "ccc"])]
    out = search.rerank("q", hits, 2, lambda q, texts: [len(texts) - i for i in range(len(texts))][::-1])
    assert [h["id"] for h in out] == ["2", "1"] and out[0]["retrieval_rank"] == 3
    res = rag.query("What is LoRA?", "test-corpus", k=2, rerank=True, model=tiny_lm, generate=False)
    again = rag.query("What is LoRA?", "test-corpus", k=2, rerank=True, model=tiny_lm, generate=False)
    assert len(res.hits) == 2 and "retrieval_rank" in res.hits and list(res.hits.id) == list(again.hits.id)
    assert res.hits.score.is_monotonic_decreasing and res.config["rerank"] == "lm"


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A seeded random BERT cross-encoder (one relevance logit) saved to a folder, with minilm's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("cross-encoder")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
        initializer_range=0.5,
    )  # scores that differ
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(models.minilm_dir()).save_pretrained(folder)
    return str(folder)


def test_rerank_with_a_cross_encoder_folder(corpus, tiny_cross_encoder, monkeypatch):
    from sentence_transformers import CrossEncoder

    res = rag.query("What is LoRA?", "test-corpus", k=3, rerank=True, reranker=tiny_cross_encoder, generate=False)
    assert res.config["rerank"] == tiny_cross_encoder and res.hits.score.is_monotonic_decreasing
    expected = CrossEncoder(tiny_cross_encoder).predict([("What is LoRA?", t) for t in res.contexts])
    assert np.allclose(res.hits.score, expected, atol=1e-5)  # the cross-encoder's own scores, best first
    monkeypatch.setattr(models, "hub_reachable", lambda: False)  # offline: one clear error, no retries
    with pytest.raises(OfflineError, match="reranker 'org/no-such-reranker'"):
        rag.query("What is LoRA?", "test-corpus", k=3, rerank=True, reranker="org/no-such-reranker", generate=False)


def test_lm_scores_prefer_the_passage_that_predicts_the_question(tiny_lm):
    import torch

    model, tok = models.load_model(tiny_lm, device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():  # make the tiny model a copier: the next token repeats a recent one
        for p in model.parameters():
            p.mul_(0.0)
    scores = search.lm_scores(model, tok, "abc", ["abc", "xyz"])
    assert len(scores) == 2 and all(np.isfinite(scores))


# ---------------------------------------------------------------- generate and cite


def test_prompt_numbers_the_chunks_and_model_citations_are_parsed():
    msgs = generate.build_prompt("Why?", ["first chunk", "second chunk"])
    assert msgs[0]["role"] == "system" and "[1] first chunk\n\n[2] second chunk" in msgs[1]["content"]
    rows = generate.model_citations("LoRA freezes W0 [1]. B starts at zero [2, 3]. Nothing here [9].", 3)
    assert [(r["n"], r["by"]) for r in rows] == [(1, "model"), (2, "model"), (3, "model")]


@pytest.mark.slow
def test_similarity_citations_when_the_model_cites_nothing():
    emb = get_embedder("minilm")
    contexts = ["Cats purr when they are content.", "Volcanoes erupt molten rock called lava."]
    rows = generate.similarity_citations("Lava is molten rock from volcanoes. Blue.", contexts, emb.embed)
    assert [(r["n"], r["by"]) for r in rows] == [(2, "similarity")] and rows[0]["similarity"] > 0.5
    assert (
        generate.with_markers("Lava is molten rock from volcanoes. Blue.", rows)
        == "Lava is molten rock from volcanoes [2]. Blue."
    )
    assert generate.similarity_citations("Stock markets rose today on bank news.", contexts, emb.embed) == []


@pytest.mark.slow
def test_generation_with_a_model_name_or_a_result_variable(corpus, tiny_lm):
    res = rag.query("What is LoRA?", "test-corpus", k=2, model=tiny_lm, max_new_tokens=8)
    assert isinstance(res.answer, str) and res.config["model"] == tiny_lm
    assert all(c in ("model", "similarity") for c in res.citations.by)
    assert res.prompt.count("[1]") >= 1 and "[2]" in res.prompt

    class Tuned:  # what %%sft returns: .model, .tokenizer, .template
        model, tokenizer = models.load_model(tiny_lm)
        template = "alpaca"
        config = type("C", (), {"model": "tiny-rag"})()

    res = rag.query("What is LoRA?", "test-corpus", k=2, model=Tuned(), max_new_tokens=8)
    assert "### Instruction" in res.prompt and res.config["model"] == "tiny-rag"
    with pytest.raises(ModelError, match="is an encoder .it makes embeddings., not a causal language model"):
        rag.query("What is LoRA?", "test-corpus", k=2, model="minilm")


@pytest.mark.slow
def test_smollm2_answers_from_the_retrieved_chunk(corpus):
    res = rag.query("How many records does the Alpaca dataset have?", "test-corpus", k=3, max_new_tokens=32)
    assert "52,002" in res.answer or "52002" in res.answer
    assert res.cited and all(1 <= n <= 3 for n in res.cited)
    assert res.hits.source[res.cited[0] - 1] == "instruction_tuning.md"


# ---------------------------------------------------------------- display and widget


def test_retrieved_html_is_escaped_everywhere():
    evil = "<script>alert('rag')</script> <img src=x onerror=alert(1)> lt amp gt"
    rag.index([evil, "harmless text about gardens"], "xss-test")
    try:
        res = rag.query("script alert lt", "xss-test", k=2, generate=False, hybrid=True)
        page = res._repr_html_()
        assert "<script>" not in page and "<img" not in page and "&lt;<mark>script</mark>&gt;" in page
        assert "nbllm-hit" in page and "<mark>lt</mark>" in page and "&<mark>" not in page  # entities intact
        explorer = explore("xss-test")
        explorer.search("script alert")
        assert "<script>" not in explorer.results.value and "&lt;<mark>script</mark>&gt;" in explorer.results.value
    finally:
        rag.drop("xss-test")


def test_explorer_searches_when_the_query_changes(corpus):
    explorer = explore("test-corpus", k=2)
    assert "nbllm-rag-explorer" in explorer._dom_classes and "nbllm-rag-query" in explorer.query._dom_classes
    explorer.query.value = "What is the RAG triad?"
    assert explorer.results.value.count('class="nbllm-hit"') == 2 and explorer.result.sources[0] == "rag_triad.md"
    explorer.k.value = 3
    assert explorer.results.value.count('class="nbllm-hit"') == 3
    explorer.distance.value = "cosine"
    explorer.hybrid.value = True
    assert explorer.result.config["hybrid"] and explorer.result.config["distance"] == "cosine"
    assert repr(explorer) == "RAGExplorer(collection='test-corpus', k=3, distance='cosine')"


# ---------------------------------------------------------------- stores


def test_persistent_collection_survives_a_restart_and_a_failed_run(tmp_path, monkeypatch):
    path = str(tmp_path / "chroma")
    rag.index(["Persistent stores keep data on disk.", "Kernels restart."], "persist-test", persist=path)
    store._CLIENTS.clear()  # a "restart": new clients, nothing remembered
    store._WHERE.clear()
    with pytest.raises(DataError, match="no collection 'persist-test' in memory"):
        rag.query("disk", "persist-test", generate=False)
    res = rag.query("Where is data kept?", "persist-test", persist=path, generate=False)
    assert res.hits.iloc[0].text == "Persistent stores keep data on disk."
    ids = sorted(store.get_collection("persist-test", path).get()["ids"])

    def broken(self, texts):
        raise RuntimeError("embedding failed halfway")

    monkeypatch.setattr(type(get_embedder("minilm")), "embed", broken)
    with pytest.raises(RuntimeError):
        rag.index(["a brand new text"], "persist-test", persist=path)
    with pytest.raises(RuntimeError):
        rag.index(["a brand new text"], "never-created", persist=path)
    monkeypatch.undo()
    assert sorted(store.get_collection("persist-test", path).get()["ids"]) == ids
    assert rag.collections(persist=path).to_pandas().collection.tolist() == ["persist-test"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_chroma(path, port: int):
    """`chroma run` on loopback, once it answers its heartbeat."""
    cli = Path(sys.executable).parent / "chroma"
    if not cli.exists():
        pytest.skip(f"the chroma CLI is not installed next to {sys.executable}")
    proc = subprocess.Popen(
        [str(cli), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import urllib.request

    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None:
                pytest.fail("chroma run exited before it answered")
            time.sleep(0.1)
    _stop(proc)
    pytest.fail("chroma run did not answer its heartbeat in 60 s")


def _index_on_server(ip, url: str, collection: str) -> tuple[str, list[str]]:
    """Index two notes into `collection` on the server; returns a query cell and the chunk it finds."""
    ip.user_ns["server_notes"] = ["Chroma servers keep collections on disk.", "Bread needs flour."]
    ip.run_cell(f"%rag index server_notes --collection {collection} --server {url}")
    cell = f"%%rag --collection {collection} --server {url} --k 1 --no-generate\nWhere are collections kept?"
    kept = ["Chroma servers keep collections on disk."]
    assert ip.run_cell(cell).result.contexts == kept
    return cell, kept


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    port = _free_port()
    proc = _start_chroma(tmp_path_factory.mktemp("server"), port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.mark.slow
def test_server_mode(chroma_server):
    report = rag.index(CORPUS / "rag_triad.md", "server-test", server=chroma_server)
    assert report.total >= 2 and report.where == f"server {chroma_server}"
    store._CLIENTS.clear()
    res = rag.query("What does groundedness measure?", "server-test", server=chroma_server, k=2, generate=False)
    assert res.sources[0] == "rag_triad.md"
    assert "server-test" in rag.collections(server=chroma_server).to_pandas().collection.tolist()
    rag.drop("server-test", server=chroma_server)


def test_unreachable_server_names_the_url():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ServerError, match=f"cannot reach the Chroma server at {url}"):
        rag.index(["x y z"], "nowhere", server=url)


@pytest.mark.slow
def test_a_server_that_dies_mid_session_is_one_line_and_comes_back(ip, tmp_path, capsys):
    """Reached once, then killed: one UsageError line (no traceback) for every kind of call, the
    kernel keeps working, and the same cell works again once the server is back."""
    from IPython.core.interactiveshell import InteractiveShell

    port = _free_port()
    url, folder = f"http://127.0.0.1:{port}", tmp_path / "server"
    proc = _start_chroma(folder, port)
    rag.index(["Local notes stay in this kernel's memory."], "local-notes")
    try:
        cell, kept = _index_on_server(ip, url, "dies-test")
        held = store.get_collection("dies-test", server=url)
        _stop(proc)

        capsys.readouterr()
        shown = InteractiveShell.run_cell(ip, cell)  # the plain shell prints, as a notebook does
        assert isinstance(shown.error_in_exec, UsageError)
        printed = capsys.readouterr()
        assert "Traceback" not in printed.out + printed.err
        assert printed.err.strip().splitlines() == [
            f"UsageError: ServerError: cannot reach the Chroma server at {url} (ConnectError); start it (again) "
            f"with `chroma run --path DIR --host 127.0.0.1 --port {port}`, or fix or drop --server"
        ]
        for line in (
            f"%rag index server_notes --collection dies-test --server {url}",
            f"%rag list --server {url}",
            "%rag drop dies-test",
            "%rag explore --collection dies-test",
        ):  # the last two: remembered URL
            with pytest.raises(UsageError, match=f"cannot reach the Chroma server at {url} \\(Connect"):
                ip.run_cell(line)
        assert ip.run_cell("%%rag --collection local-notes --k 1 --no-generate\nmemory").result.contexts == [
            "Local notes stay in this kernel's memory."
        ]

        proc = _start_chroma(folder, port)  # back on the same port and folder: no kernel restart needed
        assert ip.run_cell(cell).result.contexts == kept
        _stop(proc)
        proc = _start_chroma(tmp_path / "empty", port)  # back, but without the collection
        with pytest.raises(
            UsageError, match=f"no collection 'dies-test' in server {url} .*run %rag index PATH --collection dies-test"
        ):
            ip.run_cell(cell)

        @store.server_errors
        def count(collection, server):  # a collection object from before the restart
            return held.count()

        with pytest.raises(DataError, match=f"no collection 'dies-test' in server {url} any more .*%rag index"):
            count("dies-test", url)
    finally:
        _stop(proc)
        rag.drop("local-notes")
        store._WHERE.pop("dies-test", None)


@pytest.mark.slow
def test_a_hung_server_times_out_in_one_line_and_comes_back(ip, tmp_path, capsys, monkeypatch):
    """A SIGSTOPped server accepts connections but never answers: the cell ends after
    NBLLM_CHROMA_TIMEOUT seconds with one line, and works again once the server continues."""
    import os
    import signal

    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("NBLLM_CHROMA_TIMEOUT", "2")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start_chroma(tmp_path / "server", port)
    try:
        cell, kept = _index_on_server(ip, url, "hang-test")
        assert store._CLIENTS[("server", url)]._server._session.timeout.read == 2

        os.kill(proc.pid, signal.SIGSTOP)
        said = (
            f"UsageError: ServerError: the Chroma server at {url} did not answer within 2 s; check that it is "
            f"running and not stopped or stuck (restart `chroma run --path DIR --host 127.0.0.1 --port {port}`), "
            "or raise NBLLM_CHROMA_TIMEOUT (seconds) for slow requests"
        )
        for _ in range(2):  # a request on the cached client, then a new connection (the hung client was dropped)
            capsys.readouterr()
            shown = InteractiveShell.run_cell(ip, cell)
            assert isinstance(shown.error_in_exec, UsageError)
            printed = capsys.readouterr()
            assert "Traceback" not in printed.out + printed.err
            assert printed.err.strip().splitlines() == [said]
            assert ("server", url) not in store._CLIENTS
        with pytest.raises(ServerError, match=f"server at {url} did not answer within 2 s"):
            rag.query("Where are collections kept?", "hang-test", server=url, k=1, generate=False)

        os.kill(proc.pid, signal.SIGCONT)  # the same cell works again, no kernel restart
        assert ip.run_cell(cell).result.contexts == kept
    finally:
        os.kill(proc.pid, signal.SIGCONT)  # a stopped process would not act on SIGTERM
        _stop(proc)
        store._WHERE.pop("hang-test", None)


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_bad_chroma_timeout_is_one_config_error(ip, monkeypatch, value):
    monkeypatch.setenv("NBLLM_CHROMA_TIMEOUT", value)
    url = f"http://127.0.0.1:{_free_port()}"  # checked before connecting, so no server is needed
    with pytest.raises(
        ConfigError, match=f"NBLLM_CHROMA_TIMEOUT='{value}' is not a number of seconds; set it to a positive number"
    ):
        rag.index(["x y z"], "nowhere", server=url)
    with pytest.raises(UsageError, match="ConfigError: NBLLM_CHROMA_TIMEOUT="):
        ip.run_cell(f"%rag list --server {url}")


# ---------------------------------------------------------------- embedders


@pytest.fixture(scope="module")
def tiny_encoder():
    """A seeded random 2-layer BERT with minilm's tokenizer, registered as an encoder."""

    def load_tiny():
        import torch
        from transformers import AutoTokenizer, BertConfig, BertModel

        tok = AutoTokenizer.from_pretrained(str(models.minilm_dir()))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = BertModel(
                BertConfig(
                    vocab_size=tok.vocab_size,
                    hidden_size=32,
                    num_hidden_layers=2,
                    num_attention_heads=2,
                    intermediate_size=64,
                )
            )
        return model, tok

    models.register("tiny-encoder", load=load_tiny, kind=models.ENCODER)
    yield "tiny-encoder"
    models.unregister("tiny-encoder")


def test_another_embedder_and_the_mismatch_error(tiny_encoder):
    report = rag.index(["one text here", "another text there"], "tiny-emb", embedder=tiny_encoder, chunk_size=64)
    try:
        assert report.embedder == tiny_encoder
        assert rag.collections().to_pandas().set_index("collection").loc["tiny-emb", "dim"] == 32
        assert rag.query("text", "tiny-emb", k=1, generate=False).config["embedder"] == tiny_encoder
        with pytest.raises(ConfigError, match="built with embedder 'tiny-encoder' \\(32-d vectors\\), not 'minilm'"):
            rag.index(["a third text"], "tiny-emb")
        with pytest.raises(ConfigError, match="built with embedder 'tiny-encoder'"):
            rag.query("text", "tiny-emb", embedder="minilm", generate=False)
        with pytest.raises(ConfigError, match="uses distance l2, not cosine"):
            rag.index(["a third text"], "tiny-emb", embedder=tiny_encoder, distance="cosine")
        assert store.get_collection("tiny-emb").count() == 2  # the failed runs changed nothing
    finally:
        rag.drop("tiny-emb")


@pytest.mark.slow
def test_embedder_errors(monkeypatch):
    with pytest.raises(ConfigError, match="'tiny-llama' is a causal language model"):
        get_embedder("tiny-llama")
    with pytest.raises(ModelError, match="unknown embedder 'nope'"):
        get_embedder("nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="could not load hub model 'nbllm-test/no-such-encoder'"):
        get_embedder("nbllm-test/no-such-encoder")


# ---------------------------------------------------------------- magics


@pytest.mark.slow
def test_magics_index_list_ask_drop(ip, tmp_path):
    ip.user_ns["notes"] = ["Magic cells index Python lists.", "Sourdough bread needs a starter."]
    report = ip.run_cell("%rag index notes --collection magic-test --chunk-size 64 --overlap 8").result
    assert report.added == 2 and report.collection == "magic-test"
    assert "magic-test" in repr(ip.run_cell("%rag list").result)
    res = ip.run_cell("%%rag --collection magic-test --k 1 --no-generate --out found\nWhat does bread need?").result
    assert ip.user_ns["found"] is res and res.sources == ["list"] and "Sourdough" in res.contexts[0]
    line = ip.run_cell("%rag What does bread need? --collection magic-test --k 1 --no-generate").result
    assert line.contexts == res.contexts
    filtered = ip.run_cell("%%rag -c magic-test --k 2 --no-generate --where page=1\nbread").result
    assert filtered.contexts == ["Magic cells index Python lists."]
    filtered = ip.run_cell('%%rag -c magic-test --k 2 --no-generate --where \'{"source": "list"}\'\nbread').result
    assert len(filtered.contexts) == 2
    both = ip.run_cell("%%rag -c magic-test --k 2 --no-generate --where source=list,page=2\nbread").result
    assert both.contexts == ["Sourdough bread needs a starter."]
    explorer = ip.run_cell("%rag explore --collection magic-test --out ex").result
    assert ip.user_ns["ex"] is explorer
    ip.run_cell("%rag drop magic-test")
    with pytest.raises(UsageError, match="no collection 'magic-test'"):
        ip.run_cell("%%rag --collection magic-test\nanything")


def test_magic_generates_with_a_result_variable(ip, corpus, tiny_lm):
    holder = type("Tuned", (), {})()
    holder.model, holder.tokenizer = models.load_model(tiny_lm)
    ip.user_ns["tuned"] = holder
    res = ip.run_cell("%%rag --collection test-corpus --k 2 --model tuned --max-new-tokens 6\nWhat is LoRA?").result
    assert isinstance(res.answer, str) and res.config["k"] == 2


@pytest.mark.parametrize(
    "cell, message",
    [
        ("%%rag --collection no-such-collection\nwhat?", "no collection 'no-such-collection'"),
        ("%%rag --collection test-corpus --k 0\nwhat?", "--k must be >= 1"),
        ("%rag index /no/such/path/anywhere", "no such file or folder: '/no/such/path/anywhere'"),
        ("%rag index pyproject.toml", "file type '.toml' is not supported"),
        ("%rag index 'nbllm/data/corpus/*.nothing'", "no files match"),
        (
            "%rag index nbllm/data/corpus --server http://127.0.0.1:9",
            "cannot reach the Chroma server at http://127.0.0.1:9",
        ),
        ("%rag index nbllm/data/corpus --persist a --server http://x", "either --persist DIR or --server URL"),
        ("%rag index nbllm/data/corpus --collection x", "collection name 'x' is not valid"),
        ("%rag index nbllm/data/corpus --k 3", "--k does not apply to %rag index"),
        ("%%rag --chunk-size 5\nwhat?", "--chunk-size does not apply to a question"),
        ("%%rag\n   ", "no question"),
        ("%%rag --collection test-corpus\n", "cell body is empty"),  # IPython's own message
        ("%rag --collection test-corpus", "no question"),
        ("%rag index", "one PATH"),
        ("%rag drop", "one collection name"),
        ("%%rag --collection test-corpus --where '[1]'\nwhat?", "must be a JSON object"),
        ("%%rag --collection test-corpus --model nosuchmodel\nwhat?", "unknown model 'nosuchmodel'"),
        ("%%rag --distance manhattan\nwhat?", "invalid choice"),
        ("%rag index nbllm/data/corpus --collection emb-test --embedder nope", "unknown embedder 'nope'"),
    ],
)
def test_bad_input_is_one_usage_error(ip, corpus, cell, message):
    with pytest.raises(UsageError, match=message.replace("(", "\\(").replace("*", "\\*").replace("[", "\\[")):
        ip.run_cell(cell)
    assert ip.run_cell("1 + 1").result == 2


def test_empty_collection_is_one_usage_error(ip):
    store.client().create_collection("empty-one", embedding_function=store.embedding_function("minilm"))
    try:
        with pytest.raises(UsageError, match="collection 'empty-one' is empty"):
            ip.run_cell("%%rag --collection empty-one\nanything?")
    finally:
        store.client().delete_collection("empty-one")


def test_help_and_light_import():
    from nbllm.magics.rag import rag_magic

    assert "%rag index PATH|GLOB|VAR" in rag_magic.__doc__ and "--hybrid" in rag_magic.__doc__
    code = (
        "import sys, nbllm, nbllm.magics, nbllm.rag; "
        "print(sorted(m for m in ('torch', 'chromadb', 'bm25s', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
