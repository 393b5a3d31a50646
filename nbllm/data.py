"""Loading training records from files, Python objects, shipped sets or the hub, and splitting them.

Every loader returns a list of plain dicts; `to_examples` maps a format's records to what
`nbllm.tokenize.encode` takes (alpaca dicts, chat {"messages": [...]}, or text dicts).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from .errors import DataError
from .paths import GZIP_MAGIC, read_text

DATA_DIR = Path(__file__).parent / "data"
SHIPPED = {
    "instructions": DATA_DIR / "instructions.jsonl",  # 320 original alpaca-style records
    "lima": DATA_DIR / "lima.jsonl",  # 40 original LIMA-style conversations
    "sms": DATA_DIR / "sms.jsonl",  # 360 original spam/ham text messages (classify)
    "preferences": DATA_DIR / "preferences.jsonl",  # 120 original prompt/chosen/rejected (preference)
    "toxicity": DATA_DIR / "toxicity_train.jsonl",  # 209 original short lines, toxic | ok (classify)
}
SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")
FORMATS = ("alpaca", "chat", "lima", "text")
TEMPLATE_OF = {"alpaca": "alpaca", "chat": "chat", "lima": "chat", "text": "none", "preference": "chat"}


def parse_jsonl(text: str, where: str = "the cell") -> list[dict]:
    """Records from JSON Lines text (or one JSON array); errors name the bad line."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: invalid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
        except RecursionError:
            raise DataError(
                f"{where}: the JSON is nested too deeply to read; records are flat objects "
                "(one per line, or a list of them)"
            ) from None
        return _check_records(records, where)
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(
                f"{where}: line {lineno} is not valid JSON ({err.msg} at column {err.colno}); "
                "write one JSON object per line"
            ) from None
        except RecursionError:
            raise DataError(
                f"{where}: line {lineno} is JSON nested too deeply to read; records are flat objects"
            ) from None
    return _check_records(records, where)


def _check_records(records, where: str) -> list[dict]:
    if not isinstance(records, list):
        raise DataError(f"{where}: expected a list of records, got {type(records).__name__}")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError(f"{where}: record {i + 1} is a {type(rec).__name__}, not a JSON object")
    return records


def load_records(source, split: str = "train") -> list[dict]:
    """Records from a path, a shipped set name, a list of dicts, a DataFrame, a datasets.Dataset,
    or a hub dataset id (online only)."""
    if source is None:
        raise DataError("no data given; pass --data PATH|VAR|instructions|lima or write JSONL in the cell")
    if isinstance(source, (list, tuple)):
        return _check_records(list(source), "the data list")
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # pandas DataFrame
        return source.to_dict(orient="records")
    if hasattr(source, "column_names") and hasattr(source, "to_list"):  # datasets.Dataset
        return source.to_list()
    if not isinstance(source, (str, Path)):
        raise DataError(
            f"cannot load data from a {type(source).__name__}; use a path, a list of dicts, "
            "a DataFrame or a datasets.Dataset"
        )
    name = str(source)
    if name in SHIPPED:
        return parse_jsonl(SHIPPED[name].read_text(encoding="utf-8"), name)
    path = Path(name).expanduser()
    if path.exists():
        return _load_file(path)
    if _looks_like_hub_id(name):
        return _load_hub(name, split)
    raise DataError(
        f"data file '{name}' not found; give an existing .json/.jsonl/.csv/.parquet path, "
        f"a shipped set ({', '.join(SHIPPED)}) or a variable"
    )


