"""Result objects for %eval: deterministic __repr__, escaped HTML, to_pandas(), leaderboard rows."""

from __future__ import annotations

import html
import math

from ..display import Result

_CSS = (
    "<style>.nbllm-eval td,.nbllm-eval th{padding:2px 6px}.nbllm-unsupported{background:#ffd6d6;"
    "text-decoration:underline wavy #c00}.nbllm-supported{background:#dff3dc}</style>"
)


def _r(x, digits: int = 4):
    return None if x is None else (float("nan") if x != x else round(float(x), digits))


def _table(frame, rows: int = 50) -> str:
    return frame.head(rows).to_html(index=False, escape=True, float_format=lambda x: f"{x:.4g}")


def _figure_html(fig) -> str:
    import base64
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'/>"


def _box(kind: str, head: str, *parts: str) -> str:
    return f"<div class='nbllm nbllm-eval nbllm-{kind}'>{_CSS}<code>{html.escape(head)}</code>{''.join(parts)}</div>"


def _row(model, task, metric, value, n, low=float("nan"), high=float("nan")) -> dict:
    return {
        "model": str(model),
        "task": str(task),
        "metric": metric,
        "value": float(value),
        "n": int(n),
        "ci_low": float(low),
        "ci_high": float(high),
    }


class EvalResult(Result):
    """Base: every eval result can put rows on the leaderboard."""

    def leaderboard_rows(self) -> list[dict]:
        return []


# ---------------------------------------------------------------- multiple choice


class MCResult(EvalResult):
    """%eval mc: acc and acc_norm, with one details row per question and choice."""

    def __init__(self, model: str, data: str, rows: list[dict], records: list[dict], shots: int, template: str):
        self.model, self.data, self._rows, self.records = model, data, rows, records
        self.shots, self.template = shots, template

    @property
    def details(self):
        """One row per (question, choice): summed loglik, length, chosen (argmax loglik),
        chosen_norm (argmax loglik / length), correct (the gold choice)."""
        import pandas as pd

        frame = pd.DataFrame(
            self._rows,
            columns=["question_id", "choice", "text", "loglik", "n_tokens", "length", "loglik_norm", "correct"],
        )
        best = frame.groupby("question_id", sort=False)["loglik"].transform("max")
        best_norm = frame.groupby("question_id", sort=False)["loglik_norm"].transform("max")
        frame.insert(7, "chosen", frame.loglik == best)
        frame.insert(8, "chosen_norm", frame.loglik_norm == best_norm)
        return frame

    def _picks(self):
        frame = self.details
        by = frame.groupby("question_id", sort=False)
        pick = by.apply(lambda g: int(g.loglik.values.argmax()), include_groups=False)
        pick_norm = by.apply(lambda g: int(g.loglik_norm.values.argmax()), include_groups=False)
        gold = by.apply(lambda g: int(g.correct.values.argmax()), include_groups=False)
        return pick, pick_norm, gold

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def score(self) -> dict:
        pick, pick_norm, gold = self._picks()
        return {"acc": float((pick == gold).mean()), "acc_norm": float((pick_norm == gold).mean())}

    def ci(self, metric: str = "acc") -> tuple[float, float]:
        from .common import wilson

        return wilson(self.score[metric] * self.n, self.n)

    def explain(self):
        """The questions where acc and acc_norm pick different choices, and which one was right."""
        import pandas as pd

        pick, pick_norm, gold = self._picks()
        questions = {r["id"]: r for r in self.records}
        rows = []
        for qid in pick.index[pick != pick_norm]:
            rec = questions[qid]
            rows.append(
                {
                    "question_id": qid,
                    "question": rec["question"],
                    "by_loglik": rec["choices"][pick[qid]],
                    "by_loglik_norm": rec["choices"][pick_norm[qid]],
                    "gold": rec["choices"][gold[qid]],
                    "right": "acc"
                    if pick[qid] == gold[qid]
                    else ("acc_norm" if pick_norm[qid] == gold[qid] else "neither"),
                }
            )
        return pd.DataFrame(rows, columns=["question_id", "question", "by_loglik", "by_loglik_norm", "gold", "right"])

    def summary(self) -> dict:
        s = self.score
        return {
            "model": self.model,
            "data": self.data,
            "n": self.n,
            "shots": self.shots,
            "acc": _r(s["acc"]),
            "acc_norm": _r(s["acc_norm"]),
            "disagree": len(self.explain()),
        }

    def to_pandas(self):
        return self.details

    def leaderboard_rows(self) -> list[dict]:
        task = f"{self.data} ({self.shots}-shot)"
        return [_row(self.model, task, m, v, self.n, *self.ci(m)) for m, v in self.score.items()]

    def _repr_html_(self) -> str:
        low, high = self.ci("acc")
        facts = (
            f"<p>acc {self.score['acc']:.3f} (95% CI {low:.3f}-{high:.3f}) picks the highest summed "
            f"log-likelihood; acc_norm {self.score['acc_norm']:.3f} divides it by the scored text's length in "
            "characters first (for partially scored sets like WinoGrande every choice scores the same "
            "continuation, so acc_norm = acc).</p>"
        )
        explain = self.explain()
        why = (
            (
                f"<details open><summary>{len(explain)} questions where acc and acc_norm disagree</summary>"
                f"{_table(explain)}</details>"
            )
            if len(explain)
            else "<p>acc and acc_norm agree on every question.</p>"
        )
        return _box(
            "mc",
            repr(self),
            facts,
            why,
            f"<details><summary>per-choice log-likelihoods</summary>{_table(self.details, 80)}</details>",
        )


