"""The script-level training API: sft() for every objective, the %lora actions, rank sweeps.

    sft(data, model=..., **SFTConfig fields) -> SFTResult | ClassifyResult

What the magics call; everything they do a script can do.
"""

from __future__ import annotations

import os

from .. import models
from ..errors import ConfigError


def sft(
    data=None,
    *,
    model=None,
    tokenizer=None,
    save: str | None = None,
    resume: str | None = None,
    save_every: int | None = None,
    samples: int = 2,
    progress="auto",
    stop_when=None,
    callbacks=(),
    **options,
):
    """Fine-tune a model; returns an SFTResult (model, tokenizer, history, generate()), or a
    ClassifyResult for --format classify.

    data: a path, a shipped set name ("instructions", "lima", "sms", "preferences"), a hub
    dataset id, a list of dicts, a DataFrame or a datasets.Dataset. model: a registry name or
    path, or a model object (then pass its tokenizer, or an SFTResult). progress: "auto" |
    "text" | "none", or a callable title -> Callback (the notebook widget). stop_when(row) ->
    True ends the run after that step, like the Stop button. callbacks: more Callbacks.
    options: SFTConfig fields; an option this run cannot honour is refused."""
    from ..data import TEMPLATE_OF, load_records
    from ..generation import generate
    from .callbacks import SaveEvery, StopWhen, TextProgress, title
    from .checkpoint import check_destination, load_checkpoint, save_checkpoint
    from .objectives import refuse_unusable
    from .results import ClassifyResult, SFTResult
    from .trainer import Trainer, objective_for

    given = set(options)
    if save:
        check_destination(save)  # before any training: a run is never lost to a bad destination
    elif save_every:
        raise ConfigError(f"--save-every {save_every} writes checkpoints into the --save folder; give --save DIR too")
    config, data, model_obj, tokenizer = _config(data, model, tokenizer, resume, options)
    objective = objective_for(config)
    refuse_unusable(config, given, objective.name)
    if not resume:  # a resumed run keeps the config it was saved with
        config = objective.configured(config, given)
    records = load_records(data)
    device = models.check_device(config.device)
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # one GPU per process under torchrun/accelerate
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    if model_obj is None:
        model_obj, tokenizer = objective.load_model(config, device, records)
    elif config.format == "classify":
        raise ConfigError("--format classify starts from a model name (e.g. minilm or smollm2), not a variable")
    prepared = objective.prepare(records, tokenizer, config)
    template = TEMPLATE_OF.get(config.format, "none")
    prompts = [_sample_prompt(ex) for ex in prepared.val_examples[:samples]] if template != "none" else []
    before = [generate(model_obj, tokenizer, p, template, max_new_tokens=48) for p in prompts]
    trainer = Trainer(config, prepared, model_obj, tokenizer, device, objective)
    if resume:
        load_checkpoint(trainer, resume)
    mode = os.environ.get("NBLLM_PROGRESS", "text") if progress == "auto" else (progress or "none")
    if prepared.n_truncated and mode != "none":
        print(
            f"notice: {prepared.n_truncated} example(s) longer than --max-length {config.max_length} were "
            f"truncated; {prepared.n_dropped} lost every response token and were left out"
        )
    if callable(mode):  # the notebook widget (widgets/training.progress_for)
        monitor = mode(title(config, trainer))
    else:
        monitor = None if mode == "none" else TextProgress(title(config, trainer))
    around = [
        cb
        for cb in (
            monitor,
            StopWhen(stop_when) if stop_when else None,
            SaveEvery(save, save_every) if save and save_every else None,
        )
        if cb
    ]
    state = trainer.run(around + list(callbacks))
    save_error = None
    if save:
        try:
            save_checkpoint(trainer, save)
        except OSError as err:  # the trained model is still returned (and bound by the magic)
            save_error = (
                f"the run finished but --save '{save}' failed ({err.strerror or err}); the result keeps "
                "the trained model: save it again with a writable --save"
            )
            print(f"warning: {save_error}")
    if config.format == "classify":
        result = ClassifyResult(trainer, config)
    else:
        result = SFTResult(
            trainer.model, tokenizer, config, state.history, _stats(trainer, state, prepared, device), [], template
        )
        try:  # after the model is in the result: a Ctrl-C here costs the samples, not the run
            after = [generate(trainer.model, tokenizer, p, template, max_new_tokens=48) for p in prompts]
        except KeyboardInterrupt:
            after = ["(interrupted)"] * len(prompts)
            print("samples interrupted; the trained model is kept")
        result._samples = [
            {"prompt": _prompt_text(p), "before": b, "after": a} for p, b, a in zip(prompts, before, after)
        ]
    result.save_error = save_error
    from ..provenance import attach

    attach(
        result,
        model=trainer.model,
        name=config.model,
        data=records,
        seed=getattr(config, "seed", None),
        flags=config.to_dict(),
    )
    return result


