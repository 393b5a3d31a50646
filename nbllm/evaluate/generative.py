"""Generative scoring: the model writes an answer, a metric compares it with the reference.

    em        exact match after SQuAD v1.1 normalisation (lowercase, no punctuation or a/an/the)
    f1        token-overlap F1 after the same normalisation (SQuAD v1.1's f1_score)
    rougeL    ROUGE-L F-measure on the longest common subsequence of words (rouge-score's rougeL)
    strict    GSM8K strict-match: the number right after the first '####' equals the reference's
    flexible  GSM8K flexible-extract: the last number anywhere in the output equals the reference's
    number    strict when the output writes '####', else flexible (nbllm's original metric)

A run with strict, flexible or number reports both readings: each row has strict_answer,
flexible_answer and their 0/1 scores strict and flexible, and the result's .scores (and the
leaderboard) carries both means.

Text metrics, as the reference implementations (tests/test_eval_parity_metrics.py checks 50 pairs):

- em and f1 are SQuAD v1.1's evaluate-v1.1.py: lowercase, drop string.punctuation, drop the
  words a/an/the, collapse whitespace; f1 counts the multiset overlap. An empty answer scores
  f1 0 even against an empty reference (as v1.1; SQuAD v2 would give 1), while em("", "") is 1.
- rougeL is Google's rouge-score `RougeScorer(["rougeL"])` with its default use_stemmer=False
  (the stemmer is off, as in HF `evaluate`'s rouge): lowercase, every run of characters outside
  [a-z0-9] splits words (so accented letters and other scripts are dropped), F = 2PR/(P+R), and
  0 when either side has no word.

Numbers, the way lm-evaluation-harness's gsm8k task reads them, with one grammar for both
readings (the harness matches `#### (\\-?[0-9\\.\\,]+)` for strict and the last match of
`(-?[$0-9.,]{2,})|(-?[0-9]+)` for flexible, then compares strings; nbllm compares values):

- A number is an optional sign, an optional currency sign ($, €, £), digits, and
  optionally a decimal part, an exponent and one denominator: `$1,234.50` -> 1234.5,
  `.5` -> 0.5, `42.` -> 42 (a full stop after a number ends the sentence), `50%` -> 50.
- Minus is '-' or U+2212 '−': `−5` -> -5. It is a sign only where a number starts (after a
  space, '=', '(' ...); right after a digit, letter or ')' it is subtraction or a range, so
  `12-4` reads 12 and 4 (the harness would read -4), and `$-5` and `-$5` are both -5.
- Thousands separators are commas in groups of three: `1,234` and `1,234,567.5` read as
  1234 and 1234567.5. Any other comma between digits is ambiguous (`12,5` is 12.5 in much of
  Europe, and the list 12, 5 without its space), so `12,5` is not read as a number at all:
  neither 125 (the harness drops commas) nor 12.5 nor 5. A comma or space after a number
  (`3, 4`) just separates numbers.
- Scientific notation counts: `1e3` -> 1000, `2.5E-2` -> 0.025 (the harness reads `1e3` as 3).
- A fraction of two integers is its value: `2/3` -> 0.666..., `1,000/4` -> 250, because the
  last number in "x = 2/3" is two thirds, not 3; reading 3 would credit a wrong answer when the
  reference is 3. Chains like dates (`3/4/2024`), a zero or non-integer denominator, and
  versions like `1.2.3` are not numbers. `1 1/2` reads as two numbers, 1 and 0.5.
- Values compare exactly as floats, so `5.0` == `5` == `5.00` and `1,000` == `1000`;
  `0.67` is not `2/3`. Only ASCII digits count; words ("eighteen") do not.
- strict: the first '####' that is followed (after optional spaces) by a number; None when none
  is (the harness also needs exactly one space and no '$'). flexible: the last number in the
  whole text. A number-like token that breaks the rules above (`12,5`) still counts as the last
  token, with no value: the output's final answer is unreadable, not an earlier number.
- The reference's number is read by `extract_number`: strict when it writes '####' (GSM8K
  references always do), else flexible.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter

from ..errors import ConfigError, DataError
from .common import check_limit, load_eval_records
from .results import GenResult, _r, _row

METRICS = ("em", "f1", "rougeL", "number", "strict", "flexible")
NUMBER_METRICS = ("number", "strict", "flexible")
_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ROUGE_SPLIT = re.compile(r"[^a-z0-9]+")
# A number-like token: [sign] [currency] [sign] digits (with '.' or ',' only between digits)
# [exponent] [/denominator...]. _value() then decides whether it is a valid number.
_DIGITS = r"(?:[0-9]|[.,](?=[0-9]))*"
_TOKEN = re.compile(
    r"(?:(?<![\w)\]])(?P<sign>[-\u2212]))?"  # a minus right after a word, digit or bracket is subtraction
    r"(?:(?P<currency>[$€£])(?P<sign2>[-\u2212])?)?"  # $-5
    r"(?P<body>(?:[0-9]|\.(?=[0-9]))" + _DIGITS + r")"
    r"(?P<exp>[eE][-+\u2212]?[0-9]+)?"
    r"(?P<den>(?:/[0-9]" + _DIGITS + r")+)?"
)
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?|[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|\.[0-9]+")
_MARKER = re.compile(r"####[ \t]*")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lowercase, drop punctuation and a/an/the, collapse spaces."""
    text = "".join(ch for ch in str(text).lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def _f(overlap: int, n_pred: int, n_ref: int) -> float:
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_pred, overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD v1.1 F1: multiset token overlap after normalize_answer; 0 when either side is empty."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    return _f(sum((Counter(pred) & Counter(ref)).values()), len(pred), len(ref))


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_words(text: str) -> list[str]:
    """rouge-score's default tokenizer without the stemmer: lowercase, split on anything outside [a-z0-9]."""
    return [w for w in _ROUGE_SPLIT.split(str(text).lower()) if w]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure as rouge-score's RougeScorer(["rougeL"]) (no stemmer); 0 when either side is empty."""
    pred, ref = rouge_words(prediction), rouge_words(reference)
    if not pred or not ref:
        return 0.0
    return _f(_lcs(pred, ref), len(pred), len(ref))


def _value(m: re.Match) -> float | None:
    """The value of a number-like token, or None when it is not a number (12,5 or 3/4/2024)."""
    body, den = m["body"], m["den"]
    if not _PLAIN.fullmatch(body):
        return None
    exp = (m["exp"] or "").replace("\u2212", "-")
    try:
        value = float(body.replace(",", "") + exp)
    except ValueError:  # pragma: no cover - the grammar only lets floats through
        return None
    if den:
        parts = den.split("/")[1:]
        if len(parts) > 1 or not parts[0].isdigit() or int(parts[0]) == 0:
            return None
        value /= int(parts[0])
    if not math.isfinite(value):
        return None
    return -value if (m["sign"] or m["sign2"]) else value


def numbers(text: str) -> list[tuple[str, float | None]]:
    """Every number-like token of a text with its value (None where it is no valid number)."""
    return [(m.group(0), _value(m)) for m in _TOKEN.finditer(str(text))]


def extract_strict(text: str) -> float | None:
    """GSM8K strict-match: the number right after the first '####' that has one; None if none does."""
    text = str(text)
    for marker in _MARKER.finditer(text):
        m = _TOKEN.match(text, marker.end())
        if m:
            return _value(m)
    return None


def extract_flexible(text: str) -> float | None:
    """GSM8K flexible-extract: the last number in the text (None if it has none or the last is unreadable)."""
    found = list(_TOKEN.finditer(str(text)))
    return _value(found[-1]) if found else None


def extract_number(text: str) -> float | None:
    """The answer a text gives: strict when it writes '####' (GSM8K), else flexible."""
    return extract_strict(text) if "####" in str(text) else extract_flexible(text)


EXTRACTORS = {"number": extract_number, "strict": extract_strict, "flexible": extract_flexible}


def _number_scorer(extract):
    def scorer(prediction: str, reference: str) -> float:
        want, got = extract_number(reference), extract(prediction)
        return float(want is not None and got is not None and got == want)

    return scorer


number_match = _number_scorer(extract_number)
strict_match = _number_scorer(extract_strict)
flexible_match = _number_scorer(extract_flexible)

SCORERS = {
    "em": exact_match,
    "f1": token_f1,
    "rougeL": rouge_l,
    "number": number_match,
    "strict": strict_match,
    "flexible": flexible_match,
}


def score(prediction: str, references, metric: str) -> float:
    """One prediction against one reference or the best of several."""
    if metric not in SCORERS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    refs = references if isinstance(references, (list, tuple)) else [references]
    return max(SCORERS[metric](prediction, r) for r in refs)


class NumberGenResult(GenResult):
    """%eval gen with strict, flexible or number: both GSM8K readings per row and as two scores."""

    COLUMNS = [
        "id",
        "prompt",
        "output",
        "reference",
        "extracted",
        "score",
        "strict_answer",
        "strict",
        "flexible_answer",
        "flexible",
    ]

    @property
    def scores(self) -> dict:
        """The mean of each reading: {"strict": ..., "flexible": ...}."""
        return {m: sum(r[m] for r in self.rows) / len(self.rows) for m in ("strict", "flexible")}

    def _ci(self, metric: str) -> tuple[float, float]:
        from .common import mean_ci

        return mean_ci([r[metric] for r in self.rows])[1:]

    def summary(self) -> dict:
        out = super().summary()
        out.update({m: _r(v) for m, v in self.scores.items()})
        return out

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.COLUMNS)

    def leaderboard_rows(self) -> list[dict]:
        rows = super().leaderboard_rows()
        for m, v in self.scores.items():
            if m != self.metric:
                rows.append(_row(self.model, self.data, m, v, len(self.rows), *self._ci(m)))
        return rows


