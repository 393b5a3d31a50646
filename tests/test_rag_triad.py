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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert row["sentences"] == [
        ("The Eiffel Tower stands in Paris, France.", True),
        ("Bananas grow on purple moons.", False),
    ]
    assert row["groundedness"] == 0.5 and row["unsupported"] == ["Bananas grow on purple moons."]
    assert 0 < row["context_relevance"] <= 1 and 0 < row["answer_relevance"] <= 1
    html = res._repr_html_()
    assert "class='nbllm-unsupported' title='not supported: low similarity " in html
    assert "'>Bananas grow on purple moons.</span> <small>(low similarity 0." in html
    assert "class='nbllm-supported' title='supported by the contexts: similarity " in html


@pytest.mark.slow
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


# ---------------------------------------------------------------- citation markers

MARKED = (
    "The Eiffel Tower stands in Paris, France [1]. It was completed in 1889 [1][2]. "
    "Bananas grow on purple moons [2, 3]."
)
PLAIN = "The Eiffel Tower stands in Paris, France. It was completed in 1889. Bananas grow on purple moons."


class StandIn:
    def __init__(self, answer, contexts=("The Eiffel Tower stands in Paris, France. It was completed in 1889.",)):
        self.question, self.contexts, self.answer, self.config = QUESTIONS[0], list(contexts), answer, {}


def exact_match_embed(texts):
    """One-hot per distinct text: a sentence is supported only by an identical context sentence,
    so a [1] left in it would make it unsupported."""
    import torch

    ids = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    return torch.nn.functional.one_hot(torch.tensor([ids[t] for t in texts]), len(ids)).float()


def test_answer_sentences_keep_markers_for_display_and_drop_them_for_scoring():
    assert triad.answer_sentences("LoRA freezes W0 [1]. B starts at zero. [2][3] Done [1, 2]. [4]") == [
        ("LoRA freezes W0 [1].", "LoRA freezes W0."),
        ("B starts at zero. [2][3]", "B starts at zero."),
        ("Done [1, 2]. [4]", "Done."),
    ]
    assert triad.answer_sentences("[1] [2]") == [] and triad.strip_citations("Year 2024 [3]!") == "Year 2024!"
    assert triad.answer_sentences("See [a] and [1b].") == [("See [a] and [1b].", "See [a] and [1b].")]


def test_markers_do_not_change_groundedness():
    marked, plain = (
        triad.evaluate(StandIn(a), embed=exact_match_embed, progress=False).rows[0] for a in (MARKED, PLAIN)
    )
    assert marked["groundedness"] == plain["groundedness"] == 2 / 3
    assert [ok for _, ok in marked["sentences"]] == [True, True, False]
    assert [s for s, _ in marked["sentences"]][
        0
    ] == "The Eiffel Tower stands in Paris, France [1]."  # shown as written
    assert marked["unsupported"] == ["Bananas grow on purple moons [2, 3]."]
    assert marked["answer_relevance"] == plain["answer_relevance"]


@pytest.mark.slow
def test_markers_do_not_change_groundedness_with_minilm():
    marked, plain = (triad.evaluate(StandIn(a), progress=False).rows[0] for a in (MARKED, PLAIN))
    assert marked["groundedness"] == plain["groundedness"]
    assert [ok for _, ok in marked["sentences"]] == [ok for _, ok in plain["sentences"]] == [True, True, False]
    assert "[1][2]" in triad.evaluate(StandIn(MARKED), progress=False)._repr_html_()


def test_the_judge_never_sees_the_markers(tmp_path):
    class Judge:
        id, name, prompts = "marker-judge", "marker-judge", []

        def ask(self, prompt):
            self.prompts.append(prompt)
            return "90"

    judge = Judge()
    row = triad.evaluate(StandIn(MARKED), judge=judge, cache_path=tmp_path / "j.sqlite", progress=False).rows[0]
    grounded = [p for p in judge.prompts if "is supported by the context" in p]
    assert len(grounded) == 3 and not any("[1]" in p.split("statement")[1] for p in grounded)
    assert "`It was completed in 1889.`" in grounded[1]
    assert [s for s, _ in row["sentences"]][1] == "It was completed in 1889 [1][2]." and row["groundedness"] == 1.0


# ---------------------------------------------------------------- latency and context tokens


class Timed(StandIn):
    """A result that says what it cost, as %%rag results do: .latency (seconds) and .context_tokens."""

    def __init__(self, answer, latency, context_tokens):
        super().__init__(answer)
        self.latency, self.context_tokens = latency, context_tokens


