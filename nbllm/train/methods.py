"""Which parameters train: full, LoRA (through peft), the last block, or biases only (BitFit)."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .adapters import attach, is_prompt_learning, parameter_counts, peft_wrap, unwrap  # noqa: F401


ADAPTER_METHODS = ("lora", "dpo", "prompt-tuning")  # train peft adapters; checkpoints hold only those


def last_block_parameters(model) -> list[str]:
    """Names of the last transformer block, the final norm and the output head."""
    base = unwrap(model)
    blocks = [name for name, mod in base.named_modules() if isinstance(mod, torch.nn.ModuleList)]
    if not blocks:
        raise ConfigError("cannot find this model's transformer blocks; use --method lora or full")
    layers = max(blocks, key=lambda n: len(base.get_submodule(n)))
    last = f"{layers}.{len(base.get_submodule(layers)) - 1}."
    head = {id(p) for p in base.get_output_embeddings().parameters()}
    final_norms = [
        name
        for name, mod in base.named_modules()
        if "norm" in type(mod).__name__.lower() and not name.startswith(layers + ".")
    ]
    names = []
    for name, param in base.named_parameters():
        in_final_norm = any(name.startswith(n + ".") for n in final_norms)
        if name.startswith(last) or id(param) in head or in_final_norm:
            names.append(name)
    return names


def apply_method(model, config):
    """Freeze/unfreeze for config.method; returns the (possibly peft-wrapped) model.

    A model that already carries LoRA adapters (a previous %%sft result) keeps training them
    with --method lora; any other method first merges them into the weights."""
    if hasattr(model, "peft_config"):
        if config.method in ("lora", "dpo") and not is_prompt_learning(model):
            active = f".{model.active_adapter}."  # only the active adapter trains
            for name, p in model.named_parameters():
                p.requires_grad_("lora_" in name and active in name)
            return model
        model = model.merge_and_unload()
    if config.method in ("lora", "dpo"):
        return attach(
            model,
            r=config.lora_r,
            alpha=config.lora_alpha,
            dropout=config.lora_dropout,
            targets=config.lora_targets,
            seed=None,
        )
    if config.method == "prompt-tuning":
        from peft import PromptTuningConfig, PromptTuningInit

        return peft_wrap(
            model,
            PromptTuningConfig(
                task_type="CAUSAL_LM",
                num_virtual_tokens=config.virtual_tokens,
                prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB,
            ),
        )
    if config.method in ("full", "dpo-full"):
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if config.method == "bitfit":
        biases = [n for n, _ in model.named_parameters() if n.endswith(".bias")]
        if not biases:
            raise ConfigError(
                f"model '{config.model}' has no bias parameters, so BitFit has nothing to train; "
                "use --method lora or last-block"
            )
        chosen = set(biases)
    else:  # last-block
        chosen = set(last_block_parameters(model))
    for name, p in model.named_parameters():
        p.requires_grad_(name in chosen)
    return model
