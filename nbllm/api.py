"""The script-level API: each function returns the result object its magic displays."""

from __future__ import annotations

from . import models
from .config import TokenizeConfig
from .display import TokenizeResult
from .errors import TemplateError
from .tokenization import encode, token_strings


def tokenize(
    example,
    model: str = "smollm2",
    template: str = "auto",
    max_length: int | None = None,
    train_on_prompt: bool = False,
    tokenizer=None,
) -> TokenizeResult:
    """Tokenize text or one example (alpaca/chat/text dict) as training would see it."""
    config = TokenizeConfig(model=model, template=template, max_length=max_length, train_on_prompt=train_on_prompt)
    tokenizer = tokenizer or models.load_tokenizer(config.model)
    try:
        enc = encode(tokenizer, example, config.template, config.max_length, config.train_on_prompt)
    except TemplateError as err:
        raise TemplateError(f"model '{config.model}': {err}") from None
    is_target = [False] + [label != -100 for label in enc.labels[:-1]]  # token 0 is never predicted
    return TokenizeResult(
        model=config.model,
        template=enc.template,
        tokens=token_strings(tokenizer, enc.input_ids),
        input_ids=enc.input_ids,
        labels=enc.labels,
        loss_mask=is_target,
        truncated=enc.truncated,
    )


def info():
    """Versions, device, dtype, cache folder and which default models are installed."""
    import platform
    from importlib import metadata

    from .display import InfoResult

    versions = {"python": platform.python_version()}
    for dist in (
        "nbllm",
        "torch",
        "transformers",
        "peft",
        "chromadb",
        "datasets",
        "sentence-transformers",
        "ipywidgets",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    device = models.pick_device()
    dtype = str(models.pick_dtype(device)).replace("torch.", "")
    cached = (models.cache_dir() / "models" / "smollm2" / "DONE").exists()
    return InfoResult(
        versions=versions,
        device=device,
        dtype=dtype,
        cache=str(models.cache_dir()),
        smollm2_cached=cached,
        models=models.status(),
    )


from .train.run import base_name, load, lora, lora_sweep, sft  # noqa: E402,F401 - training's API lives in train/run.py
