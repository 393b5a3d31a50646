"""%%rag --rewrite multi-query|hyde, --compress, --cache, and what every RAG result cost
(.latency, .context_tokens), on tiny corpora with the real minilm embedder and smollm2."""

import pytest

from nbllm import rag
from nbllm.retrieval import store

FACTS = [
    "Cats are small felines that purr when they are content.",
    "Rust is a systems programming language focused on memory safety.",
    "Volcanoes erupt molten rock called lava.",
    "Sourdough bread rises with a starter of wild yeast.",
    "Glaciers are slow rivers of ice that carve valleys.",
    "Jupiter is the largest planet in the solar system.",
]


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    """One sentence per chunk (a list of texts: one document each), in memory as 'adv-facts'."""
    rag.index(FACTS, "adv-facts")
    yield "adv-facts"
    if store.exists("adv-facts"):
        rag.drop("adv-facts")


@pytest.fixture
def collections():
    made = []
    yield made
    for name in made:
        if store.exists(name):
            rag.drop(name)


def test_every_result_has_latency_and_context_tokens(facts):
    from nbllm.retrieval.embed import get_embedder

    res = rag.query("Which planet is the largest?", facts, k=2, generate=False)
    assert set(res.latency) >= {"retrieve", "generate", "total"}
    assert res.latency["generate"] == 0.0 and 0 < res.latency["retrieve"] <= res.latency["total"]
    emb = get_embedder("minilm")
    assert res.context_tokenizer == "minilm" and res.context_tokens == sum(emb.tokens(c) for c in res.contexts)
    assert "latency" not in repr(res)  # timings never reach the deterministic repr


def test_generated_result_counts_the_generators_tokens(facts):
    from nbllm.lm import resolve

    res = rag.query("Which planet is the largest?", facts, k=2, max_new_tokens=8)
    tok = resolve("smollm2").tokenizer
    assert res.context_tokenizer == "smollm2"
    assert res.context_tokens == sum(len(tok(c, add_special_tokens=False)["input_ids"]) for c in res.contexts)
    assert res.latency["generate"] > 0 and res.latency["total"] >= res.latency["retrieve"] + res.latency["generate"]