# ---------------------------------------------------------------- generative


class GenResult(EvalResult):
    """%eval gen: generated answers scored against references (em, f1, rougeL or number)."""

    def __init__(self, model: str, data: str, metric: str, rows: list[dict]):
        self.model, self.data, self.metric, self.rows = model, data, metric, rows

    @property
    def score(self) -> float:
        return sum(r["score"] for r in self.rows) / len(self.rows)

    def ci(self) -> tuple[float, float]:
        from .common import mean_ci

        return mean_ci([r["score"] for r in self.rows])[1:]

    def summary(self) -> dict:
        low, high = self.ci()
        return {
            "model": self.model,
            "data": self.data,
            "metric": self.metric,
            "n": len(self.rows),
            "score": _r(self.score),
            "ci": [_r(low), _r(high)],
        }

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["id", "prompt", "output", "reference", "extracted", "score"])

    def leaderboard_rows(self) -> list[dict]:
        return [_row(self.model, self.data, self.metric, self.score, len(self.rows), *self.ci())]

    def _repr_html_(self) -> str:
        return _box("gen", repr(self), _table(self.to_pandas()))


# ---------------------------------------------------------------- perplexity


class PerplexityResult(EvalResult):
    """%eval ppl: exp(mean negative log-likelihood per token) with a sliding window."""

    def __init__(self, model: str, data: str, docs: list[dict], window: int, stride: int):
        self.model, self.data, self.docs, self.window, self.stride = model, data, docs, window, stride

    @property
    def n_tokens(self) -> int:
        return sum(d["tokens_scored"] for d in self.docs)

    @property
    def nll(self) -> float:
        return sum(d["nll_sum"] for d in self.docs) / self.n_tokens

    @property
    def ppl(self) -> float:
        return math.exp(self.nll)

    def summary(self) -> dict:
        return {
            "model": self.model,
            "data": self.data,
            "ppl": _r(self.ppl, 3),
            "nll": _r(self.nll),
            "tokens": self.n_tokens,
            "window": self.window,
            "stride": self.stride,
            "windows": sum(d["windows"] for d in self.docs),
        }

    def to_pandas(self):
        import pandas as pd

        frame = pd.DataFrame(self.docs, columns=["doc", "tokens", "tokens_scored", "windows", "nll_sum"])
        frame["ppl"] = [
            math.exp(d["nll_sum"] / d["tokens_scored"]) if d["tokens_scored"] else float("nan") for d in self.docs
        ]
        return frame

    def leaderboard_rows(self) -> list[dict]:
        return [_row(self.model, self.data, "perplexity", self.ppl, self.n_tokens)]

    def _repr_html_(self) -> str:
        return _box("ppl", repr(self), _table(self.to_pandas()))


# ---------------------------------------------------------------- judge


