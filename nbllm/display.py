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


def with_provenance(render):
    """Wrap a _repr_html_ so the result's provenance (nbllm.provenance) shows as a collapsed
    block inside its box; never in __repr__."""
    if getattr(render, "_shows_provenance", False):
        return render

    def _repr_html_(self) -> str:
        out = render(self)
        prov = getattr(self, "provenance", None)
        if prov is None or "nbllm-provenance" in out:
            return out
        block = prov.html()
        return out[: -len("</div>")] + block + "</div>" if out.endswith("</div>") else out + block

    _repr_html_._shows_provenance = True
    _repr_html_.__doc__, _repr_html_.__qualname__ = render.__doc__, render.__qualname__
    return _repr_html_


class Result:
    """Base for everything a magic returns or binds with --out. `provenance` (an
    nbllm.provenance.Provenance, or None) shows in the HTML view of every subclass."""

    _summary_fields: tuple[str, ...] = ()
    provenance = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_repr_html_" in cls.__dict__:
            cls._repr_html_ = with_provenance(cls.__dict__["_repr_html_"])

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

    _repr_html_ = with_provenance(_repr_html_)


# Token chips: alternating shades show token boundaries; loss tokens in colour, prompt in grey.
_LOSS_COLOURS = ("#c6e6c3", "#a3d39c")
_PROMPT_COLOURS = ("#eeeeee", "#dcdcdc")
_STYLE = "font-family:monospace;white-space:pre-wrap;padding:1px 0;margin:0;border-radius:2px;line-height:1.9"


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
        chips.append(
            f"<span title='{html.escape(title, quote=True)}' style='background:{colour};{_STYLE}'>"
            f"{html.escape(visible(tok))}</span>"
        )
    return "".join(chips)


class TokenizeResult(Result):
    """What %%tokenize shows: tokens, ids, next-token labels and the loss mask."""

    _summary_fields = ("model", "template", "n_tokens", "n_loss_tokens", "truncated")

    def __init__(
        self,
        model: str,
        template: str,
        tokens: list[str],
        input_ids: list[int],
        labels: list[int],
        loss_mask: list[bool],
        truncated: bool = False,
    ):
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
        return pd.DataFrame(
            {
                "position": range(self.n_tokens),
                "token": self.tokens,
                "id": self.input_ids,
                "label": self.labels,
                "predicts": [t if lab != -100 else "" for t, lab in zip(nxt, self.labels)],
                "in_loss": self.loss_mask,
            }
        )

    def _repr_html_(self) -> str:
        head = html.escape(super().__repr__())
        chips = token_chips(self.tokens, self.input_ids, self.loss_mask, self.labels)
        legend = (
            f"<span style='background:{_LOSS_COLOURS[0]};{_STYLE}'>in the loss</span> "
            f"<span style='background:{_PROMPT_COLOURS[0]};{_STYLE}'>prompt (not in the loss)</span>"
        )
        table = self.to_pandas().head(64).to_html(index=False, escape=True)
        more = f"<p>first 64 of {self.n_tokens} rows; .to_pandas() has all</p>" if self.n_tokens > 64 else ""
        return (
            f"<div class='nbllm nbllm-tokenize'><code>{head}</code><p>{legend}</p>"
            f"<div style='margin:6px 0'>{chips}</div>"
            f"<details><summary>ids and labels (inputs shifted by one)</summary>{table}{more}</details></div>"
        )


class InfoResult(Result):
    """%nbllm: the environment at a glance."""

    def __init__(self, versions: dict, device: str, dtype: str, cache: str, smollm2_cached: bool, models: list):
        self.versions, self.device, self.dtype, self.cache = versions, device, dtype, cache
        self.smollm2_cached, self.models = smollm2_cached, models

    def __repr__(self) -> str:
        lines = [
            "nbllm " + self.versions.get("nbllm", "?"),
            "versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items() if k != "nbllm"),
            f"device: {self.device} ({self.dtype})",
            f"cache: {self.cache} (smollm2 {'cached' if self.smollm2_cached else 'not cached yet'})",
            "models:",
        ]
        lines += [
            f"  {m['model']:<11} {m['kind']:<9} {'installed' if m['installed'] else 'NOT INSTALLED':<13} "
            f"{m['description']}"
            for m in self.models
        ]
        return "\n".join(lines)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.models)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>"


def loss_svg(history: list[dict], width: int = 480, height: int = 170) -> str:
    """Train (blue line) and validation (orange dots) loss against step, as inline SVG."""
    pts = [(r["step"], r["loss"]) for r in history if r.get("loss") == r.get("loss")]
    val = [
        (r["step"], r["val_loss"])
        for r in history
        if r.get("val_loss") == r.get("val_loss") and r.get("val_loss") is not None
    ]
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
    dots = "".join(
        f"<circle cx='{xy(s, v).split(',')[0]}' cy='{xy(s, v).split(',')[1]}' r='3' fill='#ff7f0e'/>" for s, v in val
    )
    axis = (
        f"<text x='2' y='{pad_t + 8}' font-size='10'>{y1:.2f}</text>"
        f"<text x='2' y='{height - pad_b}' font-size='10'>{y0:.2f}</text>"
        f"<text x='{pad_l}' y='{height - 6}' font-size='10'>step {x0}</text>"
        f"<text x='{width - 60}' y='{height - 6}' font-size='10'>step {x1}</text>"
        f"<text x='{width - 150}' y='{pad_t + 8}' font-size='10' fill='#1f77b4'>train</text>"
        f"<text x='{width - 110}' y='{pad_t + 8}' font-size='10' fill='#ff7f0e'>validation</text>"
    )
    return (
        f"<svg width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg' class='nbllm-loss'>"
        f"<rect x='{pad_l}' y='{pad_t}' width='{width - pad_l - pad_r}' height='{height - pad_t - pad_b}' "
        f"fill='none' stroke='#ccc'/><polyline points='{line}' fill='none' stroke='#1f77b4' stroke-width='1.5'/>"
        f"{dots}{axis}</svg>"
    )
