"""Flags every %eval subcommand reads the same way."""

from IPython.core.magic_arguments import argument

from .._common import model_value


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


def model_flag(default="smollm2", help="registered model, folder, hub id or a model result variable"):
    return argument(
        "--model", "-m", default=None, help=f"{help} (default: %%config NbllmMagics.default_model, else {default})"
    )


def model_of(magics, name, default="smollm2"):
    """--model NAME|VAR, else the session's default model, else `default`."""
    return model_value(magics.shell, name or getattr(magics, "default_model", None) or default)


def progress(magics) -> bool:
    """Progress bars, unless %config NbllmMagics.progress = "none"."""
    return getattr(magics, "progress", "auto") != "none"
