"""Flags every %eval subcommand reads the same way."""

from IPython.core.error import UsageError

from .._common import user_value


def model_arg(shell, name):
    """A variable holding a model result, else the name (registered model, folder or hub id)."""
    value = user_value(shell, name)
    if value is not None and not hasattr(value, "tokenizer"):
        raise UsageError(f"variable '{name}' is not a model result (no .model/.tokenizer); pass a model name")
    return value if value is not None else name


def data_arg(shell, name):
    """A variable's value (strings too: raw text), else the path or shipped-set name."""
    if name and name.isidentifier() and shell is not None and name in shell.user_ns:
        return shell.user_ns[name]
    return name


def bind(shell, out, result):
    if out:
        shell.user_ns[out] = result
    return result


def key_env(value):
    """--api-key-env none (or empty): an endpoint without a key."""
    return None if value is None or value.strip("'\"").lower() in ("", "none") else value
