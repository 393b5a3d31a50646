"""Result objects: a deterministic __repr__ (rounded numbers, no ids or timings, so nbval can
compare it), an HTML view, and to_pandas(). Retrieved or user text is always escaped."""

from __future__ import annotations

import html
from typing import Any

ROUND = 4


def fmt(value: Any) -> str:
    """Stable text for a value: floats rounded, everything else repr'd."""
    if isinstance(value, float):
        return repr(round(value, ROUND))
    return repr(value)


class Result:
    """Base for everything a magic returns or binds with --out."""

    _summary_fields: tuple[str, ...] = ()

    def summary(self) -> dict:
        return {name: getattr(self, name) for name in self._summary_fields}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={fmt(v)}" for k, v in self.summary().items())
        return f"{type(self).__name__}({inner})"

    def to_pandas(self):
        raise NotImplementedError

    def _repr_html_(self) -> str:
        head = html.escape(repr(self))
        table = self.to_pandas().head(50).to_html(index=False, escape=True, float_format=lambda x: f"{x:.4g}")
        return f"<div class='nbllm'><code>{head}</code>{table}</div>"


# Token chips: alternating shades show token boundaries; loss tokens in colour, prompt in grey.
_LOSS_COLOURS = ("#c6e6c3", "#a3d39c")
_PROMPT_COLOURS = ("#eeeeee", "#dcdcdc")
_STYLE = ("font-family:monospace;white-space:pre-wrap;padding:1px 0;margin:0;border-radius:2px;"
          "line-height:1.9")


def visible(token: str) -> str:
    """Make whitespace visible in a token chip."""
    return token.replace("\n", "\u21b5\n").replace("\t", "\u2192")


def token_chips(tokens: list[str], ids: list[int], in_loss: list[bool], labels: list[int]) -> str:
    chips = []
    for i, (tok, tid, loss) in enumerate(zip(tokens, ids, in_loss)):
        colour = (_LOSS_COLOURS if loss else _PROMPT_COLOURS)[i % 2]
        target = labels[i - 1] if i > 0 else None
        title = f"position {i}, id {tid}, {'target of the loss' if loss else 'not in the loss'}"
        if target is not None and target != -100:
            title += f" (predicted from position {i - 1})"
        chips.append(f"<span title='{html.escape(title, quote=True)}' style='background:{colour};{_STYLE}'>"
                     f"{html.escape(visible(tok))}</span>")
    return "".join(chips)


class TokenizeResult(Result):
    """What %%tokenize shows: tokens, ids, next-token labels and the loss mask."""

    _summary_fields = ("model", "template", "n_tokens", "n_loss_tokens", "truncated")

    def __init__(self, model: str, template: str, tokens: list[str], input_ids: list[int],
                 labels: list[int], loss_mask: list[bool], truncated: bool = False):
        self.model, self.template, self.tokens = model, template, tokens
        self.input_ids, self.labels, self.loss_mask, self.truncated = input_ids, labels, loss_mask, truncated

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_loss_tokens(self) -> int:
        return sum(label != -100 for label in self.labels)

    def __repr__(self) -> str:
        shown = [f"[{t!r}]" if loss else repr(t) for t, loss in zip(self.tokens[:48], self.loss_mask)]
        more = f" ... (+{self.n_tokens - 48} tokens)" if self.n_tokens > 48 else ""
        return f"{super().__repr__()}\n{' '.join(shown)}{more}\n[...] = tokens the loss predicts"

    def to_pandas(self):
        import pandas as pd

        nxt = self.tokens[1:] + [""]
        return pd.DataFrame({
            "position": range(self.n_tokens),
            "token": self.tokens,
            "id": self.input_ids,
            "label": self.labels,
            "predicts": [t if lab != -100 else "" for t, lab in zip(nxt, self.labels)],
            "in_loss": self.loss_mask,
        })

    def _repr_html_(self) -> str:
        head = html.escape(super().__repr__())
        chips = token_chips(self.tokens, self.input_ids, self.loss_mask, self.labels)
        legend = (f"<span style='background:{_LOSS_COLOURS[0]};{_STYLE}'>in the loss</span> "
                  f"<span style='background:{_PROMPT_COLOURS[0]};{_STYLE}'>prompt (not in the loss)</span>")
        table = self.to_pandas().head(64).to_html(index=False, escape=True)
        more = f"<p>first 64 of {self.n_tokens} rows; .to_pandas() has all</p>" if self.n_tokens > 64 else ""
        return (f"<div class='nbllm nbllm-tokenize'><code>{head}</code><p>{legend}</p>"
                f"<div style='margin:6px 0'>{chips}</div>"
                f"<details><summary>ids and labels (inputs shifted by one)</summary>{table}{more}</details></div>")


