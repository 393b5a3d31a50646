"""Parity of nbllm's text metrics with the reference implementations, on 50 varied pairs.

- ROUGE-L F-measure against Google's rouge-score (`RougeScorer(["rougeL"])`, its default
  use_stemmer=False, which nbllm matches); rouge-score is in the `dev` extra.
- Exact match and token F1 against the SQuAD v1.1 evaluation script, written out below from its
  spec (lowercase, drop string.punctuation, drop a/an/the, collapse whitespace; F1 from the
  Counter overlap of the tokens).
"""

import re
import string
from collections import Counter

import pytest

from nbllm.evaluate import generative


# ---------------------------------------------------------------- SQuAD v1.1, from the spec


def squad_normalize(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_f1(prediction, ground_truth):
    pred_tokens = squad_normalize(prediction).split()
    truth_tokens = squad_normalize(ground_truth).split()
    common = Counter(pred_tokens) & Counter(truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_tokens)
    recall = 1.0 * num_same / len(truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_em(prediction, ground_truth):
    return squad_normalize(prediction) == squad_normalize(ground_truth)


# (prediction, reference)
PAIRS = [
    ("The Eiffel Tower is in Paris.", "Paris"),
    ("Paris", "paris."),
    ("in Paris, France", "Paris France"),
    ("the cat sat on the mat", "a cat sat"),
    ("", ""),
    ("", "something"),
    ("something", ""),
    ("   ", "the"),
    ("the a an", "a the"),
    ("An apple a day", "the apple, the day!"),
    ("Theory of the anthem", "theory anthem"),  # 'the' inside words stays
    ("12 * 4 = 48 rolls. 48 - 30 = 18.", "#### 18"),
    ("It costs $1,234.50 in total", "1234.50"),
    ("3.14159", "3.14"),
    ("route 66, exit 9", "Exit 9 on Route 66"),
    ("yes yes yes", "yes"),
    ("no no yes yes", "yes no yes no"),
    ("the the the", "the"),
    ("a b c d", "a c d e"),
    ("x y", "a b"),
    ("New York City", "new york"),
    ("New-York", "new york"),
    ("U.S.A.", "USA"),
    ("don't stop", "do not stop"),
    ("rock'n'roll", "rock n roll"),
    ("café au lait", "cafe au lait"),
    ("Zürich, Switzerland", "zurich switzerland"),
    ("naïve Bayes", "naive bayes"),
    ("東京 is the capital", "Tokyo is the capital"),
    ("Москва столица", "москва"),
    ("emoji 🙂 test", "emoji test"),
    ("tab\tseparated\nlines", "tab separated lines"),
    ("MiXeD CaSe WoRdS", "mixed case words"),
    ("hello,world", "hello world"),
    ("hello—world", "hello world"),  # em dash is not string.punctuation
    ("“quoted” text", "quoted text"),
    ("(parenthesised) answer [1]", "parenthesised answer 1"),
    ("running runs ran", "run"),  # no stemmer: these stay different words
    ("The quick brown fox jumps over the lazy dog", "the lazy dog was jumped over by the quick brown fox"),
    ("one two three four five six seven", "seven six five four three two one"),
    ("a a a b b", "a b a b a"),
    ("42", "42.0"),
    ("1,000", "1000"),
    ("-5 degrees", "minus 5 degrees"),
    ("50% of them", "50 percent"),
    ("first: alpha; second: beta", "alpha beta"),
    ("ÀÉÎ", "aei"),
    ("İstanbul", "istanbul"),
    ("the answer is an egg", "egg"),
    ("to be or not to be that is the question", "to be that is the question"),
]


def test_fifty_varied_pairs():
    assert len(PAIRS) == 50 and len(set(PAIRS)) == 50


@pytest.fixture(scope="module")
def rouge():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer", reason="pip install -e '.[dev]' (rouge-score)")
    return rouge_scorer.RougeScorer(["rougeL"])


@pytest.mark.slow
def test_rouge_l_equals_rouge_score(rouge):
    diffs = [abs(generative.rouge_l(pred, ref) - rouge.score(ref, pred)["rougeL"].fmeasure) for pred, ref in PAIRS]
    assert max(diffs) <= 1e-9, [p for p, d in zip(PAIRS, diffs) if d > 1e-9]


def test_rouge_l_is_symmetric_like_its_f_measure(rouge):
    for pred, ref in PAIRS:
        assert generative.rouge_l(ref, pred) == pytest.approx(rouge.score(pred, ref)["rougeL"].fmeasure, abs=1e-9)


def test_token_f1_equals_squad_v1_1():
    diffs = [abs(generative.token_f1(pred, ref) - squad_f1(pred, ref)) for pred, ref in PAIRS]
    assert max(diffs) <= 1e-9, [p for p, d in zip(PAIRS, diffs) if d > 1e-9]


def test_exact_match_and_normalisation_equal_squad_v1_1():
    for pred, ref in PAIRS:
        assert generative.normalize_answer(pred) == squad_normalize(pred)
        assert generative.exact_match(pred, ref) == float(squad_em(pred, ref))


def test_the_pairs_exercise_every_branch(rouge):
    """The set is not trivial: partial credit, zero, full marks, and the two metrics disagree."""
    f1 = [generative.token_f1(p, r) for p, r in PAIRS]
    rl = [generative.rouge_l(p, r) for p, r in PAIRS]
    assert {0.0, 1.0} <= set(f1) and any(0 < x < 1 for x in f1)
    assert {0.0, 1.0} <= set(rl) and any(0 < x < 1 for x in rl)
    assert sum(abs(a - b) > 1e-6 for a, b in zip(f1, rl)) >= 10
    assert generative.token_f1("", "") == 0.0 and generative.exact_match("", "") == 1.0  # as v1.1
    assert rouge.score("", "")["rougeL"].fmeasure == 0.0 == generative.rouge_l("", "")
