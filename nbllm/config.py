"""Option dataclasses. Each magic flag maps to one field; __post_init__ names bad values."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

TEMPLATES = ("auto", "alpaca", "chat", "none")


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(str, choices))}")


def _check_positive(name: str, value: float | int | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ConfigError(f"{name} must be > 0 (got {value!r})")


class JsonConfig:
    """Round-trip a config dataclass to JSON (saved beside checkpoints)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))


@dataclass
class TokenizeConfig(JsonConfig):
    model: str = field(default="smollm2", metadata={"help": "registered model name, local path or hub id"})
    template: str = field(default="auto", metadata={"help": "alpaca | chat | none | auto (from the example's keys)"})
    max_length: int | None = field(default=None, metadata={"help": "truncate to this many tokens"})
    train_on_prompt: bool = field(default=False, metadata={"help": "count prompt tokens in the loss too"})

    def __post_init__(self):
        _check_choice("template", self.template, TEMPLATES)
        _check_positive("max_length", self.max_length, allow_none=True)


METHODS = ("full", "lora", "last-block", "bitfit", "head", "dpo", "dpo-full", "prompt-tuning")
DEFAULT_LR = {"full": 2e-5, "lora": 2e-4, "last-block": 1e-4, "bitfit": 1e-3, "head": 1e-3, "dpo": 5e-5,
              "dpo-full": 5e-6, "prompt-tuning": 3e-2}
SFT_FORMATS = ("alpaca", "chat", "lima", "text", "classify", "preference")


@dataclass
class SFTConfig(JsonConfig):
    """One fine-tuning run. Saved as config.json beside every checkpoint."""

    model: str = field(default="smollm2", metadata={"help": "registered model, local folder or hub id"})
    data: str | None = field(default=None, metadata={"help": "path, shipped set or hub id (None: inline/variable)"})
    format: str = field(default="alpaca", metadata={"help": "alpaca | chat | lima | text | classify"})
    method: str = field(default="lora", metadata={"help": "full | lora | last-block | bitfit | head (classify)"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the training split"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many optimizer steps"})
    lr: float | None = field(default=None, metadata={"help": "peak learning rate (default per method: DEFAULT_LR)"})
    batch_size: int = field(default=8, metadata={"help": "examples per optimizer step"})
    grad_accum: int = field(default=1, metadata={"help": "split each step into this many micro-batches"})
    max_length: int = field(default=512, metadata={"help": "tokens per example; longer ones are truncated"})
    seed: int = field(default=0, metadata={"help": "fixes data order, init, dropout and sampling"})
    val_fraction: float = field(default=0.1, metadata={"help": "share of examples held out for val_loss"})
    train_on_prompt: bool = field(default=False, metadata={"help": "count prompt tokens in the loss too"})
    packing: bool = field(default=True, metadata={"help": "pack each batch's examples into rows (no padding)"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "share of steps with linear warm-up"})
    schedule: str = field(default="linear", metadata={"help": "learning rate after warm-up: linear | cosine "
                                                                "(decay to 0) | constant"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    eval_every: int | None = field(default=None, metadata={"help": "val_loss every N steps (default: ~4 per run)"})
    grad_checkpointing: bool = field(default=False, metadata={"help": "recompute activations to save memory"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scale numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    lora_targets: str = field(default="q_proj,v_proj", metadata={"help": "comma list or all-linear"})
    virtual_tokens: int = field(default=20, metadata={"help": "prompt tuning: trained soft-prompt length"})
    beta: float = field(default=0.1, metadata={"help": "DPO: how far the policy may move from the reference"})
    device: str | None = field(default=None, metadata={"help": "cuda | mps | cpu (default: best available)"})
    precision: str = field(default="auto", metadata={"help": "auto | fp32 | bf16 | fp16 (autocast on GPU)"})
    compile: bool = field(default=False, metadata={"help": "torch.compile each transformer block: a minute or "
                                                           "two of compiling, then faster steps (long GPU runs; "
                                                           "not on a CPU, where it is slower)"})
    attention: str = field(default="auto", metadata={"help": "packed attention kernel: auto | sdpa (per example) | "
                                                             "varlen (flash, CUDA 16-bit) | mask (document mask)"})

    def __post_init__(self):
        _check_choice("format", self.format, SFT_FORMATS)
        _check_choice("attention", self.attention, ("auto", "sdpa", "varlen", "mask"))
        if self.compile and self.format in ("classify", "preference"):
            raise ConfigError("--compile speeds up SFT runs (alpaca, chat, lima, text); drop it for "
                              f"--format {self.format}")
        _check_choice("method", self.method, METHODS)
        if self.method == "head" and self.format != "classify":
            raise ConfigError("--method head trains a new classification head; use it with --format classify")
        if (self.format == "preference") != self.method.startswith("dpo"):
            raise ConfigError("preference data trains with --method dpo (LoRA) or dpo-full, and only it does; "
                              "use --format preference --method dpo")
        _check_positive("beta", self.beta)
        _check_positive("virtual_tokens", self.virtual_tokens)
        if self.method == "prompt-tuning" and self.format in ("classify", "preference"):
            raise ConfigError("--method prompt-tuning trains a soft prompt for generation; use it with "
                              "alpaca, chat, lima or text data")
        _check_choice("precision", self.precision, ("auto", "fp32", "bf16", "fp16"))
        _check_choice("schedule", self.schedule, ("linear", "cosine", "constant"))
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0 (got {self.weight_decay})")
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
            raise ConfigError(f"grad_accum={self.grad_accum} is larger than batch_size={self.batch_size}; "
                              "lower --grad-accum")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1) (got {self.val_fraction})")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout must be in [0, 1) (got {self.lora_dropout})")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]
