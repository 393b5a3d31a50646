"""Synthetic ICL tasks: exact answers, deterministic records, context length in items."""

import pytest

from nbllm.errors import ConfigError, DataError
from nbllm.evaluate.synthetic import TASKS, make_sweep, make_task, normalize, score_generations


@pytest.mark.parametrize("task", TASKS)
def test_records_have_the_schema_and_are_deterministic(task):
    recs = make_task(task, n=5, context_length=6, seed=3)
    assert len(recs) == 5
    assert all({"prompt", "answer", "task", "context_length"} <= set(r) for r in recs)
    assert all(r["task"] == task and r["context_length"] == 6 for r in recs)
    assert recs == make_task(task, n=5, context_length=6, seed=3)
    assert recs != make_task(task, n=5, context_length=6, seed=4)
    assert make_task(task, n=8, context_length=6, seed=3)[:5] == recs  # record i does not depend on n


def test_answers_are_exact():
    for rec in make_task("mqar", n=10, context_length=12, queries=5):
        assert len(rec["pairs"]) == 12 and len(rec["queries"]) == 5
        assert rec["answer"].split() == [rec["pairs"][k] for k in rec["queries"]]
        assert all(f"{k}:{v}" in rec["prompt"] for k, v in rec["pairs"].items())
    for rec in make_task("copy", n=5, context_length=9):
        assert rec["answer"].split() == rec["sequence"] and len(rec["sequence"]) == 9
    for rec in make_task("palindrome", n=5, context_length=9):
        assert rec["answer"].split() == rec["sequence"][::-1]
    for rec in make_task("state", n=20, context_length=7):
        value = rec["start"]
        for op in rec["operations"]:
            value = (value + int(op)) % 10
        assert rec["answer"] == str(value) and len(rec["operations"]) == 7
    for rec in make_task("permutation", n=20, context_length=5):
        row = list("abcde")
        for a, b in rec["swaps"]:
            row[a - 1], row[b - 1] = row[b - 1], row[a - 1]
        assert rec["answer"] == " ".join(row) and len(rec["swaps"]) == 5


def test_shots_prepend_solved_examples_without_changing_the_question():
    plain = make_task("copy", n=3, context_length=4, seed=1)
    shot = make_task("copy", n=3, context_length=4, seed=1, shots=2)
    for p, s in zip(plain, shot):
        assert s["answer"] == p["answer"] and s["prompt"].endswith(p["prompt"].split("\n\n", 1)[1])
        assert s["prompt"].count("Copy:") == 3


def test_longer_context_means_more_items_in_the_prompt():
    short, long = make_task("mqar", n=1, context_length=4)[0], make_task("mqar", n=1, context_length=64)[0]
    assert short["prompt"].count(":") < long["prompt"].count(":")
    sweep = make_sweep("state", [2, 8, 32], n=4)
    assert [r["context_length"] for r in sweep] == [2] * 4 + [8] * 4 + [32] * 4


def test_scoring_is_exact_match_after_light_normalisation():
    recs = make_task("mqar", n=3, context_length=6, queries=3)
    outs = [recs[0]["answer"] + "\nmore text", recs[1]["answer"].replace(" ", ", ") + ".", "0 0 0"]
    score = score_generations(recs, outs)
    assert score["correct"][:2] == [True, True] and score["n"] == 3
    assert score["exact_match"] == pytest.approx(2 / 3 if not score["correct"][2] else 1.0)
    assert normalize("  [A, B]. \n x") == "a b"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "nope"}, "unknown synthetic task"),
        ({"name": "copy", "n": 0}, "n must be an integer >= 1"),
        ({"name": "copy", "context_length": 0}, "context_length must be"),
        ({"name": "mqar", "context_length": 10**5}, "distinct keys"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_task(**kwargs)


def test_score_needs_one_output_per_record():
    with pytest.raises(DataError, match="one output per record"):
        score_generations(make_task("copy", n=2), ["a"])
    with pytest.raises(DataError, match="no records"):
        score_generations([], [])


@pytest.mark.slow
def test_synthetic_magic_sweeps_context_lengths(ip):
    from IPython.core.error import UsageError

    from nbllm.testing import register_tiny_model

    register_tiny_model("tiny-eval", seed=1)
    res = ip.run_cell(
        "%eval synthetic --task palindrome --model tiny-eval --context-length 2,4 --n 2 --shots 1 --out syn"
    ).result
    assert ip.user_ns["syn"] is res and len(res.rows) == 4
    assert res.by_length().context_length.tolist() == [2, 4]
    assert all(r["prompt"].count("Reversed:") == 2 for r in res.rows)
    assert [r["task"] for r in res.leaderboard_rows()] == ["palindrome @2", "palindrome @4"]
    with pytest.raises(UsageError, match="--context-length takes integers"):
        ip.run_cell("%eval synthetic --model tiny-eval --context-length four")
    with pytest.raises(UsageError, match="unknown synthetic task"):
        ip.run_cell("%eval synthetic --model tiny-eval --task sorting")


def test_importing_evaluate_and_the_magic_loads_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, nbllm.evaluate, nbllm.evaluate.synthetic, nbllm.magics.eval; "
        "nbllm.evaluate.synthetic.make_task('mqar', n=2); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