def test_latency_and_context_tokens_ride_along_per_row_and_per_config():
    configs = {
        "fast": [
            Timed(PLAIN, {"total": 1.0, "retrieve": 0.25, "generate": 0.75}, 100),
            Timed(PLAIN, {"total": 3.0}, 50),
        ],
        "slow": [Timed(PLAIN, 2.5, 300)],  # a plain number of seconds counts too
        "old": [StandIn(PLAIN)],  # a result from before latencies: no .latency, no .context_tokens
    }
    res = triad.evaluate(configs, embed=exact_match_embed, progress=False)
    assert [r["config"] for r in res.rows] == ["fast", "fast", "slow", "old"]
    assert [r["latency_s"] for r in res.rows] == [1.0, 3.0, 2.5, None]
    assert [r["context_tokens"] for r in res.rows] == [100, 50, 300, None]

    frame = res.to_pandas()
    assert list(frame.columns) == ["config", "question", "answer", *TRIAD, "latency_s", "context_tokens"]
    assert frame.context_tokens.iloc[:3].tolist() == [100, 50, 300] and frame.context_tokens.isna().tolist()[3]
    board = res.leaderboard().set_index("config")
    assert list(board.columns) == ["n", *TRIAD, "latency_s", "context_tokens"]
    assert board.loc["fast", ["n", "latency_s", "context_tokens"]].tolist() == [2, 2.0, 75.0]
    assert board.loc["slow", ["n", "latency_s", "context_tokens"]].tolist() == [1, 2.5, 300.0]
    assert board.loc[["old"], ["latency_s", "context_tokens"]].isna().all().all()
    # the scores are those of the same answers without costs
    plain = triad.evaluate([StandIn(PLAIN)], embed=exact_match_embed, progress=False).rows[0]
    assert all(r[m] == plain[m] for r in res.rows for m in TRIAD)
    assert "latency_s" in res._repr_html_() and "context_tokens" in res._repr_html_()
    assert "latency" not in repr(res)  # the repr stays deterministic: no timings


@pytest.mark.slow
def test_real_rag_results_bring_their_latency_and_context_tokens(ip, indexed):
    results = [ask(ip, q, "--k 2 --model tiny-triad --max-new-tokens 4") for q in QUESTIONS]
    ip.user_ns["costed"] = {"k2": results}
    res = ip.run_cell("%eval triad --rag costed").result
    for row, r in zip(res.rows, results):
        assert row["latency_s"] == r.latency["total"] > 0 and row["context_tokens"] == r.context_tokens > 0
    board = res.leaderboard().set_index("config")
    assert (
        board.loc["k2", "n"] == 2 and board.loc["k2", "context_tokens"] == sum(r.context_tokens for r in results) / 2
    )
    assert board.loc["k2", "latency_s"] == pytest.approx(sum(r.latency["total"] for r in results) / 2)


def test_results_without_costs_give_nan_and_none_not_errors():
    odd = [
        Timed(PLAIN, {"retrieve": 0.1}, 12.5),
        Timed(PLAIN, "fast", "many"),
        Timed(PLAIN, -1.0, -3),
        Timed(PLAIN, None, True),
    ]
    res = triad.evaluate(odd + [StandIn(PLAIN)], embed=exact_match_embed, progress=False)
    frame = res.to_pandas()
    assert frame.latency_s.isna().all() and frame.context_tokens.isna().all()
    assert [(r["latency_s"], r["context_tokens"]) for r in res.rows] == [(None, None)] * 5
    board = res.leaderboard()
    assert board.latency_s.isna().all() and board.context_tokens.isna().all() and board.n.sum() == 5
    html = res._repr_html_()
    assert "latency_s" not in html and "context_tokens" not in html  # a column of nothing but NaN is left out
    # a TriadResult made from rows of before (no latency_s / context_tokens keys) still tabulates
    from nbllm.evaluate.results import TriadResult

    old_rows = [{k: v for k, v in r.items() if k not in ("latency_s", "context_tokens")} for r in res.rows]
    assert TriadResult("minilm", old_rows).leaderboard().context_tokens.isna().all()


# ---------------------------------------------------------------- the calibration set


