"""Helpers for driving nbllm's magics in pytest through a real IPython shell."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell

from . import models


class TestingShell(InteractiveShell):
    """An InteractiveShell whose run_cell re-raises what the cell raised (UsageError included)."""

    def run_cell(self, *args, **kwargs):
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result

    @classmethod
    def with_nbllm(cls) -> "TestingShell":
        shell = cls.instance()
        shell.extension_manager.load_extension("nbllm")
        return shell


def register_tiny_model(name: str = "tiny-test", seed: int = 0, layers: int = 2, hidden: int = 64, **extra):
    """Register a tiny deterministic Llama under `name` through the same registry users see."""
    return models.register(
        name,
        load=lambda: models.tiny_llama(seed=seed, layers=layers, hidden=hidden),
        load_tokenizer=models.byte_tokenizer,
        description=f"tiny test model (seed {seed})",
        **extra,
    )
