"""The live training monitor: loss curve, tokens/s, ETA, progress bar and a Stop button.

In a Jupyter kernel it is an ipywidgets box; a Stop click is seen during the blocking
training loop through jupyter-ui-poll. Elsewhere (a console, a script) it prints a line
every tenth of the run (train/callbacks.TextProgress)."""

from __future__ import annotations

import os
import time

from ..display import loss_svg
from ..train.callbacks import TextProgress
from ..train.trainer import Callback


def in_kernel() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and getattr(shell, "kernel", None) is not None
    except ImportError:  # pragma: no cover
        return False


def _eta(seconds_per_step: float, steps_left: int) -> str:
    secs = int(seconds_per_step * steps_left)
    return f"{secs // 60}m{secs % 60:02d}s"


class WidgetMonitor(Callback):
    """Loss curve, tokens/s, ETA, progress bar and a Stop button, as a training callback."""

    def __init__(self, title: str):
        import ipywidgets as w

        self.stop_requested, self.title = False, title
        self.header = w.HTML(f"<b>{title}</b>")
        self.bar = w.IntProgress(value=0, min=0, max=1, description="")
        self.stats = w.HTML("")
        self.plot = w.HTML("")
        self.button = w.Button(
            description="Stop",
            button_style="warning",
            icon="stop",
            tooltip="finish the current step, keep the model, end the run",
        )
        self.button.on_click(self._stop)
        self.box = w.VBox([self.header, w.HBox([self.bar, self.button]), self.stats, self.plot])
        # stable CSS hooks for the browser test and for styling
        for part, name in (
            (self.box, "monitor"),
            (self.bar, "progress"),
            (self.stats, "stats"),
            (self.plot, "plot"),
            (self.button, "stop"),
        ):
            part.add_class(f"nbllm-train-{name}")
        self.rows: list[dict] = []
        self.last_draw = 0.0
        self._poll = self._events = None

    def on_train_begin(self, trainer) -> None:
        from IPython.display import display

        self.total, self.unit = trainer.total_steps, trainer.objective.unit
        self.bar.max, self.bar.description = self.total, f"0/{self.total}"
        try:
            from jupyter_ui_poll import ui_events

            self._events = ui_events()
            self._poll = self._events.__enter__()
        except Exception:  # noqa: BLE001 - no kernel to poll: the button just won't be seen mid-run
            self._events = None
        display(self.box)

    def _stop(self, _button) -> None:
        self.stop_requested = True
        self.button.description, self.button.disabled = "Stopping...", True

    def on_step_end(self, trainer, row: dict) -> None:
        self.rows.append(row)
        step, state = row["step"], trainer.state
        self.bar.value, self.bar.description = step, f"{step}/{self.total}"
        per_step = state.train_seconds / max(1, len(self.rows))
        tps = state.tokens / max(state.train_seconds, 1e-9) if state.train_seconds else 0.0
        val = f" &nbsp; val_loss <b>{row['val_loss']:.3f}</b>" if row["val_loss"] == row["val_loss"] else ""
        if row.get("val_acc", float("nan")) == row.get("val_acc"):
            val += f" &nbsp; val_acc <b>{row['val_acc']:.3f}</b>"
        self.stats.value = (
            f"epoch {row['epoch']:.2f} &nbsp; loss <b>{row['loss']:.3f}</b>{val} &nbsp; "
            f"{tps:,.0f} {self.unit}/s &nbsp; ETA {_eta(per_step, self.total - step)}"
        )
        now = time.perf_counter()
        if now - self.last_draw > 0.5 or step == self.total:
            self.plot.value = loss_svg(self.rows)
            self.last_draw = now

    def should_stop(self, trainer) -> bool:
        if self._poll is not None:
            self._poll(20)  # handle pending clicks (the Stop button) while the cell runs
        return self.stop_requested

    def on_train_end(self, trainer) -> None:
        state = trainer.state
        self.plot.value = loss_svg(self.rows)
        self.button.disabled = True
        self.button.description = "Stopped" if state.stopped else "Done"
        if self._events is not None:
            self._events.__exit__(None, None, None)


def progress_for(mode="auto"):
    """What train.run.sft takes as progress: "none", or a factory title -> Callback (the
    widget in a kernel, text elsewhere); mode auto reads NBLLM_PROGRESS first."""
    if not isinstance(mode, str) or mode is None:
        return mode or "none"
    if mode == "auto":
        mode = os.environ.get("NBLLM_PROGRESS", "auto")
    return "none" if mode == "none" else (lambda title: make_monitor(title, mode))


def make_monitor(title: str, mode: str = "auto"):
    """The progress callback for mode: auto (the widget in a kernel, else text), widget, text, or none."""
    if mode == "none":
        return None
    if mode == "widget" or (mode == "auto" and in_kernel()):
        return WidgetMonitor(title)
    return TextProgress(title)
