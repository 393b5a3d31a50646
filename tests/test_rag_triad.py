"""%eval triad on real %%rag results: minilm, in-memory Chroma, the real magics on both sides."""

import pytest
from IPython.core.error import UsageError

from nbllm import models, rag
from nbllm.errors import DataError
from nbllm.evaluate import leaderboard, triad
from nbllm.evaluate.results import TRIAD
from nbllm.retrieval.results import RAGResult
from nbllm.testing import register_tiny_model

COLLECTION = "triad-integration"
DOCS = [
    "The Eiffel Tower stands in Paris, France. It was completed in 1889 for the World's Fair.",
    "Rust is a systems programming language. It is focused on memory safety without a garbage collector.",
    "Cats are small felines. They purr when they are content.",
    "Volcanoes erupt molten rock called lava. Lava cools into basalt.",
]
QUESTIONS = ["Where is the Eiffel Tower?", "What is Rust focused on?"]


@pytest.fixture(scope="module")
def indexed(ip):
    ip.user_ns["triad_docs"] = DOCS
    report = ip.run_cell(f"%rag index triad_docs --collection {COLLECTION}").result
    assert report.total == len(DOCS)
    register_tiny_model("tiny-triad")
    yield COLLECTION
    models.unregister("tiny-triad")
    rag.drop(COLLECTION)


def ask(ip, question, flags):
    return ip.run_cell(f"%%rag --collection {COLLECTION} {flags} --out last_rag\n{question}").result


def test_triad_scores_real_rag_results_per_configuration(ip, indexed):
    """Two questions, each answered by the tiny generator with k=1 and with k=3."""
    configs = {k: [ask(ip, q, f"--k {k} --model tiny-triad --max-new-tokens 8") for q in QUESTIONS] for k in (1, 3)}
    assert all(isinstance(r, RAGResult) and isinstance(r.answer, str) for rs in configs.values() for r in rs)
    ip.user_ns.update(k1=configs[1], k3=configs[3])

    res = ip.run_cell("%eval triad --rag k1 k3 --out scored").result
    assert ip.user_ns["scored"] is res and res.scorer == "minilm" and len(res.rows) == 4
    frame = res.to_pandas()
    assert ((frame[list(TRIAD)] >= 0) & (frame[list(TRIAD)] <= 1)).all().all()
    board = res.leaderboard().set_index("config")
    assert sorted(board.index) == ["k1", "k3"] and board.n.tolist() == [2, 2]
    # k=1 keeps only the nearest chunk; k=3 averages in two farther ones
    assert board.loc["k1", "context_relevance"] > board.loc["k3", "context_relevance"]
    assert {r["model"] for r in leaderboard.leaderboard(task="rag triad").rows} >= {"rag k1", "rag k3"}

    # the backend on the same results: labelled by the one setting that differs
    direct = triad.evaluate(configs[1] + configs[3], progress=False)
    assert direct.to_pandas().config.tolist() == ["k=1", "k=1", "k=3", "k=3"]
    assert direct.to_pandas()[list(TRIAD)].round(6).equals(frame[list(TRIAD)].round(6))


def test_a_single_result_is_labelled_by_its_settings(ip, indexed):
    r = ask(ip, QUESTIONS[0], "--k 2 --model tiny-triad --max-new-tokens 4")
    label = triad.evaluate(r, progress=False).rows[0]["config"]
    assert label == f"collection={COLLECTION},distance=l2,embedder=minilm,k=2,model=tiny-triad"


def test_an_ungrounded_sentence_is_flagged(ip, indexed):
    r = ask(ip, QUESTIONS[0], "--k 2 --no-generate")
    assert r.answer is None and r.sources and "Eiffel" in r.contexts[0]
    with pytest.raises(UsageError, match="has no answer .*run %%rag without --no-generate"):
        ip.run_cell("%eval triad --rag last_rag")
    r.answer = "The Eiffel Tower stands in Paris, France. Bananas grow on purple moons."
    res = ip.run_cell("%eval triad --rag last_rag").result
    row = res.rows[0]
    assert row["sentences"] == [("The Eiffel Tower stands in Paris, France.", True),
                                ("Bananas grow on purple moons.", False)]
    assert row["groundedness"] == 0.5 and row["unsupported"] == ["Bananas grow on purple moons."]
    assert 0 < row["context_relevance"] <= 1 and 0 < row["answer_relevance"] <= 1
    html = res._repr_html_()
    assert "class='nbllm-unsupported' title='not supported by any context'>Bananas grow" in html
    assert "class='nbllm-supported' title='supported by the contexts'>The Eiffel" in html


def test_an_empty_answer_scores_zero_instead_of_failing(indexed):
    """The tiny random model answers only newlines; SmolLM2 can stop at once too."""
    r = rag.query(QUESTIONS[1], COLLECTION, k=1, generate=False)
    r.answer = " \n"
    row = triad.evaluate(r, progress=False).rows[0]
    assert (row["groundedness"], row["answer_relevance"], row["sentences"]) == (0.0, 0.0, [])
    assert row["context_relevance"] > 0.5  # the retrieved chunk is still scored


def test_no_answer_is_a_data_error_in_the_backend(indexed):
    r = rag.query(QUESTIONS[1], COLLECTION, k=1, generate=False)
    with pytest.raises(DataError, match="item 1 has no answer"):
        triad.evaluate(r, progress=False)
