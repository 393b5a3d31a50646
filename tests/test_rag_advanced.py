"""%%rag --rewrite multi-query|hyde, --compress, --cache, and what every RAG result cost
(.latency, .context_tokens), on tiny corpora with the real minilm embedder and smollm2.

The rewrite tests that check the fusion exactly replace the model's text through the one seam
every rewrite goes through (nbllm.retrieval.rewrite.complete); one test runs smollm2 itself."""

import pytest
from IPython.core.error import UsageError

from nbllm import models, rag
from nbllm.errors import ConfigError
from nbllm.retrieval import cache, rewrite, search, store
from nbllm.retrieval import generate as gen
from nbllm.retrieval.embed import get_embedder
from nbllm.testing import register_tiny_model

FACTS = [
    "Cats are small felines that purr when they are content.",
    "Rust is a systems programming language focused on memory safety.",
    "Volcanoes erupt molten rock called lava.",
    "Sourdough bread rises with a starter of wild yeast.",
    "Glaciers are slow rivers of ice that carve valleys.",
    "Jupiter is the largest planet in the solar system.",
]
MIXED = [  # each chunk: one sentence on its topic, and sentences on nothing asked about
    "Jupiter is the largest planet in the solar system. My neighbour sells second-hand bicycles on weekends.",
    "Sourdough bread rises with a starter of wild yeast. The parking garage closes at midnight.",
    "Glaciers carve valleys as they move. Tax forms are due in April.",
]


@pytest.fixture(scope="module")
def facts():
    """One sentence per chunk (a list of texts: one document each), in memory as 'adv-facts'."""
    rag.index(FACTS, "adv-facts")
    yield "adv-facts"
    if store.exists("adv-facts"):
        rag.drop("adv-facts")


@pytest.fixture
def fake_lm(monkeypatch):
    """Replace the language model's text in every rewrite: `fake_lm.text` is what it 'writes'."""

    class Fake:
        text, prompts = "", []

    def complete(lm, prompt, max_new_tokens):
        Fake.prompts.append((prompt, max_new_tokens))
        return Fake.text

    monkeypatch.setattr(rewrite, "complete", complete)
    return Fake


@pytest.fixture(scope="module")
def tiny_lm():
    register_tiny_model("tiny-adv")
    yield "tiny-adv"
    models.unregister("tiny-adv")


def ids(question, collection, k):
    return rag.query(question, collection, k=k, generate=False).hits.id.tolist()


def fused(lists, k):
    """Reciprocal-rank fusion by hand: sum of 1 / (60 + rank), ties by id."""
    score = {}
    for ranked in lists:
        for rank, id_ in enumerate(ranked, 1):
            score[id_] = score.get(id_, 0.0) + 1 / (search.RRF_K + rank)
    return sorted(score, key=lambda i: (-round(score[i], 9), i))[:k]


# ---------------------------------------------------------------- latency, context tokens


def test_every_result_has_latency_and_context_tokens(facts):
    res = rag.query("Which planet is the largest?", facts, k=2, generate=False)
    assert set(res.latency) == {"retrieve", "generate", "total"}
    assert res.latency["generate"] == 0.0 and 0 < res.latency["retrieve"] <= res.latency["total"]
    emb = get_embedder("minilm")
    assert res.context_tokenizer == "minilm" and res.context_tokens == sum(emb.tokens(c) for c in res.contexts)
    assert res.rewrites is None and res.compression is None and res.cache_hit is None
    assert "latency" not in repr(res) and "context_tokens" not in repr(res)  # the repr stays as it was
    assert res.config["rewrite"] is None and res.config["compress"] is False


