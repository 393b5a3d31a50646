"""The live training monitor: loss curve, tokens/s, ETA, progress bar and a Stop button.

In a Jupyter kernel it is an ipywidgets box; a Stop click is seen during the blocking
training loop through jupyter-ui-poll. Elsewhere (a console, a script) it prints a line
every tenth of the run."""

from __future__ import annotations

import time

from ..display import loss_svg


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


class TextMonitor:
    """Progress as text: about ten lines per run, then the caller prints the result."""

    def __init__(self, total_steps: int, title: str, every: int | None = None, unit: str = "tokens"):
        self.total, self.every = total_steps, every or max(1, total_steps // 10)
        self.started = time.perf_counter()
        print(title)

    def update(self, row: dict, trainer) -> None:
        step = row["step"]
        if step % self.every and step != self.total:
            return
        val = f" | val_loss {row['val_loss']:.3f}" if row["val_loss"] == row["val_loss"] else ""
        if row.get("val_acc", float("nan")) == row.get("val_acc"):
            val += f" | val_acc {row['val_acc']:.3f}"
        print(f"step {step}/{self.total} | epoch {row['epoch']:.2f} | loss {row['loss']:.3f}{val}", flush=True)

    def should_stop(self) -> bool:
        return False

    def close(self, state) -> None:
        if state.stopped:
            print(f"stopped after step {state.step} ({state.stopped}); the model keeps that step")


class WidgetMonitor:
    def __init__(self, total_steps: int, title: str, unit: str = "tokens"):
        import ipywidgets as w
        from IPython.display import display

        self.total, self.stop_requested, self.unit = total_steps, False, unit
        self.header = w.HTML(f"<b>{title}</b>")
        self.bar = w.IntProgress(value=0, min=0, max=total_steps, description="0/" + str(total_steps))
        self.stats = w.HTML("")
        self.plot = w.HTML("")
        self.button = w.Button(description="Stop", button_style="warning", icon="stop",
                               tooltip="finish the current step, keep the model, end the run")
        self.button.on_click(self._stop)
        self.box = w.VBox([self.header, w.HBox([self.bar, self.button]), self.stats, self.plot])
        # stable CSS hooks for the browser test and for styling
        for part, name in ((self.box, "monitor"), (self.bar, "progress"), (self.stats, "stats"),
                           (self.plot, "plot"), (self.button, "stop")):
            part.add_class(f"nbllm-train-{name}")
        self.rows: list[dict] = []
        self.last_draw = 0.0
        self._poll = None
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

    def update(self, row: dict, trainer) -> None:
        self.rows.append(row)
        step, state = row["step"], trainer.state
        self.bar.value, self.bar.description = step, f"{step}/{self.total}"
        per_step = state.train_seconds / max(1, len(self.rows))
        tps = state.tokens / max(state.train_seconds, 1e-9) if state.train_seconds else 0.0
        val = f" &nbsp; val_loss <b>{row['val_loss']:.3f}</b>" if row["val_loss"] == row["val_loss"] else ""
        if row.get("val_acc", float("nan")) == row.get("val_acc"):
            val += f" &nbsp; val_acc <b>{row['val_acc']:.3f}</b>"
        self.stats.value = (f"epoch {row['epoch']:.2f} &nbsp; loss <b>{row['loss']:.3f}</b>{val} &nbsp; "
                            f"{tps:,.0f} {self.unit}/s &nbsp; ETA {_eta(per_step, self.total - step)}")
        now = time.perf_counter()
        if now - self.last_draw > 0.5 or step == self.total:
            self.plot.value = loss_svg(self.rows)
            self.last_draw = now

    def should_stop(self) -> bool:
        if self._poll is not None:
            self._poll(20)  # handle pending clicks (the Stop button) while the cell runs
        return self.stop_requested

    def close(self, state) -> None:
        self.plot.value = loss_svg(self.rows)
        self.button.disabled = True
        self.button.description = "Stopped" if state.stopped else "Done"
        if self._events is not None:
            self._events.__exit__(None, None, None)


def make_monitor(total_steps: int, title: str, mode: str = "auto", unit: str = "tokens"):
    """mode: auto (widget in a kernel, else text), widget, text, or none."""
    if mode == "none":
        return None
    if mode == "widget" or (mode == "auto" and in_kernel()):
        return WidgetMonitor(total_steps, title, unit=unit)
    return TextMonitor(total_steps, title, unit=unit)
