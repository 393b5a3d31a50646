"""%eval bias: CrowS-Pairs-style minimal pairs. The score of a side is the summed log-likelihood
of the tokens both sentences share after the group word (checked against a forward pass done
here), the share preferring the stereotype has a Wilson interval, bad pairs are one line."""

import json

import pytest
import torch
from IPython.core.error import UsageError

from nbllm.errors import DataError
from nbllm.evaluate import bias, leaderboard
from nbllm.evaluate.common import EVAL_SETS, wilson
from nbllm.evaluate.results import BiasResult

PAIRS = [
    {"sent_more": "A cat sat on the mat.", "sent_less": "A dog sat on the mat.", "category": "pets"},
    {"sent_more": "Red cars go fast.", "sent_less": "Blue cars go fast.", "category": "cars"},
    {"sent_more": "The old man slept.", "sent_less": "The young man slept.", "category": "pets"},
]


def test_shared_spans_are_difflibs_equal_blocks():
    more, less = bias.shared_spans([9, 1, 2, 3, 4], [9, 1, 7, 7, 3, 4])
    assert more == [(0, 2), (3, 5)] and less == [(0, 2), (4, 6)]
    # the common prefix is left out (it scores the same on both sides); the rest follows its context
    assert bias.requests([9, 1, 2, 3, 4], more) == [([9, 1, 2], [3, 4])]


def independent_score(model, tokenizer, text: str, suffix: str) -> float:
    """log p of the last len(suffix tokens) tokens of text, from one plain forward pass."""
    ids = [tokenizer.bos_token_id] + tokenizer(text).input_ids
    n = len(tokenizer(suffix).input_ids)
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
    return float(sum(logp[i - 1, ids[i]] for i in range(len(ids) - n, len(ids))))


def test_a_pair_scores_the_shared_words_after_the_group_word():
    from nbllm import models

    model, tok = models.tiny_llama()
    result = bias.evaluate("tiny-llama", PAIRS[:1], progress=False)
    row = result.rows[0]
    # byte tokens: "A " is the common prefix, cat/dog differ in every byte, " sat on the mat." is shared
    more = independent_score(model, tok, "A cat sat on the mat.", " sat on the mat.")
    less = independent_score(model, tok, "A dog sat on the mat.", " sat on the mat.")
    assert row["score_more"] == pytest.approx(more, abs=1e-4)
    assert row["score_less"] == pytest.approx(less, abs=1e-4)
    assert row["margin"] == pytest.approx(more - less, abs=1e-4)
    assert row["prefers_stereotype"] == (more > less)
    assert row["scored_more"] == row["scored_less"] == len(" sat on the mat.")


def test_share_interval_categories_and_drivers():
    rows = [
        {
            "id": i,
            "category": c,
            "sent_more": "m",
            "sent_less": "l",
            "score_more": 0.0,
            "score_less": 0.0,
            "margin": m,
            "prefers_stereotype": m > 0,
            "tie": m == 0,
            "scored_more": 1,
            "scored_less": 1,
        }
        for i, (c, m) in enumerate([("a", 2.0), ("a", -1.0), ("b", 0.5), ("b", 3.0), ("b", 0.0)])
    ]
    r = BiasResult("m", "d", rows)
    assert r.score == pytest.approx(3 / 5) and r.ties == 1  # a tie counts against the stereotype
    assert r.ci() == pytest.approx(wilson(3, 5))
    cats = r.by_category().set_index("category")
    assert cats.loc["a", "stereotype_share"] == 0.5 and cats.loc["b", "stereotype_share"] == pytest.approx(2 / 3)
    assert (cats.loc["b", "ci_low"], cats.loc["b", "ci_high"]) == pytest.approx(wilson(2, 3))
    assert r.drivers(2).id.tolist() == [3, 0]
    metrics = {row["metric"] for row in r.leaderboard_rows()}
    assert metrics == {"stereotype_share", "stereotype_share:a", "stereotype_share:b"}
    assert repr(r) == repr(BiasResult("m", "d", rows)) and "0.6" in repr(r)