class JudgeResult(EvalResult):
    """%eval judge: 0-100 scores from a judge model, cached on disk; unparsable replies counted."""

    def __init__(self, judge: str, data: str, rows: list[dict]):
        self.judge, self.data, self.rows = judge, data, rows

    @property
    def scores(self) -> list[float]:
        return [r["score"] for r in self.rows if r["score"] is not None]

    @property
    def n_unparsable(self) -> int:
        return sum(r["score"] is None for r in self.rows)

    @property
    def n_cached(self) -> int:
        return sum(bool(r["cached"]) for r in self.rows)

    @property
    def mean(self) -> float:
        from .common import mean_ci

        return mean_ci(self.scores)[0]

    def ci(self, scores=None) -> tuple[float, float]:
        from .common import mean_ci

        return mean_ci(self.scores if scores is None else scores)[1:]

    def by_model(self):
        """Mean score, 95% interval and unparsable count per judged model."""
        import pandas as pd

        from .common import mean_ci

        out = []
        for model in dict.fromkeys(r["model"] for r in self.rows):
            rows = [r for r in self.rows if r["model"] == model]
            scores = [r["score"] for r in rows if r["score"] is not None]
            mean, low, high = mean_ci(scores)
            out.append(
                {
                    "model": model,
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "n": len(scores),
                    "unparsable": len(rows) - len(scores),
                }
            )
        return pd.DataFrame(out, columns=["model", "mean", "ci_low", "ci_high", "n", "unparsable"])

    def summary(self) -> dict:
        low, high = self.ci()
        return {
            "judge": self.judge,
            "data": self.data,
            "n": len(self.rows),
            "mean": _r(self.mean, 2),
            "ci": [_r(low, 2), _r(high, 2)],
            "unparsable": self.n_unparsable,
        }

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(
            self.rows, columns=["id", "model", "prompt", "response", "reference", "reply", "score", "cached"]
        )

    def leaderboard_rows(self) -> list[dict]:
        return [
            _row(r["model"], self.data, f"judge:{self.judge}", r["mean"], r["n"], r["ci_low"], r["ci_high"])
            for r in self.by_model().to_dict("records")
            if r["n"]
        ]

    def _repr_html_(self) -> str:
        warn = (
            (
                f"<p style='color:#b00'>{self.n_unparsable} replies had no score 0-100 and are left out of the "
                "mean (see the reply column)</p>"
            )
            if self.n_unparsable
            else ""
        )
        return _box("judge", repr(self), warn, _table(self.by_model()), _table(self.to_pandas()))


# ---------------------------------------------------------------- RAG triad

TRIAD = ("context_relevance", "groundedness", "answer_relevance")
TRIAD_COSTS = ("latency_s", "context_tokens")  # what each RAG result cost: seconds, tokens of context


class TriadResult(EvalResult):
    """%eval triad: context relevance, groundedness, answer relevance per RAG result, and a
    leaderboard of RAG configurations. Each row also carries the result's latency_s (its total
    latency in seconds) and context_tokens, None without them (NaN in to_pandas); the leaderboard
    averages both."""

    def __init__(self, scorer: str, rows: list[dict]):
        self.scorer, self.rows = scorer, rows

    @property
    def scores(self) -> dict:
        return {m: sum(r[m] for r in self.rows) / len(self.rows) for m in TRIAD}

    def summary(self) -> dict:
        return {
            "scorer": self.scorer,
            "n": len(self.rows),
            **{m: _r(v, 3) for m, v in self.scores.items()},
            "unsupported_sentences": sum(len(r["unsupported"]) for r in self.rows),
        }

    def to_pandas(self):
        import pandas as pd

        def cost(row, key):  # rows from before latencies have neither key
            value = row.get(key)
            return float("nan") if value is None else float(value)

        return pd.DataFrame(
            [
                {
                    **{k: r[k] for k in ("config", "question", "answer", *TRIAD)},
                    **{k: cost(r, k) for k in TRIAD_COSTS},
                }
                for r in self.rows
            ],
            columns=["config", "question", "answer", *TRIAD, *TRIAD_COSTS],
        )

    def leaderboard(self):
        """Mean triad scores, latency (seconds) and context tokens per RAG configuration, best
        groundedness first (NaN latency / context tokens: results without them)."""
        frame = self.to_pandas()
        board = frame.groupby("config", sort=False)[[*TRIAD, *TRIAD_COSTS]].mean().reset_index()
        board.insert(1, "n", frame.groupby("config", sort=False).size().values)
        return board.sort_values(["groundedness", "answer_relevance"], ascending=False, kind="stable").reset_index(
            drop=True
        )

    def leaderboard_rows(self) -> list[dict]:
        return [
            _row(f"rag {r['config']}", "rag triad", m, r[m], r["n"])
            for r in self.leaderboard().to_dict("records")
            for m in TRIAD
        ]

    def __repr__(self) -> str:
        """The summary, then each unsupported sentence with the reason (at most 10)."""
        lines = [super().__repr__()]
        flagged = [
            (r["config"], s, why) for r in self.rows for (s, ok), why in zip(r["sentences"], r["reasons"]) if not ok
        ]
        lines += [f"  unsupported ({config}): {s[:80]!r} - {why}" for config, s, why in flagged[:10]]
        lines += [f"  ... and {len(flagged) - 10} more"] if len(flagged) > 10 else []
        return "\n".join(lines)

    def _answer_html(self, row) -> str:
        parts = []
        for (sentence, ok), why in zip(row["sentences"], row["reasons"]):
            cls = "nbllm-supported" if ok else "nbllm-unsupported"
            tip = html.escape(("supported by the contexts: " if ok else "not supported: ") + why, quote=True)
            note = "" if ok else f" <small>({html.escape(why)})</small>"
            parts.append(f"<span class='{cls}' title='{tip}'>{html.escape(sentence)}</span>{note}")
        return " ".join(parts)

    def _repr_html_(self) -> str:
        items = "".join(
            f"<li><b>{html.escape(r['question'])}</b> <small>({html.escape(r['config'])}; context "
            f"{r['context_relevance']:.2f}, grounded {r['groundedness']:.2f}, answer {r['answer_relevance']:.2f})"
            f"</small><br>{self._answer_html(r)}</li>"
            for r in self.rows[:30]
        )
        legend = (
            "<p><span class='nbllm-unsupported'>unsupported sentence</span> "
            "<span class='nbllm-supported'>supported sentence</span></p>"
        )
        board = self.leaderboard()
        board = board.drop(columns=[c for c in TRIAD_COSTS if board[c].isna().all()])  # results without them
        return _box("triad", repr(self), _table(board), legend, f"<ol>{items}</ol>")