def _config(data, model, tokenizer, resume, options):
    """(SFTConfig, data, model object or None, tokenizer): the given options, a model
    object's name, and with --resume the checkpoint's config under the given options."""
    from ..config import SFTConfig
    from .checkpoint import read_config

    model_obj = None
    if model is None:
        model = None if resume else "smollm2"  # resuming: the checkpoint's model
    if model is not None and not isinstance(model, str):
        if hasattr(model, "classes") and hasattr(model, "predict"):
            raise ConfigError(
                f"a {type(model).__name__} is a trained classifier; %%sft starts from a model name "
                "(--model smollm2) or a generator's result, not a classifier"
            )
        model_obj, tokenizer = getattr(model, "model", model), getattr(model, "tokenizer", tokenizer)
        if tokenizer is None:
            raise ConfigError("a model object needs its tokenizer: pass tokenizer=... or an SFTResult")
        known = base_name(model)  # an SFTResult's or ModelResult's registry name, not a cache path
        options.setdefault(
            "model", known if known != "custom" else (getattr(model_obj.config, "name_or_path", "custom") or "custom")
        )
    elif model is not None:
        options["model"] = model
    if isinstance(data, str) and "data" not in options:
        options["data"] = data
    if not resume:
        return SFTConfig.from_dict(options), data, model_obj, tokenizer  # an unknown option: one ConfigError
    saved = read_config(resume)
    for key in ("model", "method", "format"):
        if key in options and options[key] != getattr(saved, key) and model_obj is None:
            raise ConfigError(
                f"checkpoint '{resume}' was trained with --{key} {getattr(saved, key)}, "
                f"not {options[key]}; resume with the same --{key}"
            )
    config = SFTConfig.from_dict(
        {**saved.to_dict(), **{k: v for k, v in options.items() if k not in ("model", "method", "format")}}
    )
    return config, data if data is not None else config.data, model_obj, tokenizer


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


def _stats(trainer, state, prepared, device) -> dict:
    hist = state.history
    finite_val = [r["val_loss"] for r in hist if r["val_loss"] == r["val_loss"]]
    return {
        "steps": state.step,
        "epochs": state.step / trainer.steps_per_epoch,
        "trainable": trainer.trainable,
        "total_params": trainer.total_params,
        "first_loss": hist[0]["loss"] if hist else float("nan"),
        "final_loss": hist[-1]["loss"] if hist else float("nan"),
        "val_loss": finite_val[-1] if finite_val else float("nan"),
        "stopped": state.stopped,
        "tokens": state.tokens,
        "seconds": state.train_seconds,
        "tokens_per_s": state.tokens / state.train_seconds if state.train_seconds else 0.0,
        "n_train": len(prepared.train),
        "n_val": len(prepared.val),
        "truncated": prepared.n_truncated,
        "dropped": prepared.n_dropped,
        "device": device,
    }


# ---------------------------------------------------------------- %lora


def load(model: str = "smollm2", template: str = "chat"):
    """A model and tokenizer in a ModelResult (what %lora VAR --base MODEL binds)."""
    from .results import ModelResult

    m, tok = models.load_model(model)
    return ModelResult(m, tok, model, template)


def base_name(holder) -> str:
    """The registry name of the base model a result was built on."""
    config = getattr(holder, "config", None)
    return getattr(config, "model", None) or getattr(holder, "name", None) or "custom"


def lora(
    holder,
    action: str = "attach",
    *,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.05,
    targets: str = "q_proj,v_proj",
    name: str | None = None,
    path: str | None = None,
):
    """Manage the LoRA adapters of a result's model in place; returns a LoraReport.

    action: attach | inspect | merge | unmerge | save | load | use."""
    from . import adapters as A
    from .results import LoraReport

    model, base = holder.model, base_name(holder)
    if action == "attach":
        holder.model = A.attach(model, r=r, alpha=alpha, dropout=dropout, targets=targets, name=name or "default")
    elif action == "merge":
        A.merge(model)
    elif action == "unmerge":
        A.unmerge(model)
    elif action == "save":
        A.save(model, path, base)
    elif action == "load":
        holder.model = A.load(model, path, name or "default", base)
    elif action == "use":
        A.use(model, name)
    elif action != "inspect":
        raise ValueError(f"unknown action {action!r}")
    model = holder.model.eval()  # dropout off: a report, a merge or a switch changes no outputs
    A.require_adapters(model, "report on adapters")
    merged = any(layer.merged for _, layer in A.lora_layers(model))
    _, base_params = A.counts(model)
    return LoraReport(
        base, action, A.inspect(model), A.adapter_names(model), model.active_adapter, base_params, merged
    )


def lora_sweep(model: str, data, ranks, *, targets: str = "q_proj,v_proj", progress: str = "text", **options):
    """The same short LoRA run per rank (alpha = 2r, as a fixed scale): trainable parameters
    against validation loss, the LoRA paper's rank table on your data."""
    from .results import SweepResult

    ranks = [int(r) for r in ranks]
    if not ranks or any(r <= 0 for r in ranks):
        raise ConfigError(f"--sweep needs positive ranks like 1,2,4,8 (got {ranks})")
    rows = []
    for r in ranks:
        result = sft(
            data,
            model=model,
            method="lora",
            lora_r=r,
            lora_alpha=2 * r,
            lora_targets=targets,
            samples=0,
            progress=progress,
            **options,
        )
        s = result.stats
        rows.append(
            {
                "r": r,
                "trainable": s["trainable"],
                "pct_of_model": 100 * s["trainable"] / s["total_params"],
                "final_loss": s["final_loss"],
                "val_loss": s["val_loss"],
            }
        )
    return SweepResult(model, rows)
