"""What a training objective says (trainer.objective_for picks one for a config).

    causal LM       sft.py        next-token loss on response tokens (incl. prompt tuning)
    preference      dpo.py        DPO against the adapters-off model or a frozen copy
    classification  classify.py   a new head on a pooled language model

The loop (trainer.py) is the same for all three: an objective prepares records, chooses
what trains, makes micro-batches, gives a micro-batch's loss sum and unit count, and
reports validation metrics.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError

# options that only some objectives can honour: option -> the objectives that take it
ONLY_FOR = {
    "train_on_prompt": ("causal-lm",),
    "packing": ("causal-lm",),
    "attention": ("causal-lm", "preference"),
    "compile": ("causal-lm",),
    "beta": ("preference",),
}
ADAPTER_OPTIONS = ("lora_r", "lora_alpha", "lora_dropout", "lora_targets")


class Objective:
    name = "objective"
    unit = "tokens"  # what TrainState.tokens counts: "tokens" or "examples"
    defaults: dict = {}  # this objective's own defaults for options the user did not give

    def configured(self, config, given):
        """The config with this objective's defaults for the options not given."""
        import dataclasses

        own = {k: v for k, v in self.defaults.items() if k not in given}
        return dataclasses.replace(config, **own) if own else config

    def load_model(self, config, device: str, records):
        """(model, tokenizer) for config.model. LoRA on a bf16 GPU keeps the frozen base in bf16."""
        from .. import models
        from ..lm import require_causal

        require_causal(
            config.model,
            f"--format {config.format} trains a generator such as smollm2 (encoders train with --format classify)",
        )
        frozen_bf16 = (
            config.method in ("lora", "dpo")
            and device.startswith("cuda")
            and models.pick_dtype(device) == torch.bfloat16
        )
        return models.load_model(config.model, device=device, dtype=torch.bfloat16 if frozen_bf16 else torch.float32)

    def prepare(self, records: list[dict], tokenizer, config):
        raise NotImplementedError

    def setup(self, trainer, model):
        """Choose what trains; returns the model the loop trains (possibly peft-wrapped)."""
        raise NotImplementedError

    def parameter_counts(self, model) -> tuple[int, int]:
        from .methods import parameter_counts

        return parameter_counts(model)

    def loss_module(self, trainer) -> torch.nn.Module:
        return ObjectiveModule(trainer.model, self)

    def shards(self, trainer) -> bool:
        """Several processes shard the model (FSDP2) when every weight trains; adapters replicate (DDP)."""
        return trainer.config.method in ("full", "dpo-full")

    def blocks(self, trainer) -> list:
        from .compiling import blocks

        try:
            return list(blocks(trainer.model))
        except Exception:  # noqa: BLE001 - no recognisable blocks: the root alone is sharded
            return []

    def default_eval_every(self, trainer) -> int:
        return max(1, trainer.total_steps // 4)

    def step_examples(self, trainer, step: int) -> list[int]:
        cfg = trainer.config
        return step_examples(len(trainer.data.train), cfg.batch_size, cfg.seed, step)

    def batch(self, trainer, items: list):
        raise NotImplementedError

    def loss(self, model, batch) -> tuple[torch.Tensor, dict]:
        """(summed loss over the batch's units, {metric: sum over units})."""
        raise NotImplementedError

    def validate(self, trainer) -> dict:
        raise NotImplementedError

    def after_run(self, trainer) -> None:
        pass


class ObjectiveModule(torch.nn.Module):
    """The model and its objective's loss as one module: what DDP or FSDP2 wraps, so every
    forward (and the head the loss runs on) goes through the root module's hooks."""

    def __init__(self, model, objective: Objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, batch):
        return self.objective.loss(self.model, batch)


def refuse_unusable(config, given, name: str) -> None:
    """One ConfigError for an option the user gave that the `name` objective cannot honour."""
    for option in sorted(set(given)):
        flag = "--no-packing" if option == "packing" else "--" + option.replace("_", "-")
        takers = ONLY_FOR.get(option)
        if takers and name not in takers:
            raise ConfigError(f"{flag} does not apply to --format {config.format} ({name} training); drop it")
        if option in ADAPTER_OPTIONS and config.method not in ("lora", "dpo"):
            raise ConfigError(
                f"{flag} sets up LoRA adapters, which --method {config.method} does not train; "
                "use --method lora (or dpo) or drop it"
            )
        if option == "virtual_tokens" and config.method != "prompt-tuning":
            raise ConfigError("--virtual-tokens sets the soft prompt of --method prompt-tuning; drop it")


def step_examples(n_train: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Indices of the training examples for global step `step` (0-based): a seeded
    permutation per epoch, cut into consecutive batches (the last one may be smaller)."""
    per_epoch = math.ceil(n_train / batch_size)
    epoch, index = divmod(step, per_epoch)
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[index * batch_size : (index + 1) * batch_size].tolist()