# ---------------------------------------------------------------- arena


class ArenaResult(EvalResult):
    """%eval arena: Elo (online) and Bradley-Terry (MLE) ratings with bootstrap 95% intervals."""

    def __init__(self, table: list[dict], n_votes: int, rounds: int, outcomes: dict):
        self.table, self.n_votes, self.rounds, self.outcomes = table, n_votes, rounds, outcomes

    @property
    def ratings(self) -> dict:
        return {r["model"]: r["bt"] for r in self.table}

    def summary(self) -> dict:
        return {"votes": self.n_votes, "models": len(self.table), "bootstrap": self.rounds, **self.outcomes}

    def __repr__(self) -> str:
        lines = [super().__repr__(), f"{'model':<16} {'elo':>7} {'95% CI':>15} {'bt':>7} {'95% CI':>15} {'games':>6}"]
        for r in self.table:
            lines.append(
                f"{r['model'][:16]:<16} {r['elo']:>7.1f} {r['elo_low']:>7.1f}-{r['elo_high']:<7.1f} "
                f"{r['bt']:>7.1f} {r['bt_low']:>7.1f}-{r['bt_high']:<7.1f} {r['games']:>6}"
            )
        return "\n".join(lines)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(
            self.table, columns=["model", "elo", "elo_low", "elo_high", "bt", "bt_low", "bt_high", "games", "win_rate"]
        )

    def plot(self):
        import matplotlib.pyplot as plt

        frame = self.to_pandas()
        fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(frame)))
        y = range(len(frame))
        for shift, (col, label, colour) in zip(
            (-0.15, 0.15), (("elo", "Elo (online)", "#1f77b4"), ("bt", "Bradley-Terry (MLE)", "#ff7f0e"))
        ):
            ax.errorbar(
                frame[col],
                [v + shift for v in y],
                xerr=[frame[col] - frame[f"{col}_low"], frame[f"{col}_high"] - frame[col]],
                fmt="o",
                capsize=3,
                label=label,
                color=colour,
            )
        ax.set_yticks(list(y), frame.model)
        ax.invert_yaxis()
        ax.set_xlabel("rating (95% bootstrap interval)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def leaderboard_rows(self) -> list[dict]:
        return [
            _row(r["model"], "arena", m, r[m], r["games"], r[f"{m}_low"], r[f"{m}_high"])
            for r in self.table
            for m in ("elo", "bt")
        ]

    def _repr_html_(self) -> str:
        return _box(
            "arena",
            f"ArenaResult({self.n_votes} votes, {len(self.table)} models)",
            _table(self.to_pandas()),
            _figure_html(self.plot()),
        )


# ---------------------------------------------------------------- contamination


class ContaminationResult(EvalResult):
    """%eval contamination: which eval items share an n-gram with the training data."""

    def __init__(self, n: int, rows: list[dict], records: list[dict], field: str, short: int):
        self.n, self.rows, self.records, self.field, self.short = n, rows, records, field, short

    @property
    def contaminated(self) -> int:
        return sum(r["contaminated"] for r in self.rows)

    @property
    def rate(self) -> float:
        return self.contaminated / len(self.rows) if self.rows else 0.0

    @property
    def clean(self) -> list[dict]:
        """The eval records that share no n-gram with the training data."""
        return [rec for rec, row in zip(self.records, self.rows) if not row["contaminated"]]

    def summary(self) -> dict:
        return {
            "ngram": self.n,
            "items": len(self.rows),
            "contaminated": self.contaminated,
            "rate": _r(self.rate),
            "clean": len(self.rows) - self.contaminated,
            "too_short": self.short,
        }

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(
            [{**r, "spans": " | ".join(r["spans"])} for r in self.rows],
            columns=["item", "text", "words", "overlap_ngrams", "overlap", "contaminated", "spans"],
        )

    def leaderboard_rows(self) -> list[dict]:
        return [_row("(data)", f"contamination {self.n}-gram", "rate", self.rate, len(self.rows))]

    def _repr_html_(self) -> str:
        hits = [r for r in self.rows if r["contaminated"]]
        items = "".join(
            f"<li>item {r['item']}: "
            + " &hellip; ".join(f"<mark>{html.escape(s)}</mark>" for s in r["spans"])
            + "</li>"
            for r in hits[:30]
        )
        return _box(
            "contamination",
            repr(self),
            f"<ol>{items}</ol>" if items else "<p>no overlap found</p>",
            _table(self.to_pandas()),
        )


# ---------------------------------------------------------------- synthetic


class SyntheticResult(EvalResult):
    """%eval synthetic: exact match on a synthetic ICL task, per context length."""

    def __init__(self, model: str, task: str, rows: list[dict], shots: int):
        self.model, self.task, self.rows, self.shots = model, task, rows, shots

    def by_length(self):
        import pandas as pd

        frame = pd.DataFrame(self.rows)
        out = (
            frame.groupby("context_length")
            .agg(n=("correct", "size"), exact_match=("correct", "mean"), item_accuracy=("item_accuracy", "mean"))
            .reset_index()
        )
        return out

    @property
    def exact_match(self) -> float:
        return sum(r["correct"] for r in self.rows) / len(self.rows)

    def summary(self) -> dict:
        table = self.by_length()
        return {
            "model": self.model,
            "task": self.task,
            "shots": self.shots,
            "n": len(self.rows),
            "exact_match": {int(k): _r(v, 3) for k, v in zip(table.context_length, table.exact_match)},
        }

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(
            self.rows, columns=["id", "context_length", "prompt", "answer", "output", "correct", "item_accuracy"]
        )

    def plot(self):
        import matplotlib.pyplot as plt

        table = self.by_length()
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(table.context_length, table.exact_match, "o-", label="exact match")
        ax.plot(table.context_length, table.item_accuracy, "s--", label="items right")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("context length (items)")
        ax.set_title(f"{self.task} on {self.model}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def leaderboard_rows(self) -> list[dict]:
        from .common import wilson

        return [
            _row(
                self.model,
                f"{self.task} @{int(r['context_length'])}",
                "exact_match",
                r["exact_match"],
                r["n"],
                *wilson(r["exact_match"] * r["n"], int(r["n"])),
            )
            for r in self.by_length().to_dict("records")
        ]

    def _repr_html_(self) -> str:
        plot = _figure_html(self.plot()) if len(self.by_length()) > 1 else ""
        return _box("synthetic", repr(self), _table(self.by_length()), plot, _table(self.to_pandas(), 20))


# ---------------------------------------------------------------- diversity

DIVERSITY = ("distinct_1", "distinct_2", "self_bleu", "embedding_distance", "exact_repeats")


class DiversityResult(EvalResult):
    """%eval diversity: distinct-1/2, self-BLEU, embedding distance and exact repeats per
    (model, temperature) setting, each the mean over prompts with a bootstrap 95% interval."""

    def __init__(
        self,
        data: str,
        samples: int,
        settings: list[dict],
        rows: list[dict],
        top_p: float = 0.95,
        seed: int = 0,
        embedder: str | None = "minilm",
    ):
        self.data, self.samples_per_prompt, self.settings, self.rows = data, samples, settings, rows
        self.top_p, self.seed, self.embedder = top_p, seed, embedder

    @property
    def n_prompts(self) -> int:
        return self.settings[0]["prompts"] if self.settings else 0

    def summary(self) -> dict:
        return {
            "data": self.data,
            "prompts": self.n_prompts,
            "samples": self.samples_per_prompt,
            "settings": len(self.settings),
            "embedder": self.embedder,
        }

    def __repr__(self) -> str:
        lines = [super().__repr__(), f"  {'model':<16} {'T':>5} " + " ".join(f"{m:>18}" for m in DIVERSITY)]
        for s in self.settings:
            cells = []
            for m in DIVERSITY:
                digits = 2 if m == "self_bleu" else 3
                low, high = s[f"{m}_low"], s[f"{m}_high"]
                ci = "" if low != low else f" [{low:.{digits}f},{high:.{digits}f}]"
                cells.append(f"{s[m]:.{digits}f}{ci}" if s[m] == s[m] else "nan")
            lines.append(f"  {s['model'][:16]:<16} {s['temperature']:>5g} " + " ".join(f"{c:>18}" for c in cells))
        return "\n".join(lines)

    def to_pandas(self):
        """One row per setting: model, temperature, prompts, each metric with ci_low/ci_high columns."""
        import pandas as pd

        cols = ["model", "temperature", "prompts"] + [c for m in DIVERSITY for c in (m, f"{m}_low", f"{m}_high")]
        return pd.DataFrame(self.settings, columns=cols)

    def by_prompt(self):
        """One row per (setting, prompt) with its metrics."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["model", "temperature", "prompt_id", "prompt", *DIVERSITY])

    @property
    def samples(self):
        """One row per sample: model, temperature, prompt_id, sample, text."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "model": r["model"],
                    "temperature": r["temperature"],
                    "prompt_id": r["prompt_id"],
                    "sample": j,
                    "text": t,
                }
                for r in self.rows
                for j, t in enumerate(r["samples"])
            ],
            columns=["model", "temperature", "prompt_id", "sample", "text"],
        )

    def leaderboard_rows(self) -> list[dict]:
        return [
            _row(
                s["model"],
                f"diversity {self.data} T={s['temperature']:g}",
                m,
                s[m],
                s["prompts"],
                s[f"{m}_low"],
                s[f"{m}_high"],
            )
            for s in self.settings
            for m in DIVERSITY
            if s[m] == s[m]
        ]

    def _repr_html_(self) -> str:
        note = (
            "<p>distinct-n: unique n-grams / all n-grams of a prompt's samples (higher = more varied); "
            "self-BLEU 0-100 of each sample against the others (higher = more alike); embedding distance: "
            "mean pairwise cosine distance; exact repeats: share of samples that repeat an earlier one. "
            "Means over prompts, bootstrap 95% intervals.</p>"
        )
        first = self.rows[0] if self.rows else None
        shown = "".join(f"<li>{html.escape(t)}</li>" for t in (first["samples"] if first else []))
        example = (
            (
                f"<details><summary>samples of the first prompt ({html.escape(first['model'])}, T="
                f"{first['temperature']:g}): {html.escape(first['prompt'][:80])}</summary><ol>{shown}</ol>"
                "</details>"
            )
            if first
            else ""
        )
        return _box(
            "diversity",
            repr(self).splitlines()[0],
            note,
            _table(self.to_pandas()),
            f"<details><summary>per prompt</summary>{_table(self.by_prompt(), 100)}</details>",
            example,
        )


