"""Which parameters train: full, LoRA (through peft), the last block, or biases only (BitFit)."""

from __future__ import annotations

import contextlib
import warnings

import torch

from ..errors import ConfigError


ADAPTER_METHODS = ("lora", "dpo", "prompt-tuning")  # train peft adapters; checkpoints hold only those


@contextlib.contextmanager
def quiet_peft():
    """Hide transformers' FutureWarning about peft's own call to is_gradient_checkpointing
    (noise in every notebook cell that attaches or loads an adapter)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def peft_wrap(model, peft_config, **kwargs):
    from peft import get_peft_model

    with quiet_peft():
        return get_peft_model(model, peft_config, **kwargs)


def unwrap(model):
    """The transformers model under a peft wrapper (LoRA layers stay in place inside it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def linear_module_names(model) -> list[str]:
    """Short names of the linear layers a LoRA target can name (q_proj, v_proj, ...), head excluded."""
    head = unwrap(model).get_output_embeddings()
    names = set()
    for name, mod in unwrap(model).named_modules():
        short = name.rsplit(".", 1)[-1]
        if ".lora_" in name or short == "base_layer" or mod is head:
            continue  # peft's own sub-layers; an adapted layer counts under its own name
        if isinstance(mod, torch.nn.Linear) or hasattr(mod, "base_layer"):
            names.add(short)
    return sorted(names)


def lora_targets(model, targets: str):
    """'all-linear' or a comma list, checked against the model: a typo is an error, not a no-op."""
    if targets.strip() == "all-linear":
        return "all-linear"
    wanted = [t.strip() for t in targets.split(",") if t.strip()]
    if not wanted:
        raise ConfigError("--targets is empty; name modules like q_proj,v_proj or use all-linear")
    existing = linear_module_names(model)
    missing = [t for t in wanted if t not in existing]
    if missing:
        raise ConfigError(f"LoRA target(s) {', '.join(missing)} match no module of this model; "
                          f"its linear modules are {', '.join(existing)}")
    return wanted


def apply_lora(model, r: int, alpha: float, dropout: float, targets: str):
    from peft import LoraConfig

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=lora_targets(model, targets),
                        bias="none", task_type="CAUSAL_LM")
    return peft_wrap(model, config)


def is_prompt_learning(model) -> bool:
    """True for peft soft-prompt models (their forward prepends trained virtual tokens)."""
    config = getattr(model, "peft_config", {}).get(getattr(model, "active_adapter", None))
    return bool(getattr(config, "is_prompt_learning", False))


def last_block_parameters(model) -> list[str]:
    """Names of the last transformer block, the final norm and the output head."""
    base = unwrap(model)
    blocks = [name for name, mod in base.named_modules() if isinstance(mod, torch.nn.ModuleList)]
    if not blocks:
        raise ConfigError("cannot find this model's transformer blocks; use --method lora or full")
    layers = max(blocks, key=lambda n: len(base.get_submodule(n)))
    last = f"{layers}.{len(base.get_submodule(layers)) - 1}."
    head = {id(p) for p in base.get_output_embeddings().parameters()}
    final_norms = [name for name, mod in base.named_modules()
                   if "norm" in type(mod).__name__.lower() and not name.startswith(layers + ".")]
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
        return apply_lora(model, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
    if config.method == "prompt-tuning":
        from peft import PromptTuningConfig, PromptTuningInit

        return peft_wrap(model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=config.virtual_tokens,
                                                   prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB))
    if config.method in ("full", "dpo-full"):
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if config.method == "bitfit":
        biases = [n for n, _ in model.named_parameters() if n.endswith(".bias")]
        if not biases:
            raise ConfigError(f"model '{config.model}' has no bias parameters, so BitFit has nothing to train; "
                              "use --method lora or last-block")
        chosen = set(biases)
    else:  # last-block
        chosen = set(last_block_parameters(model))
    for name, p in model.named_parameters():
        p.requires_grad_(name in chosen)
    return model


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters, tied weights counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total
