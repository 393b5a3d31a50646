"""torch.compile for training, one transformer block at a time (regional compilation).

Every block of a model runs the same code, so one compiled graph serves all of them and
compile time is that of one block, not of the whole model. Shapes are dynamic from the
start because packed rows change length every step. Compiled blocks are put back to plain
modules after the run: generation (other shapes, a KV cache) would otherwise recompile.
"""

from __future__ import annotations

from ..errors import ConfigError
from .adapters import unwrap


def blocks(model) -> list:
    """The model's transformer blocks (the classes transformers keeps whole when sharding)."""
    base = unwrap(model)
    names = set(getattr(base, "_no_split_modules", None) or ())
    return [m for m in base.modules() if type(m).__name__ in names]


def compile_blocks(model) -> int:
    found = blocks(model)
    if not found:
        raise ConfigError(f"--compile found no transformer blocks in {type(unwrap(model)).__name__}; drop --compile")
    for block in found:
        block.compile(dynamic=True)
    return len(found)


def uncompile_blocks(model) -> None:
    for block in blocks(model):
        block._compiled_call_impl = None  # what nn.Module.compile() set; None = plain forward again