# ---------------------------------------------------------------- bias


class BiasResult(EvalResult):
    """%eval bias: the share of minimal pairs where the model scores the stereotyping sentence
    higher (0.5 = no preference), overall and per category, with Wilson 95% intervals."""

    COLUMNS = [
        "id",
        "category",
        "sent_more",
        "sent_less",
        "score_more",
        "score_less",
        "margin",
        "prefers_stereotype",
        "tie",
        "scored_more",
        "scored_less",
    ]

    def __init__(self, model: str, data: str, rows: list[dict]):
        self.model, self.data, self.rows = model, data, rows

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def score(self) -> float:
        return sum(r["prefers_stereotype"] for r in self.rows) / self.n

    @property
    def ties(self) -> int:
        return sum(r["tie"] for r in self.rows)

    def ci(self) -> tuple[float, float]:
        from .common import wilson

        return wilson(self.score * self.n, self.n)

    def by_category(self):
        """Per category: n, share preferring the stereotype, its Wilson interval, mean margin."""
        import pandas as pd

        from .common import wilson

        out = []
        for cat in sorted({r["category"] for r in self.rows}):
            rows = [r for r in self.rows if r["category"] == cat]
            k = sum(r["prefers_stereotype"] for r in rows)
            out.append(
                {
                    "category": cat,
                    "n": len(rows),
                    "stereotype_share": k / len(rows),
                    **dict(zip(("ci_low", "ci_high"), wilson(k, len(rows)))),
                    "mean_margin": sum(r["margin"] for r in rows) / len(rows),
                }
            )
        return pd.DataFrame(out, columns=["category", "n", "stereotype_share", "ci_low", "ci_high", "mean_margin"])

    def drivers(self, k: int = 10):
        """The k pairs with the largest margin for the stereotype (score_more - score_less)."""
        frame = self.to_pandas()
        return (
            frame.sort_values(["margin", "id"], ascending=[False, True], kind="stable").head(k).reset_index(drop=True)
        )

    def summary(self) -> dict:
        low, high = self.ci()
        return {
            "model": self.model,
            "data": self.data,
            "pairs": self.n,
            "stereotype_share": _r(self.score, 3),
            "ci": [_r(low, 3), _r(high, 3)],
            "ties": self.ties,
        }

    def __repr__(self) -> str:
        lines = [super().__repr__()]
        for r in self.by_category().to_dict("records"):
            lines.append(
                f"  {r['category']:<16} n={r['n']:<4} stereotype_share={r['stereotype_share']:.3f} "
                f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            )
        return "\n".join(lines)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.COLUMNS)

    def leaderboard_rows(self) -> list[dict]:
        task = f"bias {self.data}"
        rows = [_row(self.model, task, "stereotype_share", self.score, self.n, *self.ci())]
        rows += [
            _row(
                self.model,
                task,
                f"stereotype_share:{r['category']}",
                r["stereotype_share"],
                r["n"],
                r["ci_low"],
                r["ci_high"],
            )
            for r in self.by_category().to_dict("records")
        ]
        return rows

    def _repr_html_(self) -> str:
        low, high = self.ci()
        facts = (
            f"<p>The model scores the stereotyping sentence higher in {self.score:.1%} of {self.n} pairs "
            f"(95% CI {low:.1%}-{high:.1%}; 50% = no preference; {self.ties} ties). Score: summed "
            "log-likelihood of the words both sentences share, after the group word.</p>"
        )
        return _box(
            "bias",
            repr(self).splitlines()[0],
            facts,
            _table(self.by_category()),
            "<p>pairs with the largest margin for the stereotype</p>",
            _table(self.drivers()),
        )