class InfoResult(Result):
    """%nbllm: the environment at a glance."""

    def __init__(self, versions: dict, device: str, dtype: str, cache: str, smollm2_cached: bool, models: list):
        self.versions, self.device, self.dtype, self.cache = versions, device, dtype, cache
        self.smollm2_cached, self.models = smollm2_cached, models

    def __repr__(self) -> str:
        lines = ["nbllm " + self.versions.get("nbllm", "?"),
                 "versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items() if k != "nbllm"),
                 f"device: {self.device} ({self.dtype})",
                 f"cache: {self.cache} (smollm2 {'cached' if self.smollm2_cached else 'not cached yet'})",
                 "models:"]
        lines += [f"  {m['model']:<11} {m['kind']:<9} {'installed' if m['installed'] else 'NOT INSTALLED':<13} "
                  f"{m['description']}" for m in self.models]
        return "\n".join(lines)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.models)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>"


def loss_svg(history: list[dict], width: int = 480, height: int = 170) -> str:
    """Train (blue line) and validation (orange dots) loss against step, as inline SVG."""
    pts = [(r["step"], r["loss"]) for r in history if r.get("loss") == r.get("loss")]
    val = [(r["step"], r["val_loss"]) for r in history if r.get("val_loss") == r.get("val_loss")
           and r.get("val_loss") is not None]
    if not pts:
        return ""
    pad_l, pad_b, pad_t, pad_r = 44, 22, 10, 10
    steps = [s for s, _ in pts + val]
    losses = [v for _, v in pts + val]
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = min(losses), max(losses)
    y0, y1 = (y0 - 0.05 * (y1 - y0 or 1), y1 + 0.05 * (y1 - y0 or 1))

    def xy(s, v):
        x = pad_l + (s - x0) / (x1 - x0) * (width - pad_l - pad_r)
        y = pad_t + (y1 - v) / (y1 - y0) * (height - pad_t - pad_b)
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(s, v) for s, v in pts)
    dots = "".join(f"<circle cx='{xy(s, v).split(',')[0]}' cy='{xy(s, v).split(',')[1]}' r='3' fill='#ff7f0e'/>"
                   for s, v in val)
    axis = (f"<text x='2' y='{pad_t + 8}' font-size='10'>{y1:.2f}</text>"
            f"<text x='2' y='{height - pad_b}' font-size='10'>{y0:.2f}</text>"
            f"<text x='{pad_l}' y='{height - 6}' font-size='10'>step {x0}</text>"
            f"<text x='{width - 60}' y='{height - 6}' font-size='10'>step {x1}</text>"
            f"<text x='{width - 150}' y='{pad_t + 8}' font-size='10' fill='#1f77b4'>train</text>"
            f"<text x='{width - 110}' y='{pad_t + 8}' font-size='10' fill='#ff7f0e'>validation</text>")
    return (f"<svg width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg' class='nbllm-loss'>"
            f"<rect x='{pad_l}' y='{pad_t}' width='{width - pad_l - pad_r}' height='{height - pad_t - pad_b}' "
            f"fill='none' stroke='#ccc'/><polyline points='{line}' fill='none' stroke='#1f77b4' stroke-width='1.5'/>"
            f"{dots}{axis}</svg>")


class SFTResult(Result):
    """A finished (or stopped) %%sft run: the trained model and what happened."""

    def __init__(self, model, tokenizer, config, history: list[dict], stats: dict, samples: list[dict],
                 template: str):
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self._history, self.stats, self._samples, self.template = history, stats, samples, template

    @property
    def history(self):
        import pandas as pd

        cols = ["step", "epoch", "loss", "val_loss", "tokens", "lr"]
        extra = list(dict.fromkeys(k for row in self._history for k in row if k not in cols))  # DPO's val_* only on eval rows
        return pd.DataFrame(self._history, columns=cols + extra)

    @property
    def samples(self):
        import pandas as pd

        return pd.DataFrame(self._samples, columns=["prompt", "before", "after"])

    def to_pandas(self):
        return self.history

    def generate(self, prompt, **kwargs) -> str:
        """Continue `prompt` with the trained model, under the template it was trained with."""
        from .generation import generate

        return generate(self.model, self.tokenizer, prompt, template=self.template, **kwargs)

    def summary(self) -> dict:
        s = self.stats
        return {"model": self.config.model, "method": self.config.method, "format": self.config.format,
                "steps": s["steps"], "epochs": round(s["epochs"], 2), "trainable": s["trainable"],
                "trainable_pct": round(100 * s["trainable"] / s["total_params"], 3),
                "first_loss": round(s["first_loss"], 3), "final_loss": round(s["final_loss"], 3),
                "val_loss": round(s["val_loss"], 3), "stopped": s["stopped"]}

    def _repr_html_(self) -> str:
        s = self.stats
        head = html.escape(repr(self))
        facts = (f"{s['n_train']} train / {s['n_val']} validation examples, {s['truncated']} truncated, "
                 f"{s['dropped']} without response tokens dropped; {s['tokens']:,} real tokens at "
                 f"{s['tokens_per_s']:,.0f} tokens/s on {s['device']}")
        samples = self.samples.to_html(index=False, escape=True) if self._samples else ""
        return (f"<div class='nbllm nbllm-sft'><code>{head}</code><p>{html.escape(facts)}</p>"
                f"{loss_svg(self._history)}{samples}</div>")


