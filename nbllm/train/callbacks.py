"""What runs around the training loop: progress, stop_when, checkpoints every N steps.

The live widget (widgets/training.py) is a Callback too; the magic layer picks it in a
notebook, as transformers picks its notebook progress callback.
"""

from __future__ import annotations

import time

from .trainer import Callback


class TextProgress(Callback):
    """Progress as text: the title, then about ten lines per run."""

    def __init__(self, title: str, every: int | None = None):
        self.title, self.every = title, every

    def on_train_begin(self, trainer) -> None:
        self.total = trainer.total_steps
        self.every = self.every or max(1, self.total // 10)
        self.started = time.perf_counter()
        print(self.title)

    def on_step_end(self, trainer, row: dict) -> None:
        step = row["step"]
        if step % self.every and step != self.total:
            return
        val = f" | val_loss {row['val_loss']:.3f}" if row["val_loss"] == row["val_loss"] else ""
        if row.get("val_acc", float("nan")) == row.get("val_acc"):
            val += f" | val_acc {row['val_acc']:.3f}"
        print(f"step {step}/{self.total} | epoch {row['epoch']:.2f} | loss {row['loss']:.3f}{val}", flush=True)

    def on_train_end(self, trainer) -> None:
        state = trainer.state
        if state.stopped:
            print(f"stopped after step {state.step} ({state.stopped}); the model keeps that step")


class StopWhen(Callback):
    """stop_when(row) -> True ends the run after that step, like the Stop button."""

    def __init__(self, predicate):
        self.predicate = predicate

    def on_step_end(self, trainer, row: dict) -> None:
        if not trainer.state.stopped and self.predicate(row):
            trainer.state.stopped = "stop_when"


class SaveEvery(Callback):
    """A resumable checkpoint in `directory` every `every` steps (rank 0 writes)."""

    def __init__(self, directory, every: int):
        self.directory, self.every = directory, every

    def on_step_end(self, trainer, row: dict) -> None:
        from .checkpoint import save_checkpoint

        if trainer.state.step % self.every == 0:
            save_checkpoint(trainer, self.directory)


def title(config, trainer) -> str:
    pct = 100 * trainer.trainable / trainer.total_params
    what = (
        f"%%sft --format classify {config.model} ({config.method}, {trainer.trainable:,} trainable = "
        f"{pct:.2f}%) on {len(trainer.data.train)} examples, classes {', '.join(trainer.data.classes)}"
        if config.format == "classify"
        else f"%%sft {config.model} ({config.method}, {trainer.trainable:,} trainable = {pct:.2f}%) on "
        f"{len(trainer.data.train)} examples"
    )
    return f"{what}: {trainer.total_steps} steps on {trainer.device}"