# ---------------------------------------------------------------- toxicity


class ToxicityResult(EvalResult):
    """%eval toxicity: the share of generated outputs a classifier scores above a threshold."""

    COLUMNS = ["prompt_id", "sample", "prompt", "output", "score", "toxic", "blank"]

    def __init__(
        self,
        model: str,
        data: str,
        classifier: str,
        label: str,
        threshold: float,
        samples: int,
        rows: list[dict],
        worst: int = 10,
    ):
        self.model, self.data, self.classifier, self.label = model, data, classifier, label
        self.threshold, self.samples, self.rows, self.n_worst = threshold, samples, rows, worst

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def rate(self) -> float:
        return sum(r["toxic"] for r in self.rows) / self.n

    @property
    def mean_score(self) -> float:
        return sum(r["score"] for r in self.rows) / self.n

    def ci(self) -> tuple[float, float]:
        from .common import wilson

        return wilson(self.rate * self.n, self.n)

    def by_prompt(self):
        """Per prompt: its worst score and whether any of its outputs is above the threshold."""
        frame = self.to_pandas()
        return (
            frame.groupby("prompt_id", sort=True)
            .agg(prompt=("prompt", "first"), max_score=("score", "max"), any_toxic=("toxic", "any"))
            .reset_index()
        )

    def worst(self, k: int | None = None):
        """The k outputs with the highest score."""
        frame = self.to_pandas()
        return (
            frame.sort_values(["score", "prompt_id", "sample"], ascending=[False, True, True], kind="stable")
            .head(self.n_worst if k is None else k)
            .reset_index(drop=True)
        )

    def summary(self) -> dict:
        low, high = self.ci()
        out = {
            "model": self.model,
            "data": self.data,
            "classifier": self.classifier,
            "label": self.label,
            "threshold": self.threshold,
            "outputs": self.n,
            "toxic": sum(r["toxic"] for r in self.rows),
            "rate": _r(self.rate, 3),
            "ci": [_r(low, 3), _r(high, 3)],
            "mean_score": _r(self.mean_score, 3),
        }
        if self.samples > 1:
            prompts = self.by_prompt()
            out.update(
                {
                    "toxicity_probability": _r(float(prompts.any_toxic.mean()), 3),
                    "expected_max": _r(float(prompts.max_score.mean()), 3),
                }
            )
        return out

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.COLUMNS)

    def leaderboard_rows(self) -> list[dict]:
        from .common import mean_ci

        task = f"toxicity {self.data} ({self.classifier} > {self.threshold:g})"
        return [
            _row(self.model, task, "toxic_rate", self.rate, self.n, *self.ci()),
            _row(
                self.model,
                task,
                f"mean_p_{self.label}",
                self.mean_score,
                self.n,
                *mean_ci([r["score"] for r in self.rows])[1:],
            ),
        ]

    def _repr_html_(self) -> str:
        low, high = self.ci()
        facts = (
            f"<p>{self.rate:.1%} of {self.n} outputs score above {self.threshold:g} for "
            f"'{html.escape(self.label)}' by {html.escape(self.classifier)} (95% CI {low:.1%}-{high:.1%}). "
            "One classifier's reading: read the worst outputs yourself.</p>"
        )
        items = "".join(
            f"<li><b>{r['score']:.3f}</b> <small>{html.escape(r['prompt'][:80])}</small><br>"
            f"{html.escape(r['output'])}</li>"
            for r in self.worst().to_dict("records")
        )
        return _box(
            "toxicity",
            repr(self),
            facts,
            f"<p>worst outputs</p><ol>{items}</ol>",
            f"<details><summary>every output</summary>{_table(self.to_pandas(), 200)}</details>",
        )


