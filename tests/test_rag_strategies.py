"""%rag index --strategy sentence-window | auto-merging and %%rag --strategy: sentence windows as
contexts, children merged into their parent, the strategy remembered by the collection."""

import pytest
from IPython.core.error import UsageError

from nbllm import rag
from nbllm.errors import ConfigError
from nbllm.retrieval import load, split, store
from nbllm.retrieval.embed import get_embedder

SENTENCES = [
    "Cats are small felines that purr when they are content.",
    "Rust is a systems programming language focused on memory safety.",
    "Volcanoes erupt molten rock called lava.",
    "Sourdough bread rises with a starter of wild yeast.",
    "Glaciers are slow rivers of ice that carve valleys.",
    "Jupiter is the largest planet in the solar system.",
]

CATS = [
    "Cats purr when they are happy and calm.",
    "A kitten purrs while its mother feeds it.",
    "House cats purr to greet their owners.",
    "Big cats such as cheetahs can purr too.",
]
ROCKS = [
    "Volcanoes erupt molten rock called lava.",
    "Basalt forms when lava cools quickly.",
    "Granite cools slowly deep underground.",
    "Obsidian is volcanic glass with sharp edges.",
]


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "facts.txt").write_text(" ".join(SENTENCES) + "\n")
    (tmp_path / "merge").mkdir()
    (tmp_path / "merge" / "cats.txt").write_text(" ".join(CATS) + "\n")
    (tmp_path / "merge" / "rocks.txt").write_text(" ".join(ROCKS) + "\n")
    return tmp_path


def test_sentence_window_hits_carry_their_neighbours(corpus, collections):
    collections.append("strat-sw")
    report = rag.index(corpus / "facts.txt", "strat-sw", strategy="sentence-window", window=2)
    assert report.chunks == len(SENTENCES)
    res = rag.query("Which planet is the largest?", "strat-sw", k=1, generate=False)
    assert res.config["strategy"] == "sentence-window"  # the collection's own, not asked for
    assert res.hits.sentence[0] == SENTENCES[5]
    assert res.contexts == [" ".join(SENTENCES[3:6])]  # the document's end: two neighbours before, none after
    first = rag.query("Do cats purr?", "strat-sw", k=1, generate=False)
    assert first.contexts == [" ".join(SENTENCES[0:3])] and first.hits.text[0] == first.contexts[0]
    middle = rag.query("What do volcanoes erupt?", "strat-sw", k=1, generate=False)
    assert middle.contexts == [" ".join(SENTENCES[0:5])]
    meta = middle._hits[0]["meta"]
    assert (meta["doc"], meta["sentence"]) == (middle.sources[0], 2) and meta["window"] == middle.contexts[0]
    direct = rag.query("What do volcanoes erupt?", "strat-sw", k=1, generate=False, strategy="direct")
    assert direct.contexts == [SENTENCES[2]]  # the sentence itself


def test_sentence_window_size_is_respected(corpus, collections):
    collections.append("strat-sw1")
    rag.index(corpus / "facts.txt", "strat-sw1", strategy="sentence-window", window=1)
    assert store.info(store.get_collection("strat-sw1"))["window"] == 1
    res = rag.query("What do volcanoes erupt?", "strat-sw1", k=1, generate=False)
    assert res.contexts == [" ".join(SENTENCES[1:4])]
    edge = rag.query("Do cats purr?", "strat-sw1", k=1, generate=False)
    assert edge.contexts == [" ".join(SENTENCES[0:2])]
    with pytest.raises(ConfigError, match="built with --window 1, not 3"):
        rag.index(corpus / "facts.txt", "strat-sw1", strategy="sentence-window", window=3)


def test_auto_merging_merges_when_enough_children_hit(corpus, collections):
    collections.append("strat-am")
    rag.index(
        corpus / "merge", "strat-am", strategy="auto-merging", unit="chars", chunk_size=400, overlap=0, child_size=50
    )
    col = store.get_collection("strat-am")
    built = store.info(col)
    assert (built["strategy"], built["child_size"]) == ("auto-merging", 50)
    rows = col.get(include=["metadatas", "documents"])
    assert sorted(rows["documents"]) == sorted(CATS + ROCKS)  # one child per sentence
    assert {m["children"] for m in rows["metadatas"]} == {4} and len({m["parent"] for m in rows["metadatas"]}) == 2
    res = rag.query("Why do cats purr?", "strat-am", k=3, generate=False)
    assert res.merges == 1 and res.config["merges"] == 1
    assert res.contexts[0] == " ".join(CATS)  # the parent, at its best child's rank
    assert res.hits.merged[0] == 3 and res.hits.id[0] == res._hits[0]["meta"]["parent"]
    assert len(res.contexts) == 1 and "1 parent replaced" in res.notices[0]
    kept = rag.query("Why do cats purr?", "strat-am", k=3, generate=False, merge_ratio=1.0)  # 3 of 4 < 100%
    assert kept.merges == 0 and sorted(kept.contexts) == sorted(set(kept.contexts)) and len(kept.contexts) == 3
    assert set(kept.contexts) <= set(CATS)
    direct = rag.query("Why do cats purr?", "strat-am", k=3, generate=False, strategy="direct")
    assert direct.merges == 0 and set(direct.contexts) <= set(CATS)


