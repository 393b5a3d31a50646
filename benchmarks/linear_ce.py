"""The head + cross-entropy of SFT at smollm2's shape (576 -> 49152), forward and backward:

    autograd       F.cross_entropy(head(hidden).float()), as transformers computes the loss
    recomputed     checkpointed chunks of 2048 rows (logits recomputed in backward; nbllm
                   before the fused version, still its path for wrapped heads)
    fused          nbllm.train.linear_ce (gradients in the forward pass, chunk by chunk)

for a frozen head (LoRA) and a trained one (full fine-tuning). Prints seconds (best of 3)
and peak memory growth (each side in a fresh process on the CPU), and fused's ratios:

    bench linear_ce n4096_frozen seconds autograd S recomputed S fused S
    bench linear_ce n4096_frozen peak_mem_mb autograd M recomputed M fused M
    bench linear_ce n4096_frozen speedup_vs_autograd R    (and _vs_recomputed, peak_mem_ratio_vs_...)

    python benchmarks/linear_ce.py [--device cpu] [--rows 512,4096]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from _memory import PeakGrowth, in_fresh_process
from sft import sync
from torch.utils.checkpoint import checkpoint

from nbllm import models
from nbllm.train.linear_ce import linear_cross_entropy

HIDDEN, VOCAB, CHUNK = 576, 49152, 2048


def head_loss(hidden, weight, targets):
    return F.cross_entropy(F.linear(hidden, weight).float(), targets, reduction="sum")


VARIANTS = {
    "autograd": head_loss,
    "recomputed": lambda h, w, t: sum(
        checkpoint(head_loss, h[i : i + CHUNK], w, t[i : i + CHUNK], use_reentrant=False)
        for i in range(0, len(t), CHUNK)
    ),
    "fused": lambda h, w, t: linear_cross_entropy(h, w, None, t),
}


def inputs(rows: int, trained: bool, device: str):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(rows, HIDDEN, generator=g).to(device).requires_grad_()
    weight = (torch.randn(VOCAB, HIDDEN, generator=g) * 0.02).to(device).requires_grad_(trained)
    return hidden, weight, torch.randint(0, VOCAB, (rows,), generator=g).to(device)


def forward_backward(variant: str, hidden, weight, targets) -> float:
    hidden.grad = weight.grad = None
    loss = VARIANTS[variant](hidden, weight, targets)
    loss.backward()
    return float(loss)


def seconds(variant: str, rows: int, trained: bool, device: str) -> tuple[float, float]:
    tensors = inputs(rows, trained, device)
    best, loss = float("inf"), 0.0
    for _ in range(3):
        sync(device)
        started = time.perf_counter()
        loss = forward_backward(variant, *tensors)
        sync(device)
        best = min(best, time.perf_counter() - started)
    return best, loss


def memory_child(variant: str, rows: int, trained: bool) -> None:
    tensors = inputs(rows, trained, "cpu")
    forward_backward("fused", *inputs(8, trained, "cpu"))  # imports and allocator warm
    with PeakGrowth() as peak:
        forward_backward(variant, *tensors)
    print(json.dumps({"peak_growth": peak.bytes}))


def peak_memory(variant: str, rows: int, trained: bool, device: str) -> int:
    if device.startswith("cuda"):
        tensors = inputs(rows, trained, device)
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        forward_backward(variant, *tensors)
        return torch.cuda.max_memory_allocated() - start
    return in_fresh_process("linear_ce", f"memory_child({variant!r}, {rows}, {trained})")["peak_growth"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default=models.pick_device())
    parser.add_argument("--rows", default="512,4096")
    args = parser.parse_args()
    for rows in map(int, args.rows.split(",")):
        for trained in (False, True):
            name = f"n{rows}_{'trained' if trained else 'frozen'}"
            timed = {v: seconds(v, rows, trained, args.device) for v in VARIANTS}
            losses = {round(loss, 1) for _, loss in timed.values()}
            mem = {v: peak_memory(v, rows, trained, args.device) for v in VARIANTS}
            say = lambda *words: print("bench linear_ce", name, *words, flush=True)  # noqa: E731
            say("seconds", *(f"{v} {t:.3f}" for v, (t, _) in timed.items()))
            say("same_loss", int(len(losses) == 1))
            say("peak_mem_mb", *(f"{v} {m / 2**20:.0f}" for v, m in mem.items()))
            for other in ("autograd", "recomputed"):
                say(f"speedup_vs_{other}", f"{timed[other][0] / timed['fused'][0]:.2f}")
                say(f"peak_mem_ratio_vs_{other}", f"{mem['fused'] / max(mem[other], 1):.2f}")


if __name__ == "__main__":
    main()