def test_generated_compressed_result_counts_the_generators_tokens(collections):
    from nbllm.lm import resolve

    collections.append("adv-mixed-gen")
    rag.index(MIXED, "adv-mixed-gen")
    res = rag.query("Which planet is the largest?", "adv-mixed-gen", k=1, max_new_tokens=8, compress=True)
    tok = resolve("smollm2").tokenizer

    def count(texts):
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)

    assert res.contexts == [MIXED[0].split(". ")[0] + "."] and res.context_tokenizer == "smollm2"
    assert res.context_tokens == count(res.contexts) == res.compression["tokens_after"]
    assert res.compression["tokens_before"] == count([MIXED[0]]) and res.compression["tokenizer"] == "smollm2"
    assert "bicycles" not in res.prompt and "Jupiter is the largest planet" in res.prompt
    assert set(res.latency) == {"retrieve", "compress", "generate", "total"} and res.latency["generate"] > 0
    assert res.latency["total"] >= res.latency["retrieve"] + res.latency["generate"]


# ---------------------------------------------------------------- --rewrite multi-query


def test_paraphrases_are_parsed_robustly():
    text = (
        "Here are three rewordings:\n\n1. Do cats purr?\n2) Which planet is the largest?\n"
        '- which planet is the LARGEST\n* "What erupts from volcanoes?"\nQuestion: What is lava?\n\n   \nOK\n'
        "4. What do volcanoes erupt?\n5. How do glaciers move?"
    )
    got = rewrite.parse_queries(text, "What do volcanoes erupt?", 3)
    assert got == ["Do cats purr?", "Which planet is the largest?", "What erupts from volcanoes?"]
    assert rewrite.parse_queries(text, "What do volcanoes erupt?", 10)[-2:] == [
        "What is lava?",
        "How do glaciers move?",
    ]
    assert rewrite.parse_queries("What do volcanoes erupt?\n\n", "What do volcanoes erupt?", 3) == []


def test_multi_query_fuses_the_lists_of_every_query(facts, fake_lm):
    question = "What do volcanoes erupt?"
    fake_lm.text = (
        "1. Which planet is the largest?\n2. What is the biggest planet?\n3. which planet is the LARGEST\n4. "
        + question
    )
    res = rag.query(question, facts, k=2, generate=False, model="smollm2", rewrite="multi-query", queries=3)
    assert res.rewrites == ["Which planet is the largest?", "What is the biggest planet?"]
    prompt, budget = fake_lm.prompts[-1]
    assert question in prompt[-1]["content"] and "3 different ways" in prompt[-1]["content"] and budget > 3 * 16
    lists = [ids(q, facts, 2) for q in [question, *res.rewrites]]
    assert res.hits.id.tolist() == fused(lists, 2)  # RRF over the question's and both paraphrases' lists
    found = dict(zip(res.hits.id, res.hits.found_by))
    assert all(found[i] == [n for n, ranked in enumerate(lists) if i in ranked] for i in found)
    assert FACTS.index(res.contexts[1]) == 5 and 0 not in res.hits.found_by[1]  # only the paraphrases found it
    assert res.config["rewrite"] == "multi-query" and res.config["queries"] == 3 and res.config["model"] == "smollm2"
    assert "the model wrote 2 usable paraphrases of the 3 asked for" in res.notices[0]
    assert "rewrite: What is the biggest planet?" in repr(res) and "Rewrites" in res._repr_html_()
    assert set(res.latency) == {"rewrite", "retrieve", "generate", "total"}
    again = rag.query(question, facts, k=2, generate=False, model="smollm2", rewrite="multi-query", queries=3)
    assert repr(again) == repr(res)


def test_multi_query_with_hybrid_search_fuses_each_querys_hybrid_list(facts, fake_lm):
    question = "volcanoes lava"
    fake_lm.text = "1. Which planet is the largest?"
    res = rag.query(question, facts, k=3, generate=False, model="smollm2", rewrite="multi-query", hybrid=True)
    lists = [rag.query(q, facts, k=3, generate=False, hybrid=True).hits.id.tolist() for q in [question, *res.rewrites]]
    assert res.hits.id.tolist() == fused(lists, 3) and res.config["hybrid"] is True