def test_auto_merging_default_child_size(corpus, collections):
    collections.append("strat-am2")
    rag.index(corpus / "merge" / "cats.txt", "strat-am2", strategy="auto-merging", chunk_size=64, overlap=0)
    assert store.info(store.get_collection("strat-am2"))["child_size"] == 16


def test_strategy_mismatch_is_one_usage_error_line(ip, corpus, collections):
    collections.append("plain")
    facts = corpus / "facts.txt"
    ip.run_cell(f"%rag index {facts} --collection plain")
    with pytest.raises(UsageError) as err:
        ip.run_cell("%%rag --collection plain --strategy sentence-window --no-generate\nlargest planet")
    message = str(err.value)
    assert "\n" not in message and "built with --strategy direct, not sentence-window" in message
    assert "%rag index PATH --strategy sentence-window --collection NEW" in message
    with pytest.raises(UsageError, match="built with --strategy direct, not auto-merging"):
        ip.run_cell(f"%rag index {facts} --collection plain --strategy auto-merging")
    collections.append("plain-sw")
    ip.run_cell(f"%rag index {facts} --collection plain-sw --strategy sentence-window --window 1")
    res = ip.run_cell("%%rag --collection plain-sw --no-generate --k 1\nlargest planet").result
    assert res.contexts == [" ".join(SENTENCES[4:6])]


def test_direct_is_unchanged_and_old_collections_still_query(corpus, collections):
    collections += ["strat-new", "strat-old"]
    facts = corpus / "facts.txt"
    rag.index(facts, "strat-new", chunk_size=16, overlap=0)
    assert store.info(store.get_collection("strat-new"))["strategy"] == "direct"
    new = rag.query("largest planet", "strat-new", k=2, generate=False)
    assert "sentence" not in new.hits.columns and "merged" not in new.hits.columns and new.merges == 0
    # a collection written before strategies existed: no strategy in its build info
    emb = get_embedder("minilm")
    col = store.open_for_write(
        "strat-old", "minilm", emb.dim, "l2", {"chunk_size": 16, "overlap": 0, "unit": "tokens"}
    )
    chunks = split.split_documents(load.load(facts).documents, 16, 0, emb.tokens)
    texts = [c.text for c in chunks]
    metas = [rag._metadata(c, split.text_hash(c.text)) for c in chunks]
    store.write(col, [c.id for c in chunks], emb.embed(texts), texts, metas)
    assert "strategy" not in store.info(store.get_collection("strat-old"))
    old = rag.query("largest planet", "strat-old", k=2, generate=False)
    assert old.contexts == new.contexts and old.config["strategy"] == "direct"
    assert rag.index(facts, "strat-old", chunk_size=16, overlap=0).unchanged == len(chunks)  # still direct


def test_explorer_offers_the_collections_strategy_and_direct(corpus, collections):
    from nbllm.widgets.retrieval import explore

    collections.append("strat-explore")
    rag.index(corpus / "facts.txt", "strat-explore", strategy="sentence-window", window=1)
    explorer = explore("strat-explore", k=1)
    assert explorer.strategy.options == ("direct", "sentence-window") and explorer.strategy.value == "sentence-window"
    assert "sentence-window strategy" in explorer.status.value
    res = explorer.search("What do volcanoes erupt?")
    assert res.contexts == [" ".join(SENTENCES[1:4])]  # the hit's window
    explorer.strategy.value = "direct"  # a change searches again
    assert explorer.result.contexts == [SENTENCES[2]] and explorer.result.config["strategy"] == "direct"
    assert repr(explorer) == "RAGExplorer(collection='strat-explore', k=1, distance='l2')"
    explorer.strategy.value = "sentence-window"
    assert repr(explorer).endswith("strategy='sentence-window')")


def test_list_shows_each_collections_strategy(corpus, collections):
    collections += ["strat-list-sw", "strat-list-plain"]
    rag.index(corpus / "facts.txt", "strat-list-sw", strategy="sentence-window", window=1)
    rag.index(corpus / "facts.txt", "strat-list-plain")
    listed = rag.collections()
    table = listed.to_pandas().set_index("collection")
    assert table.strategy["strat-list-sw"] == "sentence-window" and table.strategy["strat-list-plain"] == "direct"
    lines = {line.split()[0]: line for line in repr(listed).splitlines()[1:]}
    assert lines["strat-list-sw"].endswith(", sentence-window") and lines["strat-list-plain"].endswith(", l2")


def test_explorer_compresses_and_rewrites(corpus, collections, monkeypatch):
    from nbllm.retrieval import rewrite
    from nbllm.widgets.retrieval import explore

    collections.append("strat-explore-more")
    rag.index(corpus / "facts.txt", "strat-explore-more", chunk_size=128, overlap=0)  # one chunk, six topics
    explorer = explore("strat-explore-more", k=1, model="smollm2")
    full = explorer.search("Which planet is the largest?").contexts[0]
    explorer.compress.value = True
    short = explorer.result
    assert len(short.contexts[0]) < len(full) and short.compression["tokens_saved"] > 0
    monkeypatch.setattr(rewrite, "complete", lambda lm, prompt, n: "1. Is lava molten rock?\n2. What is basalt?")
    explorer.compress.value = False
    explorer.rewrite.value = "multi-query"
    fused = explorer.result
    assert fused.rewrites == ["Is lava molten rock?", "What is basalt?"] and fused.config["rewrite"] == "multi-query"
