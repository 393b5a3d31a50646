"""nbllm.lora: the LoRA adapter tools the labs use (attach, inspect, merge, save, load, ...).
They live in nbllm/train/adapters.py, with every other adapter nbllm attaches."""

from .train.adapters import (
    META,
    adapter_names,
    attach,
    counts,
    has_adapters,
    inspect,
    load,  # noqa: F401
    lora_layers,
    merge,
    require_adapters,
    save,
    unmerge,
    use,
)
