"""Option dataclasses: each option is declared once, as a field with help metadata.

A field becomes a magic flag (nbllm/magics/_flags.py), a script keyword and a JSON key;
__post_init__ names bad values. A choice field is typed Literal[...] over one tuple, and its
help names every choice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError


def option(default: Any = dataclasses.MISSING, help: str = "", **metadata):
    """A config field with its help text (and, for a bool that defaults to True, the help of
    its --no-NAME flag as no_help=...)."""
    return field(default=default, metadata={"help": help, **metadata})


def _choices(what: str, words: dict[str, str]) -> str:
    """Help naming every choice, each with a word: 'what: a (word) | b (word)'."""
    return f"{what}: " + " | ".join(f"{name} ({word})" if word else name for name, word in words.items())


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(str, choices))}")


def _check_finite(name: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number (got {value!r})")


def _check_positive(name: str, value: float | int | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    _check_finite(name, value)
    if value is None or value <= 0:
        raise ConfigError(f"{name} must be > 0 (got {value!r})")


def _check_fraction(name: str, value: float) -> None:
    """0 <= value < 1 (nan and inf fail too)."""
    if not 0 <= value < 1:
        raise ConfigError(f"{name} must be in [0, 1) (got {value})")


class JsonConfig:
    """Round-trip a config dataclass to JSON (saved beside checkpoints); refuse nan and inf."""

    def _check_numbers(self) -> None:
        for f in dataclasses.fields(self):
            _check_finite(f.name, getattr(self, f.name))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))


# ---------------------------------------------------------------- tokenize

TEMPLATE_HELP = {
    "auto": "from the example's keys; text -> none",
    "alpaca": "instruction/input/output",
    "chat": "the model's chat template",
    "none": "the text as it is",
}
TEMPLATES = tuple(TEMPLATE_HELP)
Template = Literal[TEMPLATES]


@dataclass
class TokenizeConfig(JsonConfig):
    model: str = option("smollm2", "registered model name, local path or hub id")
    template: Template = option("auto", _choices("prompt template", TEMPLATE_HELP))
    max_length: int | None = option(None, "truncate to this many tokens")
    train_on_prompt: bool = option(False, "count prompt tokens in the loss too")

    def __post_init__(self):
        _check_choice("template", self.template, TEMPLATES)
        _check_positive("max_length", self.max_length, allow_none=True)


# ---------------------------------------------------------------- fine-tuning

METHOD_HELP = {
    "full": "every weight",
    "lora": "low-rank adapters, peft",
    "last-block": "the last transformer block",
    "bitfit": "the biases",
    "head": "only a new classification layer, with --format classify",
    "dpo": "LoRA against the base with its adapters off",
    "dpo-full": "every weight against a frozen copy",
    "prompt-tuning": "a soft prompt of --virtual-tokens",
}
METHODS = tuple(METHOD_HELP)
Method = Literal[METHODS]
DEFAULT_LR = {
    "full": 2e-5,
    "lora": 2e-4,
    "last-block": 1e-4,
    "bitfit": 1e-3,
    "head": 1e-3,
    "dpo": 5e-5,
    "dpo-full": 5e-6,
    "prompt-tuning": 3e-2,
}
FORMAT_HELP = {
    "alpaca": "instruction, input, output",
    "chat": "messages through the chat template",
    "lima": "alternating turns",
    "text": "plain text",
    "classify": "text, label: a new output layer",
    "preference": "prompt, chosen, rejected: for DPO",
}
SFT_FORMATS = tuple(FORMAT_HELP)
Format = Literal[SFT_FORMATS]
SCHEDULE_HELP = {"linear": "decay to 0", "cosine": "half a cosine to 0", "constant": "hold the peak"}
SCHEDULES = tuple(SCHEDULE_HELP)
Schedule = Literal[SCHEDULES]
PRECISION_HELP = {"auto": "bf16 or fp16 on CUDA, fp32 elsewhere", "fp32": "", "bf16": "", "fp16": ""}
PRECISIONS = tuple(PRECISION_HELP)
Precision = Literal[PRECISIONS]
ATTENTION_HELP = {
    "auto": "varlen on CUDA in 16-bit, else sdpa; mask when compiled",
    "sdpa": "per example",
    "varlen": "flash, CUDA 16-bit",
    "mask": "a document mask",
}
ATTENTIONS = tuple(ATTENTION_HELP)
Attention = Literal[ATTENTIONS]
PROGRESS_HELP = {"auto": "NBLLM_PROGRESS if set, else a widget in a notebook", "widget": "", "text": "", "none": ""}
PROGRESS = tuple(PROGRESS_HELP)
Progress = Literal[PROGRESS]


@dataclass
class SFTConfig(JsonConfig):
    """One fine-tuning run. Saved as config.json beside every checkpoint."""

    model: str = option("smollm2", "registered model, local folder or hub id")
    data: str | None = option(None, "path, shipped set or hub id (None: inline/variable)")
    format: Format = option("alpaca", _choices("record format", FORMAT_HELP))
    method: Method = option("lora", _choices("what trains", METHOD_HELP))
    epochs: float = option(1.0, "passes over the training split")
    max_steps: int | None = option(None, "stop after this many optimizer steps")
    lr: float | None = option(
        None,
        "peak learning rate (default per method: " + ", ".join(f"{m} {lr:g}" for m, lr in DEFAULT_LR.items()) + ")",
    )
    batch_size: int = option(8, "examples per optimizer step")
    grad_accum: int = option(1, "split each step into this many micro-batches (same examples, less memory)")
    max_length: int = option(512, "tokens per example; longer ones are truncated")
    seed: int = option(0, "fixes data order, init, dropout and sampling")
    val_fraction: float = option(0.1, "share of examples held out for val_loss")
    train_on_prompt: bool = option(False, "count prompt tokens in the loss too")
    packing: bool = option(
        True, "pack each batch's examples into rows (no padding)", no_help="pad each example instead of packing rows"
    )
    warmup_ratio: float = option(0.05, "share of steps with linear warm-up")
    schedule: Schedule = option("linear", _choices("learning rate after warm-up", SCHEDULE_HELP))
    weight_decay: float = option(0.0, "AdamW weight decay")
    max_grad_norm: float = option(1.0, "gradient clipping")
    eval_every: int | None = option(None, "val_loss every N steps (default: ~4 per run)")
    grad_checkpointing: bool = option(False, "recompute activations to save memory")
    lora_r: int = option(8, "LoRA rank")
    lora_alpha: float = option(16.0, "LoRA scale numerator (scale = alpha / r)")
    lora_dropout: float = option(0.05, "dropout on the LoRA input")
    lora_targets: str = option("q_proj,v_proj", "LoRA target modules: comma list or all-linear")
    virtual_tokens: int = option(20, "prompt tuning: trained soft-prompt length")
    beta: float = option(0.1, "DPO: how far the policy may move from the reference")
    device: str | None = option(None, "cuda | mps | cpu (default: best available)")
    precision: Precision = option("auto", _choices("autocast dtype", PRECISION_HELP))
    compile: bool = option(
        False,
        "torch.compile each transformer block: a minute or two of compiling, then "
        "faster steps (long GPU runs; not on a CPU, where it is slower)",
    )
    attention: Attention = option("auto", _choices("packed attention kernel", ATTENTION_HELP))

    def __post_init__(self):
        self._check_numbers()
        _check_choice("format", self.format, SFT_FORMATS)
        _check_choice("attention", self.attention, ATTENTIONS)
        if self.compile and self.format in ("classify", "preference"):
            raise ConfigError(
                f"--compile speeds up SFT runs (alpaca, chat, lima, text); drop it for --format {self.format}"
            )
        _check_choice("method", self.method, METHODS)
        if self.method == "head" and self.format != "classify":
            raise ConfigError("--method head trains a new classification head; use it with --format classify")
        if (self.format == "preference") != self.method.startswith("dpo"):
            raise ConfigError(
                "preference data trains with --method dpo (LoRA) or dpo-full, and only it does; "
                "use --format preference --method dpo"
            )
        _check_positive("beta", self.beta)
        _check_positive("virtual_tokens", self.virtual_tokens)
        if self.method == "prompt-tuning" and self.format in ("classify", "preference"):
            raise ConfigError(
                "--method prompt-tuning trains a soft prompt for generation; use it with "
                "alpaca, chat, lima or text data"
            )
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0 (got {self.weight_decay})")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ConfigError(
                f"max_grad_norm must be > 0 (got {self.max_grad_norm}); it is the gradient norm "
                "clipping keeps, e.g. 1.0"
            )
        _check_positive("epochs", self.epochs)
        _check_positive("max_steps", self.max_steps, allow_none=True)
        _check_positive("lr", self.lr, allow_none=True)
        _check_positive("batch_size", self.batch_size)
        _check_positive("grad_accum", self.grad_accum)
        _check_positive("max_length", self.max_length)
        _check_positive("eval_every", self.eval_every, allow_none=True)
        _check_positive("lora_r", self.lora_r)
        _check_positive("lora_alpha", self.lora_alpha)
        if self.grad_accum > self.batch_size:
            raise ConfigError(
                f"grad_accum={self.grad_accum} is larger than batch_size={self.batch_size}; lower --grad-accum"
            )
        _check_fraction("val_fraction", self.val_fraction)
        _check_fraction("lora_dropout", self.lora_dropout)
        _check_fraction("warmup_ratio", self.warmup_ratio)

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]


@dataclass
class RunOptions(JsonConfig):
    """What one %%sft / nbllm.sft call does around training (not saved with the config)."""

    samples: int = option(2, "validation prompts generated before and after training")
    save: str | None = option(None, "write a resumable checkpoint to this folder")
    save_every: int | None = option(None, "also checkpoint every N steps (with --save)")
    resume: str | None = option(
        None, "continue exactly from a checkpoint folder (the flags given override its saved config)"
    )
    progress: Progress = option("auto", _choices("live progress view", PROGRESS_HELP))

    def __post_init__(self):
        if not isinstance(self.samples, int) or self.samples < 0:
            raise ConfigError(f"samples must be an integer >= 0 (got {self.samples!r})")
        _check_positive("save_every", self.save_every, allow_none=True)
        _check_choice("progress", self.progress, PROGRESS)


# ---------------------------------------------------------------- LoRA adapters (%lora)


@dataclass
class LoraOptions(JsonConfig):
    """A LoRA adapter to attach: W0 x + (alpha / r) B A x. Ranges are checked where the adapter
    is attached (nbllm.lora.attach), after --base has loaded the model."""

    r: int = option(8, "rank")
    alpha: float | None = option(None, "scale numerator; scaling = alpha / r (default: 2r)")
    dropout: float = option(0.05, "dropout on the LoRA input")
    targets: str = option("q_proj,v_proj", "modules to adapt: comma list or all-linear")
    name: str | None = option(None, "adapter name (attach, load)")

    def __post_init__(self):
        self._check_numbers()
        if self.name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", self.name):
            raise ConfigError(
                f"adapter name {self.name!r} is not usable: peft names modules with it and saves "
                "it as a folder; use letters, digits, _ or - (e.g. math_v2)"
            )

    @property
    def scale_alpha(self) -> float:
        return self.alpha if self.alpha is not None else 2.0 * self.r


@dataclass
class LoraSweepOptions(JsonConfig):
    """The short LoRA run %lora VAR --sweep makes per rank (alpha = 2r)."""

    data: str = option("instructions", "data for --sweep: a file, a variable or a shipped set")
    max_steps: int = option(20, "steps per --sweep run")
    batch_size: int = option(8, "batch size of the --sweep runs")
    lr: float | None = option(None, f"learning rate of the --sweep runs (default: LoRA's, {DEFAULT_LR['lora']:g})")
    seed: int = option(0, "seed of the --sweep runs (the same data order for every rank)")

    def __post_init__(self):
        self._check_numbers()
