"""The script-level API: each function returns the result object its magic displays."""

from __future__ import annotations

import os

from . import models
from .config import TokenizeConfig
from .display import TokenizeResult
from .errors import TemplateError
from .tokenization import encode, token_strings


def tokenize(example, model: str = "smollm2", template: str = "auto", max_length: int | None = None,
             train_on_prompt: bool = False, tokenizer=None) -> TokenizeResult:
    """Tokenize text or one example (alpaca/chat/text dict) as training would see it."""
    config = TokenizeConfig(model=model, template=template, max_length=max_length, train_on_prompt=train_on_prompt)
    tokenizer = tokenizer or models.load_tokenizer(config.model)
    try:
        enc = encode(tokenizer, example, config.template, config.max_length, config.train_on_prompt)
    except TemplateError as err:
        raise TemplateError(f"model '{config.model}': {err}") from None
    is_target = [False] + [label != -100 for label in enc.labels[:-1]]  # token 0 is never predicted
    return TokenizeResult(model=config.model, template=enc.template, tokens=token_strings(tokenizer, enc.input_ids),
                          input_ids=enc.input_ids, labels=enc.labels, loss_mask=is_target,
                          truncated=enc.truncated)


def info():
    """Versions, device, dtype, cache folder and which default models are installed."""
    import platform
    from importlib import metadata

    from .display import InfoResult

    versions = {"python": platform.python_version()}
    for dist in ("nbllm", "torch", "transformers", "peft", "chromadb", "datasets", "sentence-transformers",
                 "ipywidgets"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    device = models.pick_device()
    dtype = str(models.pick_dtype(device)).replace("torch.", "")
    cached = (models.cache_dir() / "models" / "smollm2" / "DONE").exists()
    return InfoResult(versions=versions, device=device, dtype=dtype, cache=str(models.cache_dir()),
                      smollm2_cached=cached, models=models.status())


def sft(data=None, *, model=None, tokenizer=None, save: str | None = None, resume: str | None = None,
        save_every: int | None = None, samples: int = 2, progress: str | None = "auto", stop_when=None,
        **options):
    """Fine-tune a causal LM; returns an SFTResult (model, tokenizer, history, generate()).

    data: a path, a shipped set name ("instructions", "lima"), a hub dataset id, a list of
    dicts, a DataFrame or a datasets.Dataset. model: a registry name or path, or a model
    object (then pass its tokenizer, or an SFTResult). stop_when(row) -> True ends the run
    after that step, like the Stop button. options: SFTConfig fields."""
    import torch

    from .config import SFTConfig
    from .data import TEMPLATE_OF, load_records
    from .display import SFTResult
    from .errors import ConfigError
    from .generation import generate
    from .train.checkpoint import load_checkpoint, read_config, save_checkpoint
    from .train.dpo import DPOTrainer, prepare_preferences
    from .train.sft import Trainer, prepare_data
    from .widgets.training import make_monitor

    model_obj = None
    if model is None:
        model = None if resume else "smollm2"  # resuming: the checkpoint's model
    if model is not None and not isinstance(model, str):
        model_obj, tokenizer = getattr(model, "model", model), getattr(model, "tokenizer", tokenizer)
        if tokenizer is None:
            raise ConfigError("a model object needs its tokenizer: pass tokenizer=... or an SFTResult")
        known = base_name(model)  # an SFTResult's or ModelResult's registry name, not a cache path
        options.setdefault("model", known if known != "custom" else
                           (getattr(model_obj.config, "name_or_path", "custom") or "custom"))
    elif model is not None:
        options["model"] = model
    if isinstance(data, str) and "data" not in options:
        options["data"] = data
    if resume:
        saved = read_config(resume)
        for key in ("model", "method", "format"):
            if key in options and options[key] != getattr(saved, key) and model_obj is None:
                raise ConfigError(f"checkpoint '{resume}' was trained with --{key} {getattr(saved, key)}, "
                                  f"not {options[key]}; resume with the same --{key}")
        config = SFTConfig.from_dict({**saved.to_dict(), **{k: v for k, v in options.items()
                                                            if k not in ("model", "method", "format")}})
        data = data if data is not None else config.data
    else:
        config = SFTConfig(**options)
    records = load_records(data)
    if config.format == "classify":
        return _classify(config, records, model_obj, progress)
    device = config.device or models.pick_device()
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # one GPU per process under torchrun/accelerate
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    if model_obj is None:
        frozen_bf16 = config.method in ("lora", "dpo") and device.startswith("cuda") and models.pick_dtype(device) == torch.bfloat16
        model_obj, tokenizer = models.load_model(config.model, device=device,
                                                 dtype=torch.bfloat16 if frozen_bf16 else torch.float32)
    template = TEMPLATE_OF[config.format]
    preference = config.format == "preference"
    prepared = (prepare_preferences if preference else prepare_data)(records, tokenizer, config)
    prompts = [_sample_prompt(ex) for ex in prepared.val_examples[:samples]] if template != "none" else []
    before = [generate(model_obj, tokenizer, p, template, max_new_tokens=48) for p in prompts]
    trainer = (DPOTrainer if preference else Trainer)(config, prepared, model_obj, tokenizer, device)
    if resume:
        load_checkpoint(trainer, resume)
    mode = os.environ.get("NBLLM_PROGRESS", "auto") if progress == "auto" else (progress or "none")
    if prepared.n_truncated and mode != "none":
        print(f"notice: {prepared.n_truncated} example(s) longer than --max-length {config.max_length} were "
              f"truncated; {prepared.n_dropped} lost every response token and were left out")
    monitor = make_monitor(trainer.total_steps, _title(config, trainer), mode)

    def every(tr):
        if save and save_every and tr.state.step % save_every == 0 and tr.rank == 0:
            save_checkpoint(tr, save)

    def on_step(row, tr):
        if monitor:
            monitor.update(row, tr)
        if stop_when and stop_when(row):
            tr.state.stopped = "stop_when"

    try:
        state = trainer.run(on_step=on_step, should_stop=monitor.should_stop if monitor else None,
                            on_checkpoint=every)
    finally:
        if monitor:
            monitor.close(trainer.state)
    if save and trainer.rank == 0:
        save_checkpoint(trainer, save)
    after = [generate(trainer.model, tokenizer, p, template, max_new_tokens=48) for p in prompts]
    stats = _stats(trainer, state, prepared, device)
    return SFTResult(trainer.model, tokenizer, config, state.history, stats,
                     [{"prompt": _prompt_text(p), "before": b, "after": a} for p, b, a in zip(prompts, before, after)],
                     template)


def _classify(config, records, model_obj, progress):
    from .display import ClassifyResult
    from .errors import ConfigError
    from .train.classify import ClassifierTrainer
    from .widgets.training import make_monitor

    if model_obj is not None:
        raise ConfigError("--format classify starts from a model name (e.g. minilm or smollm2), not a variable")
    trainer = ClassifierTrainer(config, records)
    mode = os.environ.get("NBLLM_PROGRESS", "auto") if progress == "auto" else (progress or "none")
    pct = 100 * trainer.trainable / trainer.total_params
    monitor = make_monitor(trainer.total_steps, f"%%sft --format classify {config.model} ({config.method}, "
                           f"{trainer.trainable:,} trainable = {pct:.2f}%) on {len(trainer.train)} examples, "
                           f"classes {', '.join(trainer.classes)}", mode, unit="examples")
    try:
        trainer.run(on_step=monitor.update if monitor else None, should_stop=monitor.should_stop if monitor else None)
    finally:
        if monitor:
            monitor.close(trainer.state)
    return ClassifyResult(trainer, config)


def _sample_prompt(example):
    if "messages" in example:
        msgs = example["messages"]
        last_assistant = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        return msgs[:last_assistant]
    return {"instruction": example["instruction"], "input": example.get("input", "")}


def _prompt_text(prompt) -> str:
    if isinstance(prompt, list):
        return prompt[-1]["content"]
    return prompt["instruction"] + (f"\n{prompt['input']}" if prompt.get("input") else "")


def _title(config, trainer) -> str:
    pct = 100 * trainer.trainable / trainer.total_params
    return (f"%%sft {config.model} ({config.method}, {trainer.trainable:,} trainable = {pct:.2f}%) on "
            f"{len(trainer.data.train)} examples: {trainer.total_steps} steps on {trainer.device}")


def _stats(trainer, state, prepared, device) -> dict:
    hist = state.history
    finite_val = [r["val_loss"] for r in hist if r["val_loss"] == r["val_loss"]]
    return {"steps": state.step, "epochs": state.step / trainer.steps_per_epoch, "trainable": trainer.trainable,
            "total_params": trainer.total_params, "first_loss": hist[0]["loss"] if hist else float("nan"),
            "final_loss": hist[-1]["loss"] if hist else float("nan"),
            "val_loss": finite_val[-1] if finite_val else float("nan"), "stopped": state.stopped,
            "tokens": state.tokens, "seconds": state.train_seconds,
            "tokens_per_s": state.tokens / state.train_seconds if state.train_seconds else 0.0,
            "n_train": len(prepared.train), "n_val": len(prepared.val), "truncated": prepared.n_truncated,
            "dropped": prepared.n_dropped, "device": device}


def load(model: str = "smollm2", template: str = "chat"):
    """A model and tokenizer in a ModelResult (what %lora VAR --base MODEL binds)."""
    from .display import ModelResult

    m, tok = models.load_model(model)
    return ModelResult(m, tok, model, template)


def base_name(holder) -> str:
    """The registry name of the base model a result was built on."""
    config = getattr(holder, "config", None)
    return getattr(config, "model", None) or getattr(holder, "name", None) or "custom"


def lora(holder, action: str = "attach", *, r: int = 8, alpha: float = 16.0, dropout: float = 0.05,
         targets: str = "q_proj,v_proj", name: str | None = None, path: str | None = None):
    """Manage the LoRA adapters of a result's model in place; returns a LoraReport.

    action: attach | inspect | merge | unmerge | save | load | use."""
    from . import lora as L
    from .display import LoraReport

    model, base = holder.model, base_name(holder)
    if action == "attach":
        holder.model = L.attach(model, r=r, alpha=alpha, dropout=dropout, targets=targets, name=name or "default")
    elif action == "merge":
        L.merge(model)
    elif action == "unmerge":
        L.unmerge(model)
    elif action == "save":
        L.save(model, path, base)
    elif action == "load":
        holder.model = L.load(model, path, name or "default", base)
    elif action == "use":
        L.use(model, name)
    elif action != "inspect":
        raise ValueError(f"unknown action {action!r}")
    model = holder.model.eval()  # dropout off: a report, a merge or a switch changes no outputs
    L._require_adapters(model, "report on adapters")
    merged = any(layer.merged for _, layer in L.lora_layers(model))
    _, base_params = L.counts(model)
    return LoraReport(base, action, L.inspect(model), L.adapter_names(model), model.active_adapter, base_params,
                      merged)


def lora_sweep(model: str, data, ranks, *, targets: str = "q_proj,v_proj", progress: str = "text", **options):
    """The same short LoRA run per rank (alpha = 2r, as a fixed scale): trainable parameters
    against validation loss, the LoRA paper's rank table on your data."""
    from .display import SweepResult
    from .errors import ConfigError

    ranks = [int(r) for r in ranks]
    if not ranks or any(r <= 0 for r in ranks):
        raise ConfigError(f"--sweep needs positive ranks like 1,2,4,8 (got {ranks})")
    rows = []
    for r in ranks:
        result = sft(data, model=model, method="lora", lora_r=r, lora_alpha=2 * r, lora_targets=targets,
                     samples=0, progress=progress, **options)
        s = result.stats
        rows.append({"r": r, "trainable": s["trainable"], "pct_of_model": 100 * s["trainable"] / s["total_params"],
                     "final_loss": s["final_loss"], "val_loss": s["val_loss"]})
    return SweepResult(model, rows)