def _load_file(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    if path.is_dir():
        raise DataError(f"'{path}' is a folder, not a data file; give one .json/.jsonl/.csv/.parquet file in it")
    if suffix not in SUFFIXES:
        raise DataError(f"'{path}' is not a data file; use one of {', '.join(SUFFIXES)}")
    try:
        if suffix in (".json", ".jsonl"):
            return parse_jsonl(read_text(path, "data file"), str(path))
        if suffix == ".csv" and _head(path) == GZIP_MAGIC:
            read_text(path, "data file")  # names the gzip data
        import pandas as pd

        frame = pd.read_csv(path, keep_default_na=False) if suffix == ".csv" else pd.read_parquet(path)
        return frame.to_dict(orient="records")
    except UnicodeDecodeError:
        raise DataError(f"'{path}' is not UTF-8 text; re-save it as UTF-8") from None
    except DataError:
        raise
    except Exception as err:  # pandas/pyarrow parse errors
        raise DataError(f"cannot read '{path}': {str(err).splitlines()[0][:160]}") from None


def _head(path: Path, n: int = 2) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and Path(name).suffix.lower() not in SUFFIXES


def _load_hub(name: str, split: str) -> list[dict]:
    from .models import hub_reachable

    if not hub_reachable():
        raise DataError(
            f"'{name}' looks like a hub dataset id and the Hugging Face hub cannot be reached; nbllm "
            "is offline by default: use a local file or a shipped set"
        )
    try:
        import datasets

        return datasets.load_dataset(name, split=split).to_list()
    except Exception as err:  # offline, unknown id, no such split
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise DataError(
            f"could not load hub dataset '{name}' ({reason}); nbllm is offline by default: "
            "use a local file or a shipped set"
        ) from None


def to_examples(records: list[dict], fmt: str) -> list:
    """Map records of a format to examples for `encode` (alpaca dicts, {"messages"}, {"text"})."""
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not records:
        raise DataError("the data is empty; give at least one record")
    return [_example(rec, fmt, i) for i, rec in enumerate(records, 1)]


def _example(rec: dict, fmt: str, i: int):
    def need(*keys):
        missing = [k for k in keys if not isinstance(rec.get(k), str) or not rec.get(k).strip()]
        if missing:
            raise DataError(
                f"record {i} has no {' / '.join(missing)} (keys: {', '.join(map(str, rec)) or 'none'}); "
                f"--format {fmt} needs {', '.join(keys)}"
            )

    if fmt == "alpaca":
        if "prompt" in rec and "instruction" not in rec:
            rec = {"instruction": rec.get("prompt"), "output": rec.get("response", rec.get("completion"))}
        need("instruction", "output")
        inp = rec.get("input")
        return {
            "instruction": rec["instruction"],
            "input": inp if isinstance(inp, str) else "",
            "output": rec["output"],
        }
    if fmt == "text":
        need("text")
        return {"text": rec["text"]}
    messages = rec.get("messages", rec.get("conversation", rec.get("conversations")))
    if not isinstance(messages, list) or not messages:
        raise DataError(
            f"record {i} has no messages list; --format {fmt} needs 'messages' "
            "(chat: [{role, content}], lima: alternating user/assistant turns)"
        )
    if all(isinstance(m, str) for m in messages):  # LIMA: plain alternating turns
        messages = [{"role": "user" if j % 2 == 0 else "assistant", "content": m} for j, m in enumerate(messages)]
    for m in messages:
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("content"), str)
            or m.get("role") not in ("system", "user", "assistant")
        ):
            raise DataError(f"record {i}: each message needs role system/user/assistant and string content")
    if fmt == "lima":
        turns = [m["role"] for m in messages if m["role"] != "system"]
        if turns[:1] != ["user"] or any(a == b for a, b in zip(turns, turns[1:])):
            raise DataError(f"record {i}: LIMA conversations alternate user and assistant, starting with user")
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"record {i} has no assistant turn to learn from")
    return {"messages": messages}


def split(items: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """Seeded train/validation split; at least one validation item when val_fraction > 0."""
    if val_fraction <= 0 or len(items) < 2:
        return list(items), []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_val = min(len(items) - 1, max(1, round(len(items) * val_fraction)))
    val_idx = set(order[:n_val])
    return [x for i, x in enumerate(items) if i not in val_idx], [x for i, x in enumerate(items) if i in val_idx]
