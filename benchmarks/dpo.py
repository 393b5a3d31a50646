"""DPO peak memory: LoRA-DPO (reference = the same model with adapters off) against DPO that
keeps a separate frozen reference copy. Each side runs in a fresh process on smollm2 and the
shipped preference set; the figure is peak RSS growth during training, model loading excluded.

    bench dpo peak_mem_growth_mb_lora                (reference = adapters off)
    bench dpo peak_mem_growth_mb_lora_with_copy      (same LoRA policy + a frozen copy)
    bench dpo peak_mem_growth_mb_full_with_copy      (all weights train + a frozen copy)
    bench dpo peak_mem_ratio_lora_over_full_copy     (target <= 0.6)

    python benchmarks/dpo.py [--steps 3]
"""

from __future__ import annotations

import argparse
import copy
import json

from _memory import PeakGrowth, in_fresh_process


def child(side: str, steps: int) -> None:
    from nbllm import models
    from nbllm.config import SFTConfig
    from nbllm.data import load_records
    from nbllm.train.attention import use_packed_attention
    from nbllm.train.dpo import Preference, prepare_preferences
    from nbllm.train.trainer import Trainer

    method = "dpo-full" if side == "full_with_copy" else "dpo"
    cfg = SFTConfig(
        model="smollm2",
        format="preference",
        method=method,
        max_steps=steps,
        batch_size=4,
        val_fraction=0.05,
        eval_every=10**6,
        device="cpu",
    )
    model, tok = models.load_model("smollm2", device="cpu")
    data = prepare_preferences(load_records("preferences"), tok, cfg)

    class WithCopy(Preference):
        """The same LoRA policy, but the reference is a frozen copy taken before LoRA is attached."""

        def setup(self, trainer, model):
            reference = copy.deepcopy(model).eval().requires_grad_(False)
            model = super().setup(trainer, model)
            use_packed_attention(reference)
            self.reference = reference
            return model

    with PeakGrowth() as peak:
        trainer = Trainer(cfg, data, model, tok, "cpu", objective=WithCopy() if side == "lora_with_copy" else None)
        trainer.run()
    print(json.dumps({"peak": peak.bytes}))


def measure(side: str, steps: int) -> int:
    return in_fresh_process("dpo", f"child({side!r}, {steps})")["peak"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    mem = {side: measure(side, args.steps) for side in ("lora", "lora_with_copy", "full_with_copy")}
    for side, value in mem.items():
        print(f"bench dpo peak_mem_growth_mb_{side} {value / 2**20:.0f}")
    print(f"bench dpo peak_mem_ratio_lora_over_lora_copy {mem['lora'] / mem['lora_with_copy']:.2f}")
    print(f"bench dpo peak_mem_ratio_lora_over_full_copy {mem['lora'] / mem['full_with_copy']:.2f}")


if __name__ == "__main__":
    main()
