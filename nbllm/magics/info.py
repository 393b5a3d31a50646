"""%nbllm: versions, device, cache and which default models are installed."""

from IPython.core.magic_arguments import magic_arguments, parse_argstring

from ._common import usage_errors


@magic_arguments()
@usage_errors
def info_magic(self, line):
    """Show nbllm's environment: package versions, device and dtype, cache folder, models."""
    from ..api import info

    parse_argstring(info_magic, line)
    return info()