def test_multi_query_with_smollm2_itself(facts):
    question = "Which planet is the largest?"
    res = rag.query(question, facts, k=2, generate=False, model="smollm2", rewrite="multi-query", queries=2)
    assert 1 <= len(res.rewrites) <= 2 and question not in res.rewrites
    assert len({r.lower() for r in res.rewrites}) == len(res.rewrites) and all(r.strip() for r in res.rewrites)
    lists = [ids(q, facts, 2) for q in [question, *res.rewrites]]
    assert res.hits.id.tolist() == fused(lists, 2) and res.sources and res.contexts[0] == FACTS[5]
    again = rag.query(question, facts, k=2, generate=False, model="smollm2", rewrite="multi-query", queries=2)
    assert again.rewrites == res.rewrites and again.hits.id.tolist() == res.hits.id.tolist()  # greedy: deterministic


# ---------------------------------------------------------------- --rewrite hyde


def test_hyde_retrieves_with_the_hypothetical_passage(facts, fake_lm):
    question = "What is the biggest one?"  # says little: the passage finds the chunk
    fake_lm.text = "Jupiter is the largest planet in the solar system.  It is a gas giant whose storms"
    res = rag.query(question, facts, k=2, generate=False, model="smollm2", rewrite="hyde")
    passage = "Jupiter is the largest planet in the solar system."  # the cut-off sentence is dropped
    assert res.rewrites == [passage] and "passage" in str(fake_lm.prompts[-1][0])
    lists = [ids(question, facts, 2), ids(passage, facts, 2)]
    assert res.hits.id.tolist() == fused(lists, 2) and res.contexts[0] == FACTS[5]
    assert 1 in res.hits.found_by[0] and res.config["rewrite"] == "hyde" and "queries" not in res.config
    assert any("hyde: retrieved with the question and a hypothetical answer" in n for n in res.notices)


def test_hyde_with_nothing_written_retrieves_with_the_question(facts, fake_lm):
    fake_lm.text = "   "
    res = rag.query("Do cats purr?", facts, k=2, generate=False, model="smollm2", rewrite="hyde")
    assert res.rewrites == [] and res.hits.id.tolist() == ids("Do cats purr?", facts, 2)
    assert "hyde: the model wrote no passage" in res.notices[0]


# ---------------------------------------------------------------- --compress


def test_compress_keeps_the_sentences_that_bear_on_the_question(collections):
    collections.append("adv-mixed")
    rag.index(MIXED, "adv-mixed")
    plain = rag.query("What makes sourdough bread rise?", "adv-mixed", k=2, generate=False)
    res = rag.query("What makes sourdough bread rise?", "adv-mixed", k=2, generate=False, compress=True)
    assert res.hits.id.tolist() == plain.hits.id.tolist()  # the same chunks, cut down
    assert res.contexts[0] == "Sourdough bread rises with a starter of wild yeast."
    assert "parking" not in " ".join(res.contexts) and res.hits.full_text.tolist() == plain.contexts
    assert res.hits.sentences_kept[0] == "1/2"
    emb = get_embedder("minilm")
    figures = res.compression
    assert figures["tokens_before"] == sum(emb.tokens(c) for c in plain.contexts)
    assert figures["tokens_after"] == sum(emb.tokens(c) for c in res.contexts) == res.context_tokens
    assert figures["tokens_saved"] == figures["tokens_before"] - figures["tokens_after"] > 0
    assert figures["tokenizer"] == "minilm" and res.config["compress"] and res.config["compress_threshold"] == 0.5
    share = round(100 * figures["tokens_saved"] / figures["tokens_before"])
    line = f"compress: kept {figures['tokens_after']} of {figures['tokens_before']} context tokens ({share}% saved)"
    assert line in res.notices and f"notice: {line}" in repr(res)
    tiny = rag.query("What makes sourdough bread rise?", "adv-mixed", k=3, generate=False, compress=True)
    assert all(kept.startswith("1/") for kept in tiny.hits.sentences_kept)  # each chunk: at least its best
    loose = rag.query(
        "What makes sourdough bread rise?", "adv-mixed", k=3, generate=False, compress=True, compress_threshold=0.01
    )
    assert loose.compression["tokens_after"] >= tiny.compression["tokens_after"]


