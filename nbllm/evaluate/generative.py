"""Generative scoring: the model writes an answer, a metric compares it with the reference.

    em       exact match after SQuAD normalisation (lowercase, no punctuation or articles)
    f1       token-overlap F1 after the same normalisation
    rougeL   ROUGE-L F-measure: longest common subsequence of tokens
    number   the final number of the output equals the reference's (GSM8K: after "####")
"""

from __future__ import annotations

import re
import string

from ..errors import ConfigError, DataError
from .common import check_limit, load_eval_records, resolve_model

METRICS = ("em", "f1", "rougeL", "number")
_PUNCT = set(string.punctuation)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and a/an/the, collapse spaces."""
    text = "".join(ch for ch in str(text).lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = 0
    counts: dict[str, int] = {}
    for tok in ref:
        counts[tok] = counts.get(tok, 0) + 1
    for tok in pred:
        if counts.get(tok, 0) > 0:
            common += 1
            counts[tok] -= 1
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lowercased word tokens (punctuation split off, as rouge-score tokenizes)."""
    pred = re.findall(r"[a-z0-9]+", str(prediction).lower())
    ref = re.findall(r"[a-z0-9]+", str(reference).lower())
    if not pred or not ref:
        return float(pred == ref)
    lcs = _lcs(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def extract_number(text: str) -> float | None:
    """The final number in a text: after the last '####' when there is one (GSM8K), else the last
    number written; commas in 1,500 are ignored. None when there is no number."""
    text = str(text)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", "").rstrip("."))
    except ValueError:
        return None


def number_match(prediction: str, reference: str) -> float:
    want, got = extract_number(reference), extract_number(prediction)
    return float(want is not None and got is not None and abs(want - got) < 1e-6)


SCORERS = {"em": exact_match, "f1": token_f1, "rougeL": rouge_l, "number": number_match}


def score(prediction: str, references, metric: str) -> float:
    """One prediction against one reference or the best of several."""
    if metric not in SCORERS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    refs = references if isinstance(references, (list, tuple)) else [references]
    return max(SCORERS[metric](prediction, r) for r in refs)


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


NUMBER_HINT = "Solve the problem step by step, then finish with 'The answer is' and the number.\n\n"


def evaluate(model=None, data="word-problems", *, metric: str = "em", max_new_tokens: int | None = None,
             template: str = "chat", limit: int | None = None, progress: bool = True, name: str | None = None,
             label: str | None = None):
    """Generate an answer per record and score it; records that carry a "prediction" are scored
    as they are (no model needed). Returns a GenResult."""
    from tqdm.auto import tqdm

    from ..generation import generate
    from .leaderboard import record
    from .results import GenResult

    if metric not in SCORERS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    check_limit(limit)
    records = load_eval_records(data)
    if not records:
        raise DataError("the data is empty; give records with a question and a reference answer")
    records = records[:limit] if limit else records
    prompts = [_prompt_of(r, i) for i, r in enumerate(records, 1)]
    refs = [_reference_of(r, i) for i, r in enumerate(records, 1)]
    given = all(isinstance(r.get("prediction"), str) for r in records)
    if not given or model is not None:
        lm, tok, model_name = resolve_model(model)
        tokens = max_new_tokens or (160 if metric == "number" else 48)
        hint = NUMBER_HINT if metric == "number" else ""
        outputs = [generate(lm, tok, hint + p, template=template, max_new_tokens=tokens)
                   for p in tqdm(prompts, desc=f"gen {model_name}", disable=not progress, leave=False)]
    else:
        outputs, model_name = [r["prediction"] for r in records], "predictions"
    rows = []
    for i, (rec, prompt, out, ref) in enumerate(zip(records, prompts, outputs, refs)):
        extracted = extract_number(out) if metric == "number" else None
        rows.append({"id": rec.get("id", i), "prompt": prompt, "output": out,
                     "reference": ref if isinstance(ref, str) else " | ".join(ref),
                     "extracted": extracted, "score": score(out, ref, metric)})
    result = GenResult(name or model_name, label or (data if isinstance(data, str) else "data"), metric, rows)
    record(result)
    return result