def _prompt_of(rec: dict, i: int) -> str:
    for key in ("prompt", "question", "instruction"):
        if isinstance(rec.get(key), str) and rec[key].strip():
            extra = rec.get("input") if key == "instruction" else None
            return rec[key] + (f"\n\n{extra}" if isinstance(extra, str) and extra.strip() else "")
    raise DataError(f"record {i} has no prompt/question/instruction text (keys: {', '.join(map(str, rec)) or 'none'})")


def _reference_of(rec: dict, i: int):
    for key in ("references", "reference", "answer", "output"):
        value = rec.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
    raise DataError(f"record {i} has no reference answer (answer/reference/references/output)")


NUMBER_HINT = (
    "Solve the problem step by step, then write the final answer on its own last line as "
    "'#### ' followed by the number.\n\n"
)


def evaluate(
    model=None,
    data="word-problems",
    *,
    metric: str = "em",
    max_new_tokens: int | None = None,
    template: str | None = None,
    limit: int | None = None,
    progress: bool = True,
    name: str | None = None,
    label: str | None = None,
):
    """Generate an answer per record and score it; records that carry a "prediction" are scored
    as they are (no model needed). Returns a GenResult; for strict, flexible and number a
    NumberGenResult, whose rows and .scores carry both GSM8K readings. template: default the
    model's own (an %%sft --format alpaca result is prompted through the Alpaca template)."""
    from tqdm.auto import tqdm

    from ..generation import generate
    from ..lm import resolve
    from ..provenance import attach, flags_of
    from .leaderboard import record

    flags = flags_of(locals())

    if metric not in SCORERS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    check_limit(limit)
    records = load_eval_records(data)
    if not records:
        raise DataError("the data is empty; give records with a question and a reference answer")
    records = records[:limit] if limit else records
    prompts = [_prompt_of(r, i) for i, r in enumerate(records, 1)]
    refs = [_reference_of(r, i) for i, r in enumerate(records, 1)]
    numeric = metric in NUMBER_METRICS
    given = all(isinstance(r.get("prediction"), str) for r in records)
    if not given or model is not None:
        handle = resolve(model)
        lm, tok, model_name, template = handle.model, handle.tokenizer, handle.name, template or handle.template
        tokens = max_new_tokens or (160 if numeric else 48)
        hint = NUMBER_HINT if numeric else ""
        outputs = [
            generate(lm, tok, hint + p, template=template, max_new_tokens=tokens)
            for p in tqdm(prompts, desc=f"gen {model_name}", disable=not progress, leave=False)
        ]
    else:
        outputs, model_name, handle = [r["prediction"] for r in records], "predictions", None
    rows = []
    for i, (rec, prompt, out, ref) in enumerate(zip(records, prompts, outputs, refs)):
        row = {
            "id": rec.get("id", i),
            "prompt": prompt,
            "output": out,
            "reference": ref if isinstance(ref, str) else " | ".join(ref),
            "extracted": EXTRACTORS[metric](out) if numeric else None,
            "score": score(out, ref, metric),
        }
        if numeric:
            row.update(
                {
                    "strict_answer": extract_strict(out),
                    "strict": score(out, ref, "strict"),
                    "flexible_answer": extract_flexible(out),
                    "flexible": score(out, ref, "flexible"),
                }
            )
        rows.append(row)
    kind = NumberGenResult if numeric else GenResult
    result = kind(name or model_name, label or (data if isinstance(data, str) else "data"), metric, rows)
    attach(result, model=handle, name=result.model, data=records, flags=flags)
    record(result)
    return result
