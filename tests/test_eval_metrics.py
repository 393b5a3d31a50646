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
    assert generative.token_f1("", "") == 0.0 and generative.token_f1("x", "") == 0.0  # SQuAD v1.1
    # LCS of "a b c d" and "a c d e" is "a c d": P = R = 3/4
    assert generative.rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    assert generative.rouge_l("x y", "a b") == 0.0


@pytest.mark.parametrize(
    "text, number",
    [
        ("12 * 4 = 48 rolls. 48 - 30 = 18.\n#### 18", 18.0),
        ("so the total is 1,500 grams.", 1500.0),
        ("The answer is -3.5", -3.5),
        ("First 2, then 3, finally 42.", 42.0),
        ("no digits here", None),
        ("#### 7\nQuestion: next one, 3 apples", 7.0),  # the marker wins over the last number
        ("#### seven, or 7", None),  # a marker without a number after it: no answer
    ],
)
def test_final_number_extraction(text, number):
    assert generative.extract_number(text) == number


THIRD = 2 / 3

# text, strict (the number right after the first '####'), flexible (the last number)
NUMBER_TABLE = [
    ("#### 18", 18.0, 18.0),
    ("48 - 30 = 18.\n#### 18", 18.0, 18.0),
    ("The answer is 18.", None, 18.0),  # no marker: strict has nothing
    ("####18", 18.0, 18.0),  # the space after #### is optional
    ("#### .5", 0.5, 0.5),  # a leading decimal point
    ("it is .5 of it", None, 0.5),
    ("#### \u22125", -5.0, -5.0),  # U+2212 minus sign
    ("the change is \u22125 degrees", None, -5.0),
    ("#### -5", -5.0, -5.0),
    ("x = -5", None, -5.0),
    ("12-4", None, 4.0),  # subtraction, not -4
    ("#### 1e3", 1000.0, 1000.0),  # scientific notation
    ("about 2.5E-2 of them", None, 0.025),
    ("#### 2/3", THIRD, THIRD),  # a fraction is its value
    ("she ate 2/3", None, THIRD),
    ("1,000/4 = 250", None, 250.0),
    ("on 3/4/2024 we met", None, None),  # a date is no number, and it is the last one
    ("5/0", None, None),  # no value
    ("#### 1,234", 1234.0, 1234.0),  # thousands separators
    ("#### 1,234,567.5", 1234567.5, 1234567.5),
    ("#### 12,5", None, None),  # ambiguous comma: not a number
    ("sizes 3, 4, 12,5", None, None),  # ... even as the last one
    ("#### 12, 5", 12.0, 5.0),  # a comma and a space separate numbers
    ("#### $1,234.50", 1234.5, 1234.5),  # currency
    ("It costs -$5 or $-5", None, -5.0),
    ("#### 42.", 42.0, 42.0),  # a full stop ends the sentence
    ("#### 5.0", 5.0, 5.0),
    ("#### 50%", 50.0, 50.0),
    ("version 1.2.3", None, None),
    ("#### 18\n#### 20", 18.0, 20.0),  # strict takes the first marker
    ("#### none\n#### 20", 20.0, 20.0),  # ... that has a number
    ("#### eighteen", None, None),
    ("", None, None),
    ("came 3rd of 10, after 1 hour", None, 1.0),
]


def test_the_number_table_is_big_enough():
    assert len(NUMBER_TABLE) >= 25 and len({t for t, _, _ in NUMBER_TABLE}) == len(NUMBER_TABLE)


@pytest.mark.parametrize("text, strict, flexible", NUMBER_TABLE)
def test_strict_and_flexible_readings(text, strict, flexible):
    assert generative.extract_strict(text) == strict
    assert generative.extract_flexible(text) == flexible
    assert generative.extract_number(text) == (strict if "####" in text else flexible)


@pytest.mark.parametrize(
    "prediction, reference, strict, flexible",
    [
        ("#### 5.0", "#### 5", 1.0, 1.0),  # values, not strings
        ("#### 5.00 apples, 2 pears", "#### 5", 1.0, 0.0),
        ("so 1,000 in all", "#### 1000", 0.0, 1.0),
        ("#### $1,000", "#### 1000.00", 1.0, 1.0),
        ("#### 0.67", "#### 2/3", 0.0, 0.0),  # compared exactly: 0.67 is not 2/3
        ("#### 125", "#### 12,5", 0.0, 0.0),  # an unreadable reference credits nothing
        ("#### 12,5", "#### 125", 0.0, 0.0),
        ("it is \u22127", "7", 0.0, 0.0),
        ("it is \u22127", "-7", 0.0, 1.0),
    ],
)
def test_number_metrics_compare_values(prediction, reference, strict, flexible):
    assert generative.score(prediction, reference, "strict") == strict
    assert generative.score(prediction, reference, "flexible") == flexible
    assert generative.score(prediction, reference, "number") == (strict if "####" in prediction else flexible)