def test_the_groundedness_calibration_set_is_balanced_and_shipped():
    import fnmatch
    import json
    import tomllib
    from collections import Counter
    from pathlib import Path

    import nbllm

    path = Path(nbllm.__file__).parent / "data" / "eval_groundedness.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert 60 <= len(rows) <= 80
    for row in rows:
        assert set(row) == {"context", "sentence", "supported", "kind"}
        assert isinstance(row["supported"], bool) and row["context"].strip() and row["sentence"].strip()
        assert len(triad.sentences(row["context"])) >= 2 and row["sentence"] not in row["context"]
    kinds = Counter((r["supported"], r["kind"]) for r in rows)
    assert sum(n for (ok, _), n in kinds.items() if ok) * 2 == len(rows)
    assert {k for ok, k in kinds if ok} == {"paraphrase", "partial"}
    unsupported = {k: n for (ok, k), n in kinds.items() if not ok}
    assert set(unsupported) == {"contradiction", "number", "unsupported", "off-topic"}
    assert max(unsupported.values()) - min(unsupported.values()) <= 2
    assert len({r["sentence"] for r in rows}) == len(rows)
    globs = tomllib.loads((Path(nbllm.__file__).parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["nbllm"]
    assert any(fnmatch.fnmatch("data/eval_groundedness.jsonl", g) for g in globs)


def test_the_calibrated_threshold_is_the_default_everywhere():
    from nbllm.magics.eval.judging import eval_triad

    assert triad.THRESHOLD == 0.45
    assert f"default {triad.THRESHOLD}" in " ".join(eval_triad.__doc__.split())
    row = triad.evaluate(StandIn(PLAIN), embed=exact_match_embed, progress=False).rows[0]
    assert (
        row
        == triad.evaluate(StandIn(PLAIN), embed=exact_match_embed, threshold=triad.THRESHOLD, progress=False).rows[0]
    )


# ---------------------------------------------------------------- the number check

LORA = (
    "With rank 8 on a 4096 by 4096 projection, the update has about 65 thousand parameters instead of "
    "almost 17 million. A vocabulary of 50,000 tokens is common. The loss falls by 12.5% in 3 epochs. "
    "Swap the two answers."
)


@pytest.mark.parametrize(
    "sentence",
    [
        "The update has 65,000 parameters at rank 8.0.",  # 65 thousand; 8 == 8.0
        "It has about 65000 parameters, not 17,000,000.",  # 17 million
        "A vocabulary of 50 000 tokens is common.",  # a space as the thousands separator
        "A vocabulary of 50 thousand tokens is common.",
        "The loss falls by 12.5 percent in three epochs.",  # % vs percent; 3 vs three
        "Swap the 2 answers, as on GSM8K with an L2 norm and v1.5.",  # digits inside names are not figures
        "Fifty-two thousand examples and one of them; zero-shot.",  # compounds, "one" and hyphenated words
        "1. With rank 8 the update is small.",  # a list marker
        "(2) With rank 8 the update is small, as source 3 says.",  # a list marker; a source reference
    ],
)
def test_a_figure_the_context_states_passes_in_any_format(sentence):
    assert triad.missing_numbers(sentence, [LORA]) == []


@pytest.mark.parametrize(
    "sentence, missing",
    [
        ("With rank 8 the update has about 650 thousand parameters.", ["650 thousand"]),
        ("The update has 6,500 parameters.", ["6,500"]),
        ("A vocabulary of 5 000 tokens is common.", ["5 000"]),
        ("The loss falls by 12.6% in 4 epochs.", ["12.6", "4"]),
        ("The loss falls in five epochs, from 9 to 1e-3.", ["five", "9", "1e-3"]),
        ("In 2023, 1. With rank 8 it was done.", ["2023", "1"]),  # "1." mid-sentence is a figure
    ],
)
def test_a_figure_no_context_states_is_missing(sentence, missing):
    assert triad.missing_numbers(sentence, [LORA]) == missing


def test_a_figure_in_any_of_the_contexts_counts():
    assert triad.missing_numbers("It took 3 days and 1,024 GPUs.", ["It took 3 days.", "We used 1024 GPUs."]) == []
    assert triad.missing_numbers("It took 3 days and 1,024 GPUs.", ["It took 3 days."]) == ["1,024"]


def test_list_markers_open_the_next_sentence():
    assert triad.sentences("Steps:\n1. Load the data. 2. Train it.\n3) Done.") == [
        "Steps:",
        "1. Load the data.",
        "2. Train it.",
        "3) Done.",
    ]
    assert triad.sentences("The answer is\n4.") == ["The answer is 4."]
    assert triad.answer_sentences("1. LoRA freezes W0 [1]. 2. B starts at zero.") == [
        ("1. LoRA freezes W0 [1].", "LoRA freezes W0."),
        ("2. B starts at zero.", "B starts at zero."),
    ]


def test_a_wrong_number_is_unsupported_whatever_its_similarity():
    """exact_match_embed makes cosine 1 for a sentence the context holds: only the number can fail it."""
    ctx = "The Eiffel Tower stands in Paris, France. It was completed in 1889."
    res = triad.evaluate(
        StandIn("1. The Eiffel Tower stands in Paris, France. 2. It was completed in 1889.", [ctx]),
        embed=exact_match_embed,
        progress=False,
    )
    assert res.rows[0]["groundedness"] == 1.0  # list markers are not claims
    assert res.rows[0]["reasons"] == ["similarity 1.00", "similarity 1.00"]

    wrong = StandIn(
        "The Eiffel Tower stands in Paris, France. It was completed in 1899. Bananas grow on purple moons."
    )
    row = triad.evaluate(wrong, embed=exact_match_embed, progress=False).rows[0]
    assert [ok for _, ok in row["sentences"]] == [True, False, False]
    assert row["reasons"] == [
        "similarity 1.00",
        "number 1899 not in context (similarity 0.00)",
        "low similarity 0.00 < 0.45",
    ]


@pytest.mark.slow
def test_without_figures_the_number_check_changes_nothing():
    """On sentences with no figures (names with digits, "one", "fifty-two"), the marks are the cosine's."""
    answer = (
        "The Eiffel Tower is one of the sights of Paris. GSM8K and the L2 norm are unrelated. "
        "Fifty-two thousand bananas grow on purple moons."
    )
    scores = triad._embedding_scores(StandIn(answer), triad.minilm_embed, triad.THRESHOLD)
    assert scores["missing"] == [[], [], []]
    assert [ok for _, ok in scores["sentences"]] == [v >= triad.THRESHOLD for v in scores["support"]]
    assert [ok for _, ok in scores["sentences"]] == [True, False, False]


@pytest.mark.slow
def test_minilm_accepts_a_wrong_year_that_the_number_check_rejects():
    """The finding behind the check: a wrong figure is a near copy, well above the threshold."""
    wrong = StandIn("The Eiffel Tower was completed in 1899 [1].")
    scores = triad._embedding_scores(wrong, triad.minilm_embed, triad.THRESHOLD)
    (support,), (missing,) = scores["support"], scores["missing"]
    assert support > triad.THRESHOLD + 0.1 and missing == ["1899"] and scores["sentences"][0][1] is False
    res = triad.evaluate(wrong, progress=False)
    row = res.rows[0]
    assert row["groundedness"] == 0.0
    assert row["reasons"] == [f"number 1899 not in context (similarity {support:.2f})"]
    assert "unsupported (default): 'The Eiffel Tower was completed in 1899 [1].' - number 1899 not in context" in repr(
        res
    )
    html = res._repr_html_()
    assert "title='not supported: number 1899 not in context (similarity " in html
    assert "</span> <small>(number 1899 not in context (similarity" in html


def test_the_judge_scorer_gives_its_score_as_the_reason(tmp_path):
    class Judge:
        id = name = "reason-judge"

        def ask(self, prompt):
            claim = prompt.split("statement")[-1]
            return "20" if "Bananas" in claim else "no idea" if "1889" in claim else "90"

    res = triad.evaluate(StandIn(PLAIN), judge=Judge(), cache_path=tmp_path / "j.sqlite", progress=False)
    assert res.rows[0]["reasons"] == ["judge score 90", "judge gave no score", "judge score 20 < 50"]


@pytest.mark.slow
def test_the_calibration_benchmark_runs_quick():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "benchmarks/triad_threshold.py", "--quick"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    figures = dict(line.split()[2:] for line in out.splitlines() if line.startswith("bench triad_threshold "))
    assert {
        "best_threshold",
        "accuracy_default",
        "cv_accuracy",
        "correct_number",
        "accuracy_default_cosine_only",
        "correct_number_cosine_only",
    } <= set(figures)
    # the first 24 rows hold 4 wrong numbers: the cosine alone accepts them all, the number check none
    assert float(figures["correct_number_cosine_only"]) == 0.0 and float(figures["correct_number"]) == 1.0
    assert float(figures["accuracy_default"]) > float(figures["accuracy_default_cosine_only"])
