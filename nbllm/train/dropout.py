"""A cheaper dropout for the LoRA input on the CPU.

peft puts an `nn.Dropout` in front of every LoRA adapter. On the CPU, torch's dropout draws
a float Bernoulli mask and makes two more passes over the tensor: 6-9% of a smollm2 LoRA step
on 2 cores. `CheapDropout` draws 15-bit integers instead (torch's same generator, so seeds,
checkpoints and resumes cover it) and keeps a one-byte mask: the same distribution (each
element kept with probability 1 - p, scaled so the expectation is unchanged), at about half
the time. On CUDA it is torch's dropout.
"""

from __future__ import annotations

import torch
from torch import nn

LEVELS = 2**15  # int16 random_() draws uniformly from [0, 2**15)


class CheapDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        dropped = round(self.p * LEVELS)  # p to 1/32768; the scale below uses that same p
        keep = torch.empty(x.shape, dtype=torch.int16).random_() >= dropped
        return torch.where(keep, x, 0.0) * (LEVELS / (LEVELS - dropped))  # backward keeps the 1-byte mask


def cheapen_lora_dropout(model) -> int:
    """Swap each LoRA adapter's nn.Dropout for CheapDropout (same p); returns how many."""
    swapped = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, nn.ModuleDict):
            continue
        for name, old in dropouts.items():
            if type(old) is nn.Dropout:
                dropouts[name] = CheapDropout(old.p, old.inplace)
                swapped += 1
    return swapped