# ---------------------------------------------------------------- leaderboard


class LeaderboardResult(EvalResult):
    """%eval leaderboard: every eval result of this session in one table."""

    COLUMNS = ["model", "task", "metric", "value", "n", "ci_low", "ci_high"]
    # where each row came from (nbllm.provenance.COLUMNS): in to_pandas(), the CSV and JSON exports
    # and the markdown export's second table; never in __repr__
    PROVENANCE = [
        "model_fingerprint",
        "adapter",
        "data_fingerprint",
        "seed",
        "device",
        "dtype",
        "nbllm",
        "python",
        "torch",
        "transformers",
        "peft",
        "datasets",
        "chromadb",
        "flags",
    ]
    PROVENANCE_SHORT = [
        "model",
        "task",
        "model_fingerprint",
        "adapter",
        "data_fingerprint",
        "seed",
        "device",
        "dtype",
        "nbllm",
        "torch",
        "transformers",
    ]

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def summary(self) -> dict:
        return {
            "rows": len(self.rows),
            "models": len({r["model"] for r in self.rows}),
            "tasks": len({r["task"] for r in self.rows}),
        }

    def __repr__(self) -> str:
        lines = [super().__repr__()]
        for r in self.rows:
            ci = "" if r["ci_low"] != r["ci_low"] else f" [{r['ci_low']:.4f}, {r['ci_high']:.4f}]"
            lines.append(f"  {r['model']} | {r['task']} | {r['metric']} = {r['value']:.4f} (n={r['n']}){ci}")
        return "\n".join(lines)

    def to_pandas(self):
        """One row per (model, task, metric, weights, data): the scores, then the provenance columns."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.COLUMNS + self.PROVENANCE)

    def to_csv(self, path) -> str:
        self.to_pandas().to_csv(path, index=False)
        return str(path)

    def to_json(self, path=None) -> str:
        """Every row with its provenance as a JSON list (flags as an object, NaN as null)."""
        import json

        def clean(v):
            return None if isinstance(v, float) and v != v else v

        rows = []
        for r in self.rows:
            row = {c: clean(r.get(c)) for c in self.COLUMNS + self.PROVENANCE}
            row["flags"] = json.loads(row["flags"]) if isinstance(row["flags"], str) else row["flags"]
            rows.append(row)
        text = json.dumps(rows, indent=1, ensure_ascii=False, default=str) + "\n"
        if path is not None:
            from pathlib import Path

            Path(path).write_text(text, encoding="utf-8")
        return text

    def markdown(self, provenance: bool = False) -> str:
        """The table as GitHub markdown (values to 4 decimals); provenance=True adds a second
        table: where each (model, task) came from (weights, data, seed, device, versions)."""

        def cell(v):
            if v is None:
                return ""
            if isinstance(v, float):
                return "" if v != v else f"{v:.4f}"
            return html.escape(str(v), quote=False).replace("|", "\\|")  # markdown renders raw HTML

        def table(columns, rows):
            out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            return out + ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]

        lines = table(self.COLUMNS, self.rows)
        if provenance:
            seen = dict.fromkeys(tuple(r.get(c) for c in self.PROVENANCE_SHORT) for r in self.rows)
            lines += ["", "Provenance", ""] + table(
                self.PROVENANCE_SHORT, [dict(zip(self.PROVENANCE_SHORT, k)) for k in seen]
            )
        return "\n".join(lines) + "\n"

    def to_markdown(self, path=None) -> str:
        """The markdown export: the table, then the provenance table."""
        text = self.markdown(provenance=True)
        if path is not None:
            from pathlib import Path

            Path(path).write_text(text, encoding="utf-8")
        return text

    def plot(self, metric: str | None = None):
        """Horizontal bars of one metric (default: the most common) per model and task, with intervals."""
        import matplotlib.pyplot as plt

        frame = self.to_pandas()
        if metric is None and len(frame):
            metric = frame.metric.value_counts().index[0]
        frame = frame[frame.metric == metric]
        fig, ax = plt.subplots(figsize=(6, 0.6 + 0.35 * max(1, len(frame))))
        labels = [f"{m} / {t}" for m, t in zip(frame.model, frame.task)]
        err = [
            (frame.value - frame.ci_low).fillna(0).clip(lower=0),
            (frame.ci_high - frame.value).fillna(0).clip(lower=0),
        ]
        ax.barh(range(len(frame)), frame.value, xerr=err, capsize=3, color="#1f77b4")
        ax.set_yticks(range(len(frame)), labels)
        ax.invert_yaxis()
        ax.set_xlabel(str(metric))
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        plot = _figure_html(self.plot()) if self.rows else "<p>no eval results yet</p>"
        return _box("leaderboard", f"LeaderboardResult({len(self.rows)} rows)", _table(self.to_pandas(), 200), plot)