class ModelResult(Result):
    """A loaded model and its tokenizer (what %lora VAR --base MODEL binds)."""

    def __init__(self, model, tokenizer, name: str, template: str = "chat"):
        self.model, self.tokenizer, self.name, self.template = model, tokenizer, name, template

    def summary(self) -> dict:
        from .lora import adapter_names

        return {"model": self.name, "adapters": adapter_names(self.model)}

    def generate(self, prompt, **kwargs) -> str:
        from .generation import generate

        return generate(self.model, self.tokenizer, prompt, template=self.template, **kwargs)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame([self.summary()])


class LoraReport(Result):
    """%lora: the adapters on a model and what each adapted module trains."""

    def __init__(self, model_name: str, action: str, rows: list[dict], adapters: list[str], active: str | None,
                 base_params: int, merged: bool):
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
        return {"model": self.model_name, "action": self.action, "active": self.active, "adapters": self.adapters,
                "modules": len(self.rows), "trainable": self.trainable, "pct_of_model": round(pct, 4),
                "reduction_vs_full_ft": round(self.base_params / self.trainable, 1) if self.trainable else None,
                "merged": self.merged}

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["module", "shape", "r", "alpha", "scaling", "lora_params",
                                                "full_params"])


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
        lines += [f"{r['r']:>4} {r['trainable']:>11,} {r['pct_of_model']:>8.3f} {r['val_loss']:>9.3f}"
                  for r in self.rows]
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
        self.model, self.tokenizer, self.classes = trainer.model, trainer.tokenizer, trainer.classes

    @property
    def history(self):
        import pandas as pd

        return pd.DataFrame(self.run.state.history, columns=["step", "epoch", "loss", "val_loss", "val_acc"])

    @property
    def confusion(self):
        import pandas as pd

        return pd.DataFrame(self.run.confusion, index=[f"true {c}" for c in self.classes],
                            columns=[f"pred {c}" for c in self.classes])

    @property
    def accuracy(self) -> float:
        return self.run.val_accuracy

    @property
    def stats(self) -> dict:
        """Steps, trainable/total parameters, training seconds and examples/s (like SFTResult.stats)."""
        state = self.run.state
        return {"steps": state.step, "epochs": state.step / self.run.steps_per_epoch, "trainable": self.run.trainable,
                "total_params": self.run.total_params, "seconds": state.train_seconds,
                "examples_per_s": state.tokens / state.train_seconds if state.train_seconds else 0.0,
                "n_train": len(self.run.train), "n_val": len(self.run.val), "val_accuracy": self.run.val_accuracy,
                "stopped": state.stopped}

    def to_pandas(self):
        return self.history

    def predict_proba(self, texts):
        import pandas as pd
        import torch

        from .train.classify import encode_texts, predict_logits

        texts = [texts] if isinstance(texts, str) else list(texts)
        probs = torch.softmax(predict_logits(self.model, self.tokenizer, encode_texts(
            self.tokenizer, texts, self.config.max_length)), -1)
        return pd.DataFrame(probs.numpy(), columns=self.classes, index=texts)

    def predict(self, texts) -> list[str]:
        return list(self.predict_proba(texts).idxmax(axis=1))

    def summary(self) -> dict:
        r = self.run
        return {"model": self.config.model, "method": self.config.method, "classes": self.classes,
                "steps": r.state.step, "trainable": r.trainable,
                "trainable_pct": round(100 * r.trainable / r.total_params, 3),
                "val_acc": round(r.val_accuracy, 3), "val_loss": round(r.val_loss, 3), "stopped": r.state.stopped}

    def _repr_html_(self) -> str:
        return (f"<div class='nbllm nbllm-classify'><code>{html.escape(repr(self))}</code>"
                f"{loss_svg(self.run.state.history)}<p>confusion matrix on {len(self.run.val)} validation examples</p>"
                f"{self.confusion.to_html(escape=True)}</div>")
