"""Generative metrics, sliding-window perplexity, contamination and the leaderboard."""

import math

import pytest
from IPython.core.error import UsageError

from nbllm.evaluate import contamination, generative, leaderboard, perplexity
from nbllm.evaluate.common import resolve_model
from nbllm.testing import register_tiny_model


@pytest.fixture(scope="module")
def tiny():
    register_tiny_model("tiny-eval", seed=1)
    return resolve_model("tiny-eval")


def test_text_metrics_on_hand_checked_cases():
    assert generative.exact_match("The Paris.", "paris") == 1.0
    assert generative.exact_match("Paris, France", "Paris") == 0.0
    # normalised: "cat sat on mat" vs "cat sat": P = 2/4, R = 2/2
    assert generative.token_f1("the cat sat on the mat", "a cat sat") == pytest.approx(2 * 0.5 * 1 / (0.5 + 1))
    assert generative.token_f1("", "") == 1.0 and generative.token_f1("x", "") == 0.0
    # LCS of "a b c d" and "a c d e" is "a c d": P = R = 3/4
    assert generative.rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    assert generative.rouge_l("x y", "a b") == 0.0


@pytest.mark.parametrize("text, number", [
    ("12 * 4 = 48 rolls. 48 - 30 = 18.\n#### 18", 18.0),
    ("so the total is 1,500 grams.", 1500.0),
    ("The answer is -3.5", -3.5),
    ("First 2, then 3, finally 42.", 42.0),
    ("no digits here", None),
])
def test_final_number_extraction(text, number):
    assert generative.extract_number(text) == number


def test_gen_scores_given_predictions_without_a_model():
    records = [{"question": "q1", "answer": "step\n#### 18", "prediction": "I think it is 18."},
               {"question": "q2", "answer": "#### 7", "prediction": "It is 8"},
               {"question": "q3", "references": ["Paris", "paris france"], "prediction": "Paris France!"}]
    num = generative.evaluate(None, records[:2], metric="number")
    assert num.score == 0.5 and num.to_pandas().extracted.tolist() == [18.0, 8.0]
    em = generative.evaluate(None, records[2:], metric="em")
    assert em.score == 1.0  # the best of several references
    with pytest.raises(Exception, match="unknown metric"):
        generative.evaluate(None, records, metric="bleu")


def test_gen_with_a_model_generates_for_each_record(ip, tiny):
    res = ip.run_cell("%eval gen --model tiny-eval --data word-problems --metric rougeL --limit 2 "
                      "--max-new-tokens 4 --out g").result
    assert len(res.rows) == 2 and all(isinstance(r["output"], str) for r in res.rows)
    assert 0 <= res.score <= 1 and ip.user_ns["g"] is res


def _full_nll(lm, ids):
    import torch

    with torch.no_grad():
        logp = lm(torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
    return -float(logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())


def test_sliding_window_scores_every_token_once(tiny):
    lm, tok, _ = tiny
    ids = tok("The quick brown fox jumps over the lazy dog. " * 3).input_ids
    nll, scored, windows = perplexity.doc_nll(lm, ids, window=len(ids), stride=len(ids))
    assert scored == len(ids) - 1 and windows == 1
    assert nll == pytest.approx(_full_nll(lm, ids), rel=1e-5)  # one window = the plain computation
    for window, stride in ((40, 10), (40, 40), (64, 17)):
        _, scored, windows = perplexity.doc_nll(lm, ids, window, stride)
        expected = len(ids) - 1 - (len(range(window, len(ids), stride)) if stride == window else 0)
        assert scored == expected  # with stride == window, each new window's first token has no context
        assert windows == math.ceil((len(ids) - window) / stride) + 1


def test_ppl_result_and_bad_settings(ip, tiny):
    ip.user_ns["essay"] = "Language models predict the next token. " * 20
    res = ip.run_cell("%eval ppl --model tiny-eval --data essay --window 64 --stride 32").result
    assert res.ppl == pytest.approx(math.exp(res.nll))
    assert res.n_tokens == len(ip.user_ns["essay"]) - 1  # byte tokenizer: one token per character
    assert res.summary()["windows"] > 1
    with pytest.raises(UsageError, match="stride must be between 1 and the window"):
        ip.run_cell("%eval ppl --model tiny-eval --data essay --window 64 --stride 100")
    with pytest.raises(UsageError, match="window must be between 2"):
        ip.run_cell("%eval ppl --model tiny-eval --data essay --window 5000")
    ip.user_ns["blank"] = "   "
    with pytest.raises(UsageError, match="text is empty"):
        ip.run_cell("%eval ppl --model tiny-eval --data blank")


def test_contamination_finds_a_planted_overlap():
    train = ["the weather was mild all week and the farmers planted their corn early in the spring season",
             "unrelated text about boats"]
    test = [{"question": "Everyone knows the farmers planted their corn early in the spring season, right?"},
            {"question": "What did the astronomers see through the new telescope on the hill last night?"},
            {"question": "Too short."}]
    res = contamination.check(train, test, n=8)
    assert [r["contaminated"] for r in res.rows] == [True, False, False]
    assert res.rows[0]["spans"] == ["the farmers planted their corn early in the spring season"]
    assert res.rate == pytest.approx(1 / 3) and res.short == 1
    assert res.clean == test[1:]
    assert "<mark>the farmers planted" in res._repr_html_()
    assert contamination.check(train, test, n=13).contaminated == 0  # overlap of 10 words < 13


def test_contamination_bad_n_and_empty_sets(ip):
    ip.user_ns["tr"], ip.user_ns["te"], ip.user_ns["none"] = ["a b c"], ["a b c"], []
    for n in ("0", "-2"):
        with pytest.raises(UsageError, match="n-gram size must be a positive integer"):
            ip.run_cell(f"%eval contamination --train tr --test te --n {n}")
    with pytest.raises(UsageError, match="eval set is empty"):
        ip.run_cell("%eval contamination --train tr --test none")
    assert ip.run_cell("%eval contamination --train tr --test te --n 3").result.contaminated == 1


def test_leaderboard_collects_results_and_exports(ip, tmp_path):
    leaderboard.clear()
    generative.evaluate(None, [{"question": "q", "answer": "yes", "prediction": "yes"}], metric="em")
    contamination.check(["a b c d"], ["a b c d", "x y z w"], n=2)
    generative.evaluate(None, [{"question": "q", "answer": "yes", "prediction": "no"}], metric="em")  # rerun: replaces
    csv, md = tmp_path / "board.csv", tmp_path / "board.md"
    board = ip.run_cell(f"%eval leaderboard --csv {csv} --markdown {md}").result
    frame = board.to_pandas()
    assert list(frame.columns) == ["model", "task", "metric", "value", "n", "ci_low", "ci_high"]
    assert frame.metric.tolist() == ["rate", "em"] and frame.value.tolist() == [0.5, 0.0]
    assert csv.read_text().startswith("model,task,metric,value,n,ci_low,ci_high")
    assert md.read_text().splitlines()[0] == "| model | task | metric | value | n | ci_low | ci_high |"
    assert "<img" in board._repr_html_()
    assert len(ip.run_cell("%eval leaderboard --clear").result.rows) == 0