def test_scores_are_reproducible_and_on_the_leaderboard():
    a = bias.evaluate("tiny-llama", PAIRS, progress=False, label="mine")
    b = bias.evaluate("tiny-llama", PAIRS, progress=False, label="mine")
    assert a.to_pandas().equals(b.to_pandas()) and repr(a) == repr(b)
    board = [row for row in leaderboard.leaderboard().rows if row["task"] == "bias mine"]
    assert {row["metric"] for row in board} == {"stereotype_share", "stereotype_share:cars", "stereotype_share:pets"}


def test_the_shipped_pairs():
    lines = EVAL_SETS["bias-pairs"].read_text(encoding="utf-8").splitlines()
    pairs = [json.loads(line) for line in lines]
    assert 100 <= len(pairs) <= 150 and len({p["id"] for p in pairs}) == len(pairs)
    cats = {p["category"] for p in pairs}
    assert {"gender", "age", "nationality", "religion", "disability", "socioeconomic", "occupation"} <= cats
    assert all(sum(p["category"] == c for p in pairs) >= 15 for c in cats)
    checked = bias.pairs_from("bias-pairs")
    assert len(checked) == len(pairs) and all(p["sent_more"] != p["sent_less"] for p in checked)


@pytest.mark.parametrize(
    "pairs, message",
    [
        ([{"sent_more": "", "sent_less": "Men cook."}], "pair 1 has an empty sent_more"),
        ([PAIRS[0], {"sent_more": "Men cook.", "sent_less": "   "}], "pair 2 has an empty sent_less"),
        ([{"sent_more": "Men cook.", "sent_less": "Men cook. "}], "pair 1 has the same sentence on both sides"),
        ([{"sent_more": "Men cook."}], "pair 1 has no sent_less"),
        ([], "the bias pairs are empty"),
    ],
)
def test_bad_pairs_are_one_usage_error_line(ip, pairs, message):
    with pytest.raises(DataError, match=message):
        bias.pairs_from(pairs)
    ip.user_ns["pairs"] = pairs
    with pytest.raises(UsageError, match="DataError: " + message) as err:
        ip.run_cell("%eval bias --model tiny-llama --data pairs")
    assert "\n" not in str(err.value)


def test_an_encoder_is_refused_as_the_scorer(ip):
    with pytest.raises(UsageError, match="ModelError: 'minilm' is an encoder"):
        ip.run_cell("%eval bias --model minilm --limit 2")


def test_the_magic_binds_a_result(ip):
    ip.run_cell("%eval bias --model tiny-llama --limit 6 --out b")
    b = ip.user_ns["b"]
    assert b.n == 6 and b.data == "bias-pairs" and 0 <= b.score <= 1
    assert set(b.to_pandas().category) == {"gender"} and len(b.drivers(3)) == 3


@pytest.mark.slow
def test_smollm2_on_the_shipped_pairs_matches_a_plain_forward_pass():
    """On SmolLM2's BPE tokens: the score is the sum over the shared tokens after the first difference."""
    import difflib

    from nbllm import models

    result = bias.evaluate("smollm2", limit=10, progress=False)
    model, tok = models.load_shared("smollm2")
    for row in result.rows[:3]:
        ids = {s: bias.token_ids(tok, row[f"sent_{s}"]) for s in ("more", "less")}
        ops = difflib.SequenceMatcher(None, ids["more"], ids["less"], autojunk=False).get_opcodes()
        for side, (lo, hi) in (("more", (1, 2)), ("less", (3, 4))):
            seq = ids[side]
            with torch.no_grad():
                logp = model(torch.tensor([seq])).logits[0].float().log_softmax(-1)
            keep = [k for op in ops[1:] if op[0] == "equal" for k in range(op[lo], op[hi])]
            assert row[f"score_{side}"] == pytest.approx(float(sum(logp[k - 1, seq[k]] for k in keep)), abs=1e-3)
