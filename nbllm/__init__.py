"""nbllm: Jupyter magics and widgets for training, tuning and evaluating language models.

    %load_ext nbllm        registers the magics (fast: torch loads on first use)

The same backend works from a plain script: `nbllm.tokenize(...)`, `nbllm.load_model(...)`.
"""

from .errors import ConfigError, DataError, ModelError, NbllmError, OfflineError, TemplateError
from .models import load_model, load_tokenizer, register, registered
from . import rag  # nbllm.rag.index / query / collections (light: heavy imports happen inside)

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "DataError", "ModelError", "NbllmError", "OfflineError", "TemplateError",
    "info", "load_model", "load_tokenizer", "rag", "register", "registered", "sft", "tokenize",
]


def tokenize(example, **kwargs):
    """Tokenize text or one example as training sees it; see nbllm.api.tokenize."""
    from .api import tokenize as _tokenize

    return _tokenize(example, **kwargs)


def sft(data=None, **kwargs):
    """Fine-tune a causal LM; see nbllm.api.sft."""
    from .api import sft as _sft

    return _sft(data, **kwargs)


def info():
    """Versions, device, cache folder and installed default models."""
    from .api import info as _info

    return _info()


def load_ipython_extension(shell) -> None:
    from .magics import register as register_magics

    register_magics(shell)
