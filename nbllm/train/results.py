"""What training binds: SFTResult (%%sft), ClassifyResult (--format classify), ModelResult
(%lora --base), LoraReport (%lora), SweepResult (%lora --sweep)."""

from __future__ import annotations

import html

from ..display import Result, loss_svg


class SFTResult(Result):
    """A finished (or stopped) %%sft run: the trained model and what happened."""

    def __init__(self, model, tokenizer, config, history: list[dict], stats: dict, samples: list[dict], template: str):
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self._history, self.stats, self._samples, self.template = history, stats, samples, template

    @property
    def history(self):
        import pandas as pd

        cols = ["step", "epoch", "loss", "val_loss", "tokens", "lr"]
        extra = list(
            dict.fromkeys(k for row in self._history for k in row if k not in cols)
        )  # DPO's val_* only on eval rows
        return pd.DataFrame(self._history, columns=cols + extra)

    @property
    def samples(self):
        import pandas as pd

        return pd.DataFrame(self._samples, columns=["prompt", "before", "after"])

    def to_pandas(self):
        return self.history

    @property
    def lm(self):
        """The trained model as a scoring and generation handle, with the template it was trained with."""
        from ..lm import LM

        return LM(self.model, self.tokenizer, self.config.model, self.template, trained=True)

    def generate(self, prompt, **kwargs) -> str:
        """Continue `prompt` with the trained model, under the template it was trained with."""
        from ..generation import generate

        return generate(self.model, self.tokenizer, prompt, template=self.template, **kwargs)

    def summary(self) -> dict:
        s = self.stats
        return {
            "model": self.config.model,
            "method": self.config.method,
            "format": self.config.format,
            "steps": s["steps"],
            "epochs": round(s["epochs"], 2),
            "trainable": s["trainable"],
            "trainable_pct": round(100 * s["trainable"] / s["total_params"], 3),
            "first_loss": round(s["first_loss"], 3),
            "final_loss": round(s["final_loss"], 3),
            "val_loss": round(s["val_loss"], 3),
            "stopped": s["stopped"],
        }

    def _repr_html_(self) -> str:
        s = self.stats
        head = html.escape(repr(self))
        facts = (
            f"{s['n_train']} train / {s['n_val']} validation examples, {s['truncated']} truncated, "
            f"{s['dropped']} without response tokens dropped; {s['tokens']:,} real tokens at "
            f"{s['tokens_per_s']:,.0f} tokens/s on {s['device']}"
        )
        samples = self.samples.to_html(index=False, escape=True) if self._samples else ""
        return (
            f"<div class='nbllm nbllm-sft'><code>{head}</code><p>{html.escape(facts)}</p>"
            f"{loss_svg(self._history)}{samples}</div>"
        )


class ModelResult(Result):
    """A loaded model and its tokenizer (what %lora VAR --base MODEL binds)."""

    def __init__(self, model, tokenizer, name: str, template: str = "chat"):
        self.model, self.tokenizer, self.name, self.template = model, tokenizer, name, template

    def summary(self) -> dict:
        from .adapters import adapter_names

        return {"model": self.name, "adapters": adapter_names(self.model)}

    @property
    def lm(self):
        from ..lm import LM

        return LM(self.model, self.tokenizer, self.name, self.template)

    def generate(self, prompt, **kwargs) -> str:
        from ..generation import generate

        return generate(self.model, self.tokenizer, prompt, template=self.template, **kwargs)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame([self.summary()])


class LoraReport(Result):
    """%lora: the adapters on a model and what each adapted module trains."""

    def __init__(
        self,
        model_name: str,
        action: str,
        rows: list[dict],
        adapters: list[str],
        active: str | None,
        base_params: int,
        merged: bool,
    ):
        self.model_name, self.action, self.rows, self.adapters = model_name, action, rows, adapters
        self.active, self.base_params, self.merged = active, base_params, merged

    @property
    def trainable(self) -> int:
        return sum(r["lora_params"] for r in self.rows)

    @property
    def full_params(self) -> int:
        return sum(r["full_params"] for r in self.rows)

    def summary(self) -> dict:
        pct = 100 * self.trainable / self.base_params if self.base_params else 0.0
        return {
            "model": self.model_name,
            "action": self.action,
            "active": self.active,
            "adapters": self.adapters,
            "modules": len(self.rows),
            "trainable": self.trainable,
            "pct_of_model": round(pct, 4),
            "reduction_vs_full_ft": round(self.base_params / self.trainable, 1) if self.trainable else None,
            "merged": self.merged,
        }

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(
            self.rows, columns=["module", "shape", "r", "alpha", "scaling", "lora_params", "full_params"]
        )