def test_compress_keeps_the_order_of_the_sentences():
    from nbllm.retrieval.compress import compress, keep

    assert keep([0.2, 0.9, 0.5, 0.1], 0.5) == [1, 2] and keep([-0.3, -0.1], 0.5) == [1]
    emb = get_embedder("minilm")
    text = "Yeast makes bread rise. Parking closes at midnight. Bread dough rises when yeast ferments."
    hit = {"id": "x", "text": text}
    out = compress([hit], emb.embed(["How does yeast make bread rise?"])[0], emb.embed)
    assert out[0]["text"] == "Yeast makes bread rise. Bread dough rises when yeast ferments."
    assert out[0]["full_text"] == text and out[0]["sentences_kept"] == "2/3"


# ---------------------------------------------------------------- --cache


def test_cache_hits_misses_invalidation_and_hit_rate(collections, tiny_lm, monkeypatch):
    collections.append("adv-cache")
    rag.index(FACTS, "adv-cache")
    rag.clear_cache()
    answered = []
    real = gen.answer
    monkeypatch.setattr(gen, "answer", lambda *a, **kw: answered.append(a[2]) or real(*a, **kw))
    ask = dict(k=1, model=tiny_lm, max_new_tokens=4, cache=True)

    first = rag.query("Which planet is the largest?", "adv-cache", **ask)
    assert first.cache_hit is False and first.cache_stats == {"lookups": 1, "hits": 0, "hit_rate": 0.0}
    assert first.notices[-1] == "cache: miss (1 lookup, 0 hits: 0% for this configuration)"
    assert "cache" in first.latency and answered == ["Which planet is the largest?"]

    monkeypatch.setattr(search, "dense", lambda *a, **kw: pytest.fail("a cache hit retrieves nothing"))
    same = rag.query("Which planet is the largest?", "adv-cache", **ask)
    assert same.cache_hit is True and same.cached_question == "Which planet is the largest?"
    assert same.answer == first.answer and same.contexts == first.contexts and same.cache_similarity == 1.0
    assert same.cache_stats == {"lookups": 2, "hits": 1, "hit_rate": 0.5} and len(answered) == 1
    assert same.latency["retrieve"] == same.latency["generate"] == 0.0
    assert same.notices[-1].startswith("cache: hit, similarity 1.00 to 'Which planet is the largest?'")
    near = rag.query("which planet is the largest", "adv-cache", **ask)
    assert near.cache_hit and near.question == "which planet is the largest" and 0.95 <= near.cache_similarity < 1
    assert near.cached_question == "Which planet is the largest?" and len(answered) == 1
    monkeypatch.undo()
    monkeypatch.setattr(gen, "answer", lambda *a, **kw: answered.append(a[2]) or real(*a, **kw))

    other = rag.query("Do cats purr?", "adv-cache", **ask)
    assert other.cache_hit is False and other.contexts == [FACTS[0]] and len(answered) == 2
    assert other.cache_stats == {"lookups": 4, "hits": 2, "hit_rate": 0.5}
    setting = rag.query("Which planet is the largest?", "adv-cache", **{**ask, "k": 2})  # another configuration
    assert setting.cache_hit is False and setting.cache_stats == {"lookups": 1, "hits": 0, "hit_rate": 0.0}
    assert cache.stats() == {"lookups": 5, "hits": 2, "hit_rate": 0.4}  # the whole session

    rag.index(["Saturn has the most visible rings."], "adv-cache")  # the collection changed
    stale = rag.query("Which planet is the largest?", "adv-cache", **ask)
    assert stale.cache_hit is False and stale.cache_stats == {"lookups": 5, "hits": 2, "hit_rate": 0.4}
    assert rag.query("Which planet is the largest?", "adv-cache", **ask).cache_hit is True
    assert rag.clear_cache() == 2 and cache.stats() == {"lookups": 0, "hits": 0, "hit_rate": 0.0}


