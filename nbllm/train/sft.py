"""The causal-LM objective (supervised fine-tuning, prompt tuning): next-token loss on
response tokens.

    records -> examples (template) -> Encoded (ids, loss mask) -> train/val split
    a micro-batch: its examples packed into one row -> loss summed over its loss tokens

The loop itself is trainer.py.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..config import SFTConfig
from ..data import TEMPLATE_OF, split, to_examples
from ..errors import ConfigError, DataError
from ..tokenization import IGNORE_INDEX, Encoded, encode
from .attention import packed_forward, pick_kernel, use_packed_attention, varlen_available
from .batches import Batch, make_batch
from .compiling import compile_blocks, uncompile_blocks
from .dropout import cheapen_lora_dropout
from .swiglu import fuse_swiglu
from .linear_ce import chunk_rows, linear_cross_entropy
from .adapters import is_prompt_learning, unwrap
from .methods import apply_method
from .objectives import Objective, step_examples  # noqa: F401 - step_examples: the data order, shared


# ---------------------------------------------------------------- data


@dataclass
class PreparedData:
    train: list[Encoded]
    val: list[Encoded]
    val_examples: list  # the validation examples as dicts (prompts for before/after samples)
    n_records: int
    n_truncated: int
    n_dropped: int  # examples left with no token in the loss (e.g. the response was cut off)
    classes: list = field(default_factory=list)  # classification: the label names, index = class id


def prepare_data(records: list[dict], tokenizer, config: SFTConfig) -> PreparedData:
    examples = to_examples(records, config.format)
    template = TEMPLATE_OF[config.format]
    encoded = [encode(tokenizer, ex, template, config.max_length, config.train_on_prompt) for ex in examples]
    truncated = sum(e.truncated for e in encoded)
    usable = [(ex, e) for ex, e in zip(examples, encoded) if any(label != IGNORE_INDEX for label in e.labels)]
    if not usable:
        longest_prompt = max(e.loss_mask.index(True) if True in e.loss_mask else len(e) for e in encoded)
        raise DataError(
            f"all {len(encoded)} examples are longer than --max-length {config.max_length} "
            f"before their response starts (prompts up to {longest_prompt} tokens seen); "
            "raise --max-length"
        )
    train, val = split(usable, config.val_fraction, config.seed)
    return PreparedData(
        [e for _, e in train],
        [e for _, e in val],
        [ex for ex, _ in val],
        len(records),
        truncated,
        len(encoded) - len(usable),
    )


# ---------------------------------------------------------------- loss


def _plain_head(base) -> bool:
    """True when logits are just head(hidden): then only loss positions need the head."""
    cfg = base.config
    return (
        hasattr(base, "get_decoder")
        and base.get_output_embeddings() is not None
        and not getattr(cfg, "final_logit_softcapping", None)
        and not getattr(cfg, "logit_scale", None)
    )


def loss_sum(model, batch: Batch, compiled: bool = False) -> torch.Tensor:
    """Summed next-token cross-entropy over the batch's loss tokens.

    The vocabulary projection runs only on positions that count in the loss (prompt and
    padding positions never reach the 49k-wide head), fused with the cross-entropy so no
    batch-wide logits are stored (linear_ce.py); `compiled` fuses its elementwise passes."""
    with packed_forward() if batch.segments is not None else contextlib.nullcontext():
        return _loss_sum(model, batch, compiled)


def _loss_sum(model, batch: Batch, compiled: bool) -> torch.Tensor:
    base = unwrap(model)
    keep = batch.labels != IGNORE_INDEX
    if is_prompt_learning(model):  # peft prepends the soft prompt: drop its positions from the logits
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        logits = logits[:, logits.shape[1] - batch.input_ids.shape[1] :]
        return F.cross_entropy(logits[keep].float(), batch.labels[keep], reduction="sum")
    if not _plain_head(base):
        logits = model(**batch.model_inputs()).logits
        return F.cross_entropy(logits[keep].float(), batch.labels[keep], reduction="sum")
    out = base.get_decoder()(**batch.model_inputs())
    hidden, targets = out[0][keep], batch.labels[keep]
    head = base.get_output_embeddings()
    if type(head) is torch.nn.Linear:
        return linear_cross_entropy(hidden, head.weight, head.bias, targets, compiled)
    # a wrapped head (LoRA on lm_head, modules_to_save): its own forward, logits recomputed in backward
    step = chunk_rows(base.get_input_embeddings().num_embeddings)
    return sum(
        checkpoint(_head_loss, head, hidden[i : i + step], targets[i : i + step], use_reentrant=False)
        for i in range(0, len(targets), step)
    )


def _head_loss(head, hidden, targets):
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


@torch.no_grad()
def evaluate_loss(
    model,
    examples: list[Encoded],
    pad_id: int,
    device,
    batch_size: int,
    autocast,
    layout: str = "rows",
    to_device=None,
    compiled: bool = False,
) -> float:
    """Mean next-token loss per loss token over `examples`."""
    if not examples:
        return float("nan")
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        batch = make_batch(examples[i : i + batch_size], pad_id, layout)
        batch = to_device(batch) if to_device else batch.to(device)
        with autocast():
            total += float(loss_sum(model, batch, compiled))
        count += batch.n_loss_tokens
    model.train(was_training)
    return total / max(count, 1)


# ---------------------------------------------------------------- the objective


class CausalLM(Objective):
    name = "causal-lm"

    def prepare(self, records, tokenizer, config) -> PreparedData:
        return prepare_data(records, tokenizer, config)

    def setup(self, trainer, model):
        config = trainer.config
        self.compiled = config.compile
        model = apply_method(model, config).to(trainer.device)
        cheapen_lora_dropout(model)
        fuse_swiglu(model)
        if config.grad_checkpointing:
            enable_grad_checkpointing(model)
        trainer.layout = "padded"
        if config.packing and not is_prompt_learning(model):
            try:
                use_packed_attention(model)
                trainer.layout = "segments"
            except Exception:  # noqa: BLE001 - a model without the attention interface: masked rows
                trainer.layout = "rows"
        trainer.kernel = attention_kernel(trainer, model)
        if config.compile:
            compile_blocks(model)
        return model

    def batch(self, trainer, items):
        return trainer.batch_to_device(make_batch(items, trainer.pad_id, trainer.layout))

    def loss(self, model, batch):
        return loss_sum(model, batch, self.compiled), {}

    def validate(self, trainer) -> dict:
        return {
            "val_loss": evaluate_loss(
                trainer.model,
                trainer.data.val,
                trainer.pad_id,
                trainer.device,
                trainer.config.batch_size,
                trainer.autocast,
                trainer.layout,
                trainer.batch_to_device,
                trainer.config.compile,
            )
        }

    def after_run(self, trainer) -> None:
        if trainer.config.compile:
            uncompile_blocks(trainer.model)


def enable_grad_checkpointing(model) -> None:
    base = unwrap(model)
    enable = getattr(base, "activation_checkpointing_enable", None)  # transformers >= 5.2x
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def attention_kernel(trainer, model) -> str:
    cfg = trainer.config
    if trainer.layout != "segments":
        if cfg.attention != "auto":
            raise ConfigError(f"--attention {cfg.attention} applies to packed rows; drop --no-packing or --attention")
        return "auto"
    weights = next(model.parameters()).dtype
    kernel = pick_kernel(
        cfg.attention, trainer.device, trainer.dtype if trainer.dtype != torch.float32 else weights, cfg.compile
    )
    if kernel == "varlen" and not (trainer.device.startswith("cuda") and varlen_available()):
        raise ConfigError(
            "--attention varlen needs an Ampere or newer CUDA GPU (not a T4) and torch >= 2.10; use --attention auto"
        )
    if kernel == "varlen" and torch.float32 == trainer.dtype == weights:
        raise ConfigError("--attention varlen runs in bf16/fp16; add --precision bf16 or use --attention auto")
    return kernel