class SweepResult(Result):
    """%lora --sweep: the same short run per rank: trainable parameters against eval loss."""

    _summary_fields = ("model", "ranks")

    def __init__(self, model: str, rows: list[dict]):
        self.model, self.rows = model, rows
        self.ranks = [r["r"] for r in rows]

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["r", "trainable", "pct_of_model", "final_loss", "val_loss"])

    def __repr__(self) -> str:
        lines = [f"SweepResult(model={self.model!r})", f"{'r':>4} {'trainable':>11} {'% model':>8} {'val_loss':>9}"]
        lines += [
            f"{r['r']:>4} {r['trainable']:>11,} {r['pct_of_model']:>8.3f} {r['val_loss']:>9.3f}" for r in self.rows
        ]
        return "\n".join(lines)

    def plot(self):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot([r["trainable"] for r in self.rows], [r["val_loss"] for r in self.rows], "o-")
        for r in self.rows:
            ax.annotate(f"r={r['r']}", (r["trainable"], r["val_loss"]), textcoords="offset points", xytext=(4, 4))
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel("validation loss")
        ax.set_title(f"LoRA rank sweep on {self.model}")
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        import base64
        import io

        buf = io.BytesIO()
        fig = self.plot()
        fig.savefig(buf, format="png", dpi=90)
        import matplotlib.pyplot as plt

        plt.close(fig)
        img = base64.b64encode(buf.getvalue()).decode()
        table = self.to_pandas().to_html(index=False, float_format=lambda x: f"{x:.4g}")
        return f"<div class='nbllm'>{table}<img src='data:image/png;base64,{img}'/></div>"


class ClassifyResult(Result):
    """%%sft --format classify: a classifier (new head on a language model) and its scores."""

    def __init__(self, trainer, config):
        self.run, self.config = trainer, config
        self.objective = trainer.objective
        self.model, self.tokenizer, self.classes = trainer.model, trainer.tokenizer, trainer.data.classes

    @property
    def history(self):
        import pandas as pd

        return pd.DataFrame(self.run.state.history, columns=["step", "epoch", "loss", "val_loss", "val_acc"])

    @property
    def confusion(self):
        import pandas as pd

        return pd.DataFrame(
            self.objective.confusion,
            index=[f"true {c}" for c in self.classes],
            columns=[f"pred {c}" for c in self.classes],
        )

    @property
    def accuracy(self) -> float:
        return self.objective.val_accuracy

    @property
    def val_loss(self) -> float:
        return self.objective.val_loss

    @property
    def val(self) -> list:
        """The validation examples as (token ids, class index) pairs."""
        return self.run.data.val

    @property
    def stats(self) -> dict:
        """Steps, trainable/total parameters, training seconds and examples/s (like SFTResult.stats)."""
        run, state = self.run, self.run.state
        return {
            "steps": state.step,
            "epochs": state.step / run.steps_per_epoch,
            "trainable": run.trainable,
            "total_params": run.total_params,
            "seconds": state.train_seconds,
            "examples_per_s": state.tokens / state.train_seconds if state.train_seconds else 0.0,
            "n_train": len(run.data.train),
            "n_val": len(run.data.val),
            "val_accuracy": self.accuracy,
            "stopped": state.stopped,
        }

    def to_pandas(self):
        return self.history

    def predict_proba(self, texts):
        import pandas as pd
        import torch

        from .classify import encode_texts, predict_logits

        texts = [texts] if isinstance(texts, str) else list(texts)
        probs = torch.softmax(
            predict_logits(self.model, self.tokenizer, encode_texts(self.tokenizer, texts, self.config.max_length)), -1
        )
        return pd.DataFrame(probs.numpy(), columns=self.classes, index=texts)

    def predict(self, texts) -> list[str]:
        return list(self.predict_proba(texts).idxmax(axis=1))

    def summary(self) -> dict:
        r = self.run
        return {
            "model": self.config.model,
            "method": self.config.method,
            "classes": self.classes,
            "steps": r.state.step,
            "trainable": r.trainable,
            "trainable_pct": round(100 * r.trainable / r.total_params, 3),
            "val_acc": round(self.accuracy, 3),
            "val_loss": round(self.objective.val_loss, 3),
            "stopped": r.state.stopped,
        }

    def _repr_html_(self) -> str:
        return (
            f"<div class='nbllm nbllm-classify'><code>{html.escape(repr(self))}</code>"
            f"{loss_svg(self.run.state.history)}<p>confusion matrix on {len(self.run.data.val)} validation "
            f"examples</p>{self.confusion.to_html(escape=True)}</div>"
        )
