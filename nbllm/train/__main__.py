"""Run a fine-tuning config from the command line, on one device or several.

    python -m nbllm.train run.json
    torchrun --nproc_per_node 4 -m nbllm.train run.json        # 4 GPUs (or CPU processes)
    accelerate launch --num_processes 4 -m nbllm.train run.json

run.json holds SFTConfig fields (the same names as %%sft's flags, with underscores) plus
optional "save", "resume" and "save_every". Each process takes its share of every step's
examples and gradients are summed across processes, so the losses match a one-process run
of the same config. Only rank 0 prints progress and writes checkpoints.
"""

from __future__ import annotations

import json
import os
import sys

from .trainer import Callback


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    from ..errors import NbllmError

    try:
        options = json.loads(open(argv[0], encoding="utf-8").read())
    except (OSError, ValueError) as err:
        print(f"error: cannot read config '{argv[0]}': {err}", file=sys.stderr)
        return 2
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        _init_distributed()
    from ..train.run import sft

    rank = int(os.environ.get("RANK", "0"))
    extra = {k: options.pop(k) for k in ("save", "resume", "save_every") if k in options}
    data = options.pop("data", None)
    held = {}
    try:
        result = sft(
            data, progress="text" if rank == 0 else "none", samples=0, callbacks=[_Held(held)], **extra, **options
        )
    except NbllmError as err:
        print(f"error: {err}", file=sys.stderr)
        return _end(world, 1)
    if rank == 0:
        print(repr(result))
        print(json.dumps({"losses": result.history.loss.round(6).tolist(), **held}))
    return _end(world, 0)


class _Held(Callback):
    """What this process holds at the end: its share of the parameters and of the optimizer
    state (under FSDP2 about 1/N of each), and the totals."""

    def __init__(self, out: dict):
        self.out = out

    def on_train_end(self, trainer):
        procs = trainer.processes
        self.out.update(
            local_params=procs.local_numel(trainer.params),
            local_optimizer=procs.local_numel(trainer.optimizer),
            total_params=trainer.trainable,
            processes=trainer.world,
        )


def _end(world: int, code: int) -> int:
    """Under several processes: wait for all, leave the process group, and exit at once (gloo's
    FSDP2 teardown can abort a process after all the work is done, about 1 run in 10)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _init_distributed() -> None:
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


if __name__ == "__main__":
    sys.exit(main())
