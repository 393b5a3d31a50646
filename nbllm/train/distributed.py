"""Several processes (torchrun / accelerate launch) through torch's own engines.

    procs = Processes.current()                      # (rank, world) or (0, 1)
    root = procs.wrap(ObjectiveModule(model, objective), shard=True, blocks=base.model.layers)
    params = [p for p in root.parameters() if p.requires_grad]   # AFTER wrap: FSDP2 swaps them
    optimizer = torch.optim.AdamW(params, fused=True)
    for i, micro in enumerate(micro_batches):
        with procs.gradient_sync(root, enabled=i == len(micro_batches) - 1):
            (root(micro) / global_tokens).backward()   # global_tokens = procs.sum(tokens here)
    procs.clip_grad_norm(params, max_norm); optimizer.step()

shard=False is DistributedDataParallel (every process holds the whole model: adapter methods,
whose trainable part is small); shard=True is FSDP2 (`fully_shard`): parameters, gradients and
optimizer state are cut in dim-0 shards (DTensors), and each decoder block is gathered only
while it runs. Gradients are SUMMED over processes, never averaged: every process divides its
loss by the token count of the whole step, so the sum is the one-process gradient.

Checkpoints (save_sharded / load_sharded) are torch.distributed.checkpoint directories: every
process writes its own shards, and they load on any process count, one process without a
process group included (DCP reshards on load).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch


def _dist():
    import torch.distributed as dist

    return dist


def _is_dtensor(t) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def _sum_hook(group, bucket):
    """DDP comm hook: all-reduce each gradient bucket with SUM and nothing else.

    DDP's built-in reduction divides by the world size; a comm hook that only sums is exact
    (no multiply-then-divide rounding, unlike scaling the loss by the world size, which is
    only exact for powers of two) and costs nothing extra."""
    dist = _dist()
    work = dist.all_reduce(bucket.buffer(), group=group, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


@dataclass(frozen=True)
class Processes:
    """rank/world of this process (torchrun / accelerate launch), or (0, 1)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> "Processes":
        """From torch.distributed when its process group is initialised, else one process."""
        dist = _dist()
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def main(self) -> bool:
        """The process that prints and writes the non-sharded files."""
        return self.rank == 0

    def _device(self) -> torch.device:
        """Where collectives of Python numbers run: CPU for gloo, the current GPU for NCCL."""
        backend = str(_dist().get_backend())
        if "gloo" in backend or not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", torch.cuda.current_device())

    # ---------------------------------------------------------------- numbers
    def sum(self, value: float) -> float:
        """`value` summed over all processes (float64 all-reduce); itself when world == 1."""
        if self.world == 1:
            return float(value)
        t = torch.tensor(float(value), dtype=torch.float64, device=self._device())
        _dist().all_reduce(t)
        return t.item()

    # ---------------------------------------------------------------- engines
    def wrap(self, module: torch.nn.Module, *, shard: bool, blocks=()) -> torch.nn.Module:
        """The module to run forward/backward through on this process count.

        world == 1: `module` itself. shard=False: DistributedDataParallel. shard=True: FSDP2,
        `fully_shard` on each of `blocks` (the decoder layers) and then on `module` (which takes
        everything else: embeddings, final norm, a head tied to the embeddings). FSDP2 shards in
        place and returns the same object; its parameters become new DTensor Parameters, so
        build the optimizer and the list of parameters to clip AFTER this call.

        The forward must go through the returned root module: FSDP2 gathers the root's
        parameters (embeddings, tied head) in the root's forward pre-hook, and DDP prepares the
        gradient reduction in its forward. Inside that forward, any submodule or parameter of
        the model may be used (model.get_decoder()(...), get_output_embeddings().weight)."""
        if self.world == 1:
            return module
        device = next(module.parameters()).device
        if not shard:
            from torch.nn.parallel import DistributedDataParallel

            ddp = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
            ddp.register_comm_hook(_dist().group.WORLD, _sum_hook)
            return ddp
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import FSDPModule, fully_shard

        mesh = init_device_mesh(device.type, (self.world,))
        for block in blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(module, mesh=mesh)
        for m in module.modules():
            if isinstance(m, FSDPModule):
                # FSDP2 averages by default. Divide factor 1 alone picks ReduceOp.PREMUL_SUM(1.0),
                # which gloo rejects ("Cannot use ReduceOp.PREMUL_SUM with Gloo"); forcing
                # SUM-only collectives with factor 1 gives a plain SUM reduce-scatter and no
                # division at all (FSDP skips dividing by 1): exact, on every backend.
                m.set_gradient_divide_factor(1.0)
                m.set_force_sum_reduction_for_comms(True)
        return module

    def gradient_sync(self, wrapped: torch.nn.Module, enabled: bool):
        """Context manager for gradient accumulation: run each micro-batch's forward AND
        backward inside it, with enabled=False on all but the last micro-batch, so gradients
        accumulate locally and are reduced once (DDP no_sync / FSDP2
        set_requires_gradient_sync). Note FSDP2 keeps full-size (unsharded) gradients between
        unsynced micro-batches; enabled=True on every micro-batch keeps them sharded at the
        cost of one reduce-scatter each (sums stay exact either way)."""
        from torch.distributed.fsdp import FSDPModule
        from torch.nn.parallel import DistributedDataParallel

        if enabled or self.world == 1:
            return contextlib.nullcontext()
        if isinstance(wrapped, DistributedDataParallel):
            return wrapped.no_sync()
        if isinstance(wrapped, FSDPModule):
            return _fsdp_no_sync(wrapped)
        return contextlib.nullcontext()

    def clip_grad_norm(self, params, max_norm: float, norm_type: float = 2.0) -> float:
        """Scale gradients so their global norm is at most max_norm; returns the norm before.

        DTensor gradients (FSDP2 shards) count once each over all processes (torch's DTensor
        norm all-reduces the shard norms); plain gradients are taken as they are here (after
        DDP they are the same on every process). A mix of both is combined."""
        params = [p for p in params if p.grad is not None]
        sharded = [p.grad for p in params if _is_dtensor(p.grad)]
        plain = [p.grad for p in params if not _is_dtensor(p.grad)]
        norms = []
        for grads in (sharded, plain):
            if grads:
                n = torch.nn.utils.get_total_norm(grads, norm_type)
                norms.append(n.full_tensor() if _is_dtensor(n) else n)
        if not norms:
            return 0.0
        if len(norms) == 1:
            total = norms[0]
        elif math.isinf(norm_type):
            total = torch.maximum(norms[0], norms[1].to(norms[0].device))
        else:
            total = (norms[0] ** norm_type + norms[1].to(norms[0].device) ** norm_type) ** (1.0 / norm_type)
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
        return float(total)

    # ---------------------------------------------------------------- checkpoints
    @staticmethod
    def _options(strict: bool = True):
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        # frozen parameters (a LoRA run's base model) are not saved: they come from the
        # pretrained weights again
        return StateDictOptions(ignore_frozen_params=True, strict=strict)

    def save_sharded(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, directory) -> None:
        """Model (trainable parameters and buffers) + optimizer state as a DCP directory; every
        process writes its own shards (replicated tensors once). Call it on every process.
        `model` is the root module, wrapped or not: keys are the same either way."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optim_state = get_state_dict(model, optimizer, options=self._options())
        dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=str(directory))

    def load_sharded(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, directory) -> None:
        """Load what save_sharded wrote, on any process count (1 without a process group too):
        each process reads the pieces of its own shards. `model` must be built (and wrapped,
        if it will be) the same way as the saved one; the optimizer over its parameters."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        # the current layout is the template (this also creates the optimizer's state tensors);
        # dcp.load fails on any of its keys missing from the checkpoint
        model_state, optim_state = get_state_dict(model, optimizer, options=self._options())
        state = {"model": model_state, "optimizer": optim_state}
        dcp.load(state, checkpoint_id=str(directory))
        # strict=False only because the frozen parameters are absent on purpose
        result = set_state_dict(
            model,
            optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
            options=self._options(strict=False),
        )
        if result.unexpected_keys:
            raise RuntimeError(f"checkpoint {directory}: unexpected keys {result.unexpected_keys[:5]}")

    # ---------------------------------------------------------------- accounting
    @staticmethod
    def local_numel(tensors) -> int:
        """Elements this process actually holds: a DTensor counts its local shard. `tensors` is
        an iterable of tensors, or an optimizer (its state tensors)."""
        if isinstance(tensors, torch.optim.Optimizer):
            tensors = [v for s in tensors.state.values() for v in s.values() if torch.is_tensor(v)]
        return sum((t.to_local() if _is_dtensor(t) else t).numel() for t in tensors)


@contextlib.contextmanager
def _fsdp_no_sync(module):
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)
