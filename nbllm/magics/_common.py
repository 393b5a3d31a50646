"""What every magic shares: NbllmError -> one-line UsageError, and reading the cell."""

from __future__ import annotations

import functools
import json

from IPython.core.error import UsageError

from ..errors import DataError, NbllmError


def usage_errors(func):
    """Turn backend errors into one UsageError line; the kernel stays usable."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except NbllmError as err:
            raise UsageError(f"{type(err).__name__}: {err}") from None

    return wrapper


def user_value(shell, name: str | None):
    """The Python object a flag names (e.g. --model result), or None when it is not a variable."""
    if name and name.isidentifier() and shell is not None and name in shell.user_ns:
        value = shell.user_ns[name]
        return None if isinstance(value, str) else value
    return None


def model_value(shell, name: str | None):
    """What --model NAME|VAR means: a variable holding a model result (.model/.tokenizer), else the
    name itself (registered model, folder or hub id; None stays None)."""
    if name and name.isidentifier() and shell is not None and shell.user_ns.get(name, "") is None:
        raise UsageError(f"variable '{name}' is None, not a model; run the cell that makes it, or pass a model name")
    value = user_value(shell, name)
    if value is not None and not hasattr(value, "tokenizer"):
        raise UsageError(
            f"variable '{name}' holds a {type(value).__name__}, not a model result (no .model/"
            ".tokenizer); pass a model name or an %%sft result"
        )
    return value if value is not None else name


def parse_json_cell(cell: str, what: str):
    """One JSON value from a cell, or a DataError that points at the bad spot."""
    try:
        return json.loads(cell)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{what} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
            "fix the JSON, or use --template none to treat it as text"
        ) from None
