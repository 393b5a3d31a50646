"""A gated MLP that keeps two activations for backward instead of three.

Llama-family blocks compute down(silu(gate(x)) * up(x)). Autograd keeps gate(x) for silu's
backward and both silu(gate(x)) and up(x) for the product's: three [tokens x intermediate]
tensors per block, the largest activations of a LoRA step (a third of them on smollm2).
`SwiGLU` keeps gate(x) and up(x) only and recomputes silu in backward (one more elementwise
pass): about 80 MB less peak memory at 600 tokens on smollm2, the same values and gradients
(silu's own backward kernel). Liger-Kernel's SwiGLU does the same on GPUs.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn

# MLP classes whose forward is exactly down_proj(act_fn(gate_proj(x)) * up_proj(x))
GATED_MLPS = {"LlamaMLP", "MistralMLP", "Qwen2MLP", "Qwen3MLP", "OlmoMLP", "Olmo2MLP", "GraniteMLP", "SmolLM3MLP"}


class SwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate, up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        gate, up = ctx.saved_tensors
        d_gate = torch.ops.aten.silu_backward(grad * up, gate) if ctx.needs_input_grad[0] else None
        d_up = grad * F.silu(gate) if ctx.needs_input_grad[1] else None
        return d_gate, d_up


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled() and (gate.requires_grad or up.requires_grad):
        return SwiGLU.apply(gate, up)
    return F.silu(gate) * up


def _gated_forward(self, x):
    return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


def _is_silu(act) -> bool:
    return isinstance(act, nn.SiLU) or type(act).__name__ == "SiLUActivation"


def fuse_swiglu(model) -> int:
    """Give every known gated SiLU MLP of `model` the two-activation forward; returns how many."""
    fused = 0
    for module in model.modules():
        if type(module).__name__ in GATED_MLPS and _is_silu(getattr(module, "act_fn", None)):
            module.forward = types.MethodType(_gated_forward, module)
            fused += 1
    return fused
