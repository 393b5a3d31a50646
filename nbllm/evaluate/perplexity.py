"""Perplexity over long text with a sliding window.

A text longer than the model's context is read in windows of `window` tokens that start
`stride` tokens apart. Each window gives its tokens as much left context as fits, but only
the tokens not scored by an earlier window count, so every token after the first is scored
exactly once: ppl = exp(sum of token NLLs / number of scored tokens). A smaller stride means
more context per token (a lower, fairer perplexity) and more forward passes.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..lm import resolve
from ..paths import read_text
from .common import check_limit, load_eval_records

TEXT_KEYS = ("text", "content", "document", "output")


def texts_from(data) -> list[str]:
    """Texts from a string, a .txt file, a list of strings, or records with a text field."""
    if isinstance(data, str):
        path = Path(data).expanduser()
        try:
            named = "\n" not in data and path.exists()
        except OSError:  # a component longer than the file system takes: text
            named = False
        if not named and ("\n" in data or len(data) > 255 or " " in data.strip() or not data.strip()):
            return [data]  # text, not a path
        if path.is_dir():
            raise DataError(f"--data '{data}' is a folder; give a .txt/.md/.jsonl file in it, or a variable")
        if path.suffix.lower() in (".txt", ".md") and path.is_file():
            return [read_text(path, "text file")]
        if path.exists() or data.endswith((".json", ".jsonl", ".csv", ".parquet")):
            return texts_from(load_eval_records(data))
        if "/" in data or path.suffix:
            raise DataError(f"text file '{data}' not found; give an existing .txt/.jsonl path or a variable")
        from ..data import SHIPPED
        from .common import EVAL_SETS

        if data in SHIPPED or data in EVAL_SETS:
            return texts_from(load_eval_records(data))
        # one bare word: a mistyped variable or file name far more often than a text to score
        raise DataError(
            f"--data '{data}' is not a file, a variable or a shipped set; to score a text, put it in a "
            "variable (--data VAR) or a .txt file"
        )
    if isinstance(data, (list, tuple)) and all(isinstance(t, str) for t in data):
        return list(data)
    records = load_eval_records(data)
    out = []
    for i, rec in enumerate(records, 1):
        key = next((k for k in TEXT_KEYS if isinstance(rec.get(k), str)), None)
        if key is None:
            raise DataError(
                f"record {i} has no text field ({', '.join(TEXT_KEYS)}); give texts or records with 'text'"
            )
        out.append(rec[key])
    return out


from ..lm import rolling_nll as doc_nll  # noqa: E402,F401 - the kernel lives with the model handle


def evaluate(
    model=None,
    data=None,
    *,
    window: int | None = None,
    stride: int | None = None,
    limit: int | None = None,
    progress: bool = True,
    name: str | None = None,
    label: str | None = None,
):
    """Perplexity of `data` (text, .txt file, list of texts, or records with 'text'); a PerplexityResult."""
    from tqdm.auto import tqdm

    from ..provenance import attach, flags_of
    from .leaderboard import record
    from .results import PerplexityResult

    flags = flags_of(locals())

    check_limit(limit)
    if data is None:
        raise DataError("no text given; pass --data PATH|VAR (a .txt file, texts, or records with 'text')")
    texts = [t for t in texts_from(data) if t.strip()]
    if not texts:
        raise DataError("the text is empty; give some text to score")
    texts = texts[:limit] if limit else texts
    handle = resolve(model)
    window, stride = handle.windows(window, stride)
    docs = [
        {"doc": i, **handle.loglikelihood_rolling([text], window, stride)[0]}
        for i, text in enumerate(tqdm(texts, desc=f"ppl {handle.name}", disable=not progress, leave=False))
    ]
    if not sum(d["tokens_scored"] for d in docs):
        raise DataError("every text is a single token; perplexity needs at least two tokens")
    label = label or (data if isinstance(data, str) and len(data) < 60 and "\n" not in data else "text")
    result = PerplexityResult(name or handle.name, label, docs, window, stride)
    attach(result, model=handle, name=result.model, data=texts, flags=flags)
    record(result)
    return result