def test_cache_threshold_decides_what_is_near(facts):
    rag.clear_cache()
    rag.query("Which planet is the largest?", facts, k=1, generate=False, cache=True)
    strict = rag.query("which planet is the largest", facts, k=1, generate=False, cache=True, cache_threshold=1.0)
    assert strict.cache_hit is False  # a different cache key too: the threshold is no part of it
    loose = rag.query("What is the biggest planet?", facts, k=1, generate=False, cache=True, cache_threshold=0.5)
    assert loose.cache_hit and loose.cached_question == "Which planet is the largest?"
    rag.clear_cache()


# ---------------------------------------------------------------- the magic, bad input


def test_magic_takes_the_new_flags(ip, facts, fake_lm):
    rag.clear_cache()
    fake_lm.text = "1. Which planet is the largest?\n2. What is the biggest planet?"
    cell = (
        "%%rag -c adv-facts --k 2 --no-generate --model smollm2 --rewrite multi-query --queries 2 --compress --cache"
    )
    res = ip.run_cell(cell + "\nWhat is the largest planet?").result
    assert res.rewrites == ["Which planet is the largest?", "What is the biggest planet?"]
    assert res.compression["tokens_saved"] == 0 and res.cache_hit is False  # one sentence per chunk: nothing cut
    assert ip.run_cell(cell + "\nWhat is the largest planet?").result.cache_hit is True
    rag.clear_cache()


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            "--no-generate --rewrite multi-query",
            "needs a language model to write the paraphrases; name one with --model",
        ),
        ("--no-generate --rewrite hyde", "needs a language model to write the hypothetical answer.*--no-generate"),
        ("--rewrite multi-query --queries 0", "--queries must be between 1 and 10 \\(got 0\\)"),
        ("--rewrite multi-query --queries 11", "--queries must be between 1 and 10 \\(got 11\\)"),
        ("--rewrite paraphrase", "argument --rewrite: invalid choice: 'paraphrase'"),
        ("--no-generate --compress --compress-threshold 0", "--compress-threshold must be > 0 and <= 1 \\(got 0.0\\)"),
        ("--no-generate --compress --compress-threshold 1.5", "--compress-threshold must be > 0 and <= 1"),
        ("--no-generate --cache --cache-threshold -0.2", "--cache-threshold must be > 0 and <= 1 \\(got -0.2\\)"),
        ("--no-generate --cache --cache-threshold nan", "not a finite number"),
        ("--no-generate --queries 5", "--queries 5 only takes effect with --rewrite multi-query"),
        ("--rewrite hyde --queries 2", "--queries 2 only takes effect with --rewrite multi-query"),
        ("--no-generate --compress-threshold 0.8", "--compress-threshold 0.8 only takes effect with --compress;"),
        ("--no-generate --cache-threshold 0.9", "--cache-threshold 0.9 only takes effect with --cache; add --cache"),
    ],
)
def test_bad_input_is_one_usage_error_line(ip, facts, flags, message):
    with pytest.raises(UsageError, match=message) as err:
        ip.run_cell(f"%%rag -c adv-facts --k 1 {flags}\nWhich planet is the largest?")
    assert "\n" not in str(err.value)


def test_bad_input_from_a_script(facts):
    with pytest.raises(ConfigError, match="unknown --rewrite 'paraphrase'; use multi-query or hyde"):
        rag.query("Do cats purr?", facts, rewrite="paraphrase")
    with pytest.raises(ConfigError, match="--rewrite multi-query needs a language model"):
        rag.query("Do cats purr?", facts, generate=False, rewrite="multi-query")
    with pytest.raises(ConfigError, match="--queries must be between 1 and 10"):
        rag.query("Do cats purr?", facts, generate=False, model="smollm2", rewrite="multi-query", queries=True)
