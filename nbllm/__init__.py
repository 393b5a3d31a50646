"""nbllm: Jupyter magics and widgets for training, tuning and evaluating language models.

    %load_ext nbllm        registers the magics (fast: torch loads on first use)

The same backend works from a plain script: `nbllm.tokenize(...)`, `nbllm.load_model(...)`.
"""

from .errors import ConfigError, DataError, ModelError, NbllmError, OfflineError, TemplateError
from .models import load_model, load_tokenizer, register, registered
from . import rag  # nbllm.rag.index / query / collections (light: heavy imports happen inside)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "ModelError",
    "NbllmError",
    "OfflineError",
    "TemplateError",
    "info",
    "load_model",
    "load_tokenizer",
    "rag",
    "register",
    "registered",
    "sft",
    "tokenize",
]


def tokenize(example, **kwargs):
    """Tokenize text or one example as training sees it; see nbllm.api.tokenize."""
    from .api import tokenize as _tokenize

    return _tokenize(example, **kwargs)


def sft(data=None, **kwargs):
    from .train.run import sft as _sft
    from .widgets.training import progress_for

    return _sft(data, **{**kwargs, "progress": progress_for(kwargs.get("progress", "auto"))})


def _sft_signature_and_doc():
    """nbllm.sft's real signature and help, from RunOptions' and SFTConfig's fields (light: no torch)."""
    import dataclasses
    import inspect
    import textwrap
    import typing

    from .config import RunOptions, SFTConfig

    P = inspect.Parameter
    params = [
        P("data", P.POSITIONAL_OR_KEYWORD, default=None),
        P("model", P.KEYWORD_ONLY, default=None),
        P("tokenizer", P.KEYWORD_ONLY, default=None),
        P("stop_when", P.KEYWORD_ONLY, default=None),
        P("callbacks", P.KEYWORD_ONLY, default=()),
    ]
    doc = [
        "Fine-tune a causal LM; returns an SFTResult (.model, .tokenizer, .history, .samples, .generate()).",
        "",
        "    data        a path, a shipped set (instructions, lima, sms, preferences), a hub dataset id, a",
        "                list of dicts, a DataFrame or a datasets.Dataset (with resume: the checkpoint's)",
        "    model       a registry name, folder or hub id (default smollm2; with resume: the checkpoint's),",
        "                or a model object (then pass tokenizer=...) or an SFTResult",
        "    tokenizer   the tokenizer of a model object",
        "    stop_when   stop_when(row) -> True ends the run after that step, like the Stop button",
        "    callbacks   more nbllm.train.trainer.Callback objects (hooks around every step)",
    ]
    for cls, title in (
        (RunOptions, "Run options (RunOptions)"),
        (SFTConfig, "Training options (SFTConfig fields, saved as config.json with checkpoints)"),
    ):
        hints = typing.get_type_hints(cls)
        doc += ["", title + ":"]
        for f in dataclasses.fields(cls):
            if f.name in ("model", "data"):
                continue
            params.append(P(f.name, P.KEYWORD_ONLY, default=f.default, annotation=hints[f.name]))
            doc.append(
                textwrap.fill(
                    f"{f.name}={f.default!r}: {f.metadata.get('help', '')}",
                    100,
                    initial_indent="    ",
                    subsequent_indent="        ",
                )
            )
    return inspect.Signature(params), "\n".join(doc)


sft.__signature__, sft.__doc__ = _sft_signature_and_doc()


def info():
    """Versions, device, cache folder and installed default models."""
    from .api import info as _info

    return _info()


def load_ipython_extension(shell) -> None:
    from .magics import register as register_magics

    register_magics(shell)
