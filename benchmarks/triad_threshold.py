"""Calibrate the RAG triad's groundedness threshold on a small labeled set, in one process.

nbllm/data/eval_groundedness.jsonl holds 80 original rows {context, sentence, supported, kind}:
half supported (paraphrases, partial restatements, some giving a figure in another format: 52002
for 52,002, 3 for three), half not (contradictions, wrong numbers, plausible unsupported facts,
off-topic). Each sentence is scored exactly as `%eval triad` scores an answer sentence
(triad._embedding_scores with minilm: supported when the best cosine between the sentence and the
context's sentences reaches the threshold and every number it states is in the context);
thresholds 0.30..0.90 are swept in steps of 0.05 (finer steps only fit the noise of 80 rows).
Everything is for that scorer, except the *_cosine_only lines: the cosine alone, as before
the number check, side by side. Prints:

    bench triad_threshold best_threshold / best_accuracy / best_f1   (best accuracy; the middle of a tie)
    bench triad_threshold accuracy_old_0.60 / f1_old_0.60           (the old, uncalibrated default)
    bench triad_threshold accuracy_default / f1_default             (triad.THRESHOLD as shipped)
    bench triad_threshold cv_accuracy      (threshold picked without the held-out context, 18 folds)
    bench triad_threshold accuracy_at_<t>  (the whole sweep)
    bench triad_threshold best_threshold_cosine_only / best_accuracy_cosine_only
    bench triad_threshold accuracy_default_cosine_only / f1_default_cosine_only
    bench triad_threshold correct_<kind> / correct_<kind>_cosine_only / mean_cosine_<kind>
                                                           (at the shipped default, per kind of row)

F1 is for the "supported" class. Chance accuracy is 0.5 (the set is balanced).

    python benchmarks/triad_threshold.py [--quick]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from nbllm.evaluate import triad

DATA = Path(__file__).resolve().parents[1] / "nbllm" / "data" / "eval_groundedness.jsonl"
GRID = np.round(np.arange(0.30, 0.9001, 0.05), 2)


class Row:
    """One labeled sentence, duck-typed as a %%rag result with a one-sentence answer."""

    def __init__(self, record):
        self.question, self.contexts, self.answer = record["sentence"], [record["context"]], record["sentence"]


def support(records) -> tuple[np.ndarray, np.ndarray]:
    """Each sentence's best cosine, and whether every number it states is in its context."""
    scored = [triad._embedding_scores(Row(r), triad.minilm_embed, triad.THRESHOLD) for r in records]
    return np.array([s["support"][0] for s in scored]), np.array([not s["missing"][0] for s in scored])


def scores(values, labels, threshold, numbers_ok=True) -> tuple[float, float]:
    pred = (values >= threshold) & numbers_ok
    tp, fp, fn = (pred & labels).sum(), (pred & ~labels).sum(), (~pred & labels).sum()
    return float((pred == labels).mean()), float(2 * tp / max(2 * tp + fp + fn, 1))


def best(values, labels, numbers_ok=True) -> float:
    """The threshold with the best accuracy; among ties the middle one (a plateau's centre)."""
    acc = np.array([scores(values, labels, t, numbers_ok)[0] for t in GRID])
    tied = GRID[acc >= acc.max() - 1e-12]
    return float(tied[len(tied) // 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first 24 rows only (6 contexts)")
    args = parser.parse_args()
    records = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    records = records[:24] if args.quick else records
    (values, ok), labels = support(records), np.array([r["supported"] for r in records])

    t = best(values, labels, ok)
    print(f"bench triad_threshold best_threshold {t:.2f}")
    for name, threshold in [("best", t), ("old_0.60", 0.6), ("default", triad.THRESHOLD)]:
        acc, f1 = scores(values, labels, threshold, ok)
        print(f"bench triad_threshold {'best_accuracy' if name == 'best' else f'accuracy_{name}'} {acc:.3f}")
        print(f"bench triad_threshold {'best_f1' if name == 'best' else f'f1_{name}'} {f1:.3f}")
    t_cos = best(values, labels)
    print(f"bench triad_threshold best_threshold_cosine_only {t_cos:.2f}")
    print(f"bench triad_threshold best_accuracy_cosine_only {scores(values, labels, t_cos)[0]:.3f}")
    acc, f1 = scores(values, labels, triad.THRESHOLD)
    print(f"bench triad_threshold accuracy_default_cosine_only {acc:.3f}")
    print(f"bench triad_threshold f1_default_cosine_only {f1:.3f}")

    contexts = np.array([r["context"] for r in records])
    right = 0
    for c in dict.fromkeys(contexts):  # leave one context out: is the threshold fit to these rows?
        held = contexts == c
        pred = (values[held] >= best(values[~held], labels[~held], ok[~held])) & ok[held]
        right += (pred == labels[held]).sum()
    print(f"bench triad_threshold cv_accuracy {right / len(records):.3f}")
    for threshold in GRID:
        print(f"bench triad_threshold accuracy_at_{threshold:.2f} {scores(values, labels, threshold, ok)[0]:.3f}")

    kinds = np.array([r["kind"] for r in records])
    for kind in dict.fromkeys(kinds):
        mask = kinds == kind
        cosine = values[mask] >= triad.THRESHOLD
        print(f"bench triad_threshold correct_{kind} {((cosine & ok[mask]) == labels[mask]).mean():.3f}")
        print(f"bench triad_threshold correct_{kind}_cosine_only {(cosine == labels[mask]).mean():.3f}")
        print(f"bench triad_threshold mean_cosine_{kind} {values[mask].mean():.3f}")


if __name__ == "__main__":
    main()
