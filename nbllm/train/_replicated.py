"""TEMPORARY (replaced by distributed.py): the old replicated path behind the Processes API."""

from __future__ import annotations

import contextlib

import torch


class Processes:
    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    @classmethod
    def current(cls) -> "Processes":
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def sum(self, value):
        if self.world == 1:
            return value
        import torch.distributed as dist

        t = torch.tensor(float(value), dtype=torch.float64)
        dist.all_reduce(t)
        return t.item()

    def wrap(self, module, *, shard: bool, blocks):
        return module

    def gradient_sync(self, wrapped, enabled: bool):
        return contextlib.nullcontext()

    def clip_grad_norm(self, params, max_norm):
        if self.world > 1:
            import torch.distributed as dist

            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            dist.all_reduce(flat)
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