def test_gen_scores_given_predictions_without_a_model():
    records = [
        {"question": "q1", "answer": "step\n#### 18", "prediction": "I think it is 18."},
        {"question": "q2", "answer": "#### 7", "prediction": "It is 8"},
        {"question": "q3", "references": ["Paris", "paris france"], "prediction": "Paris France!"},
    ]
    num = generative.evaluate(None, records[:2], metric="number")
    assert num.score == 0.5 and num.to_pandas().extracted.tolist() == [18.0, 8.0]
    both = [
        {"question": "q", "answer": "#### 18", "prediction": p}
        for p in ("#### 18", "so 18", "#### 17 but maybe 18", "#### 1")
    ]
    for metric, extracted in (
        ("strict", [18.0, None, 17.0, 1.0]),
        ("flexible", [18.0, 18.0, 18.0, 1.0]),
        ("number", [18.0, 18.0, 17.0, 1.0]),
    ):
        res = generative.evaluate(None, both, metric=metric, name="both")
        frame = res.to_pandas()
        assert res.scores == {"strict": 0.25, "flexible": 0.75}  # both readings, whichever metric
        assert frame.strict.tolist() == [1.0, 0.0, 0.0, 0.0] and frame.flexible.tolist() == [1.0, 1.0, 1.0, 0.0]
        assert [r["extracted"] for r in res.rows] == extracted
        assert frame.strict_answer.tolist()[0] == 18.0 and frame.flexible_answer.tolist()[2] == 18.0
        assert res.score == {"strict": 0.25, "flexible": 0.75, "number": 0.5}[metric]
        assert res.summary()["strict"] == 0.25 and res.summary()["flexible"] == 0.75
        assert {r["metric"] for r in res.leaderboard_rows()} == {metric, "strict", "flexible"}
    em = generative.evaluate(None, records[2:], metric="em")
    assert em.score == 1.0  # the best of several references
    with pytest.raises(Exception, match="unknown metric"):
        generative.evaluate(None, records, metric="bleu")


def test_gen_with_a_model_generates_for_each_record(ip, tiny):
    res = ip.run_cell(
        "%eval gen --model tiny-eval --data word-problems --metric rougeL --limit 2 --max-new-tokens 4 --out g"
    ).result
    assert len(res.rows) == 2 and all(isinstance(r["output"], str) for r in res.rows)
    assert 0 <= res.score <= 1 and ip.user_ns["g"] is res


def _full_nll(lm, ids):
    import torch

    with torch.no_grad():
        logp = lm(torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
    return -float(logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())


@pytest.mark.slow
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


@pytest.mark.slow
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
    train = [
        "the weather was mild all week and the farmers planted their corn early in the spring season",
        "unrelated text about boats",
    ]
    test = [
        {"question": "Everyone knows the farmers planted their corn early in the spring season, right?"},
        {"question": "What did the astronomers see through the new telescope on the hill last night?"},
        {"question": "Too short."},
    ]
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
    generative.evaluate(
        None, [{"question": "q", "answer": "yes", "prediction": "no"}], metric="em"
    )  # other data: a row
    generative.evaluate(None, [{"question": "q", "answer": "yes", "prediction": "no"}], metric="em")  # rerun: replaces
    csv, md = tmp_path / "board.csv", tmp_path / "board.md"
    board = ip.run_cell(f"%eval leaderboard --csv {csv} --markdown {md}").result
    frame = board.to_pandas()
    assert list(frame.columns)[:7] == ["model", "task", "metric", "value", "n", "ci_low", "ci_high"]
    assert frame.metric.tolist() == ["em", "rate", "em"] and frame.value.tolist() == [1.0, 0.5, 0.0]
    assert csv.read_text().startswith("model,task,metric,value,n,ci_low,ci_high")
    assert md.read_text().splitlines()[0] == "| model | task | metric | value | n | ci_low | ci_high |"
    assert "<img" in board._repr_html_()
    assert len(ip.run_cell("%eval leaderboard --clear").result.rows) == 0
