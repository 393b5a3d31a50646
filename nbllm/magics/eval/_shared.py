"""Flags every %eval subcommand reads the same way."""


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
