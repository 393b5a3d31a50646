"""Contamination: eval items that share a word n-gram with the training data.

Text is lowercased, punctuation is stripped and words are split on whitespace (the GPT-3
paper's recipe, 13-grams by default). An eval item is contaminated when any of its n-grams
occurs in the training data; the overlapping words are merged into spans so you can see
what leaked. `.clean` keeps the items with no overlap, for a clean re-evaluation. Items
shorter than n words cannot be checked and count as clean (reported as too_short).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConfigError, DataError

TEXT_KEYS = (
    "text",
    "question",
    "prompt",
    "instruction",
    "input",
    "output",
    "answer",
    "response",
    "choices",
    "messages",
    "sentence",
    "content",
)
_PUNCT = re.compile(r"[^\w\s]")


def words(text: str) -> list[str]:
    """Lowercased words with punctuation removed."""
    return _PUNCT.sub(" ", str(text).lower()).split()


def record_text(rec, field: str | None = None) -> str:
    """The text of a record: one field, or every text-like field joined (lists flattened)."""
    if isinstance(rec, str):
        return rec
    if not isinstance(rec, dict):
        raise DataError(f"cannot read text from a {type(rec).__name__}; give strings or records")
    if field:
        if field not in rec:
            raise DataError(f"a record has no field {field!r} (keys: {', '.join(map(str, rec))})")
        return _flatten(rec[field])
    return " ".join(_flatten(rec[k]) for k in TEXT_KEYS if k in rec)


def _flatten(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_flatten(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return " ".join(_flatten(v) for v in value)
    return str(value)


def _as_records(data, what: str) -> list:
    from .common import load_eval_records

    if isinstance(data, str) and (
        "\n" in data or len(data) > 255 or (" " in data and not Path(data).expanduser().exists())
    ):
        return [data]  # raw text, not a path
    if isinstance(data, (list, tuple)):
        return list(data)
    return load_eval_records(data, what)


def ngrams(ws: list[str], n: int):
    return (tuple(ws[i : i + n]) for i in range(len(ws) - n + 1))


def check(train, test, *, n: int = 13, field: str | None = None, train_field: str | None = None):
    """Per-item n-gram overlap of `test` with `train`; a ContaminationResult with .rate and .clean."""
    from ..provenance import attach, flags_of
    from .leaderboard import record

    flags = flags_of(locals())
    from .results import ContaminationResult

    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ConfigError(f"the n-gram size must be a positive integer (got {n!r}); 13 is the usual choice")
    train_recs, test_recs = _as_records(train, "training data"), _as_records(test, "eval set")
    if not train_recs:
        raise DataError("the training data is empty")
    if not test_recs:
        raise DataError("the eval set is empty")
    seen = set()
    for rec in train_recs:
        seen.update(ngrams(words(record_text(rec, train_field)), n))
    rows, short = [], 0
    for i, rec in enumerate(test_recs):
        ws = words(record_text(rec, field))
        if len(ws) < n:
            short += 1
        hit = [j for j, gram in enumerate(ngrams(ws, n)) if gram in seen]
        covered = sorted({j + k for j in hit for k in range(n)})
        spans, start = [], None
        for pos, w in enumerate(covered):
            if start is None:
                start = w
            if pos + 1 == len(covered) or covered[pos + 1] != w + 1:
                spans.append(" ".join(ws[start : w + 1]))
                start = None
        rows.append(
            {
                "item": i,
                "text": " ".join(ws)[:200],
                "words": len(ws),
                "overlap_ngrams": len(hit),
                "overlap": len(covered) / len(ws) if ws else 0.0,
                "contaminated": bool(hit),
                "spans": spans,
            }
        )
    result = ContaminationResult(n, rows, test_recs, field or "auto", short)
    attach(result, data={"train": train_recs, "test": test_recs}, flags=flags)
    record(result)
    return result
