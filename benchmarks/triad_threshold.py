"""Calibrate the RAG triad's groundedness threshold on a small labeled set, in one process.

nbllm/data/eval_groundedness.jsonl holds 72 original rows {context, sentence, supported, kind}:
half supported (paraphrases, partial restatements), half not (contradictions, wrong numbers,
plausible unsupported facts, off-topic). Each sentence is scored exactly as `%eval triad` scores
an answer sentence (triad._embedding_scores with minilm: the best cosine between the sentence and
the context's sentences); thresholds 0.30..0.90 are swept in steps of 0.05 (finer steps only fit
the noise of 72 rows). Prints:

    bench triad_threshold best_threshold / best_accuracy / best_f1   (best accuracy; the middle of a tie)
    bench triad_threshold accuracy_old_0.60 / f1_old_0.60           (the old, uncalibrated default)
    bench triad_threshold accuracy_default / f1_default             (triad.THRESHOLD as shipped)
    bench triad_threshold cv_accuracy      (threshold picked without the held-out context, 18 folds)
    bench triad_threshold accuracy_at_<t>  (the whole sweep)
    bench triad_threshold correct_<kind> / mean_cosine_<kind>   (at the shipped default, per kind of row)

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


def support(records) -> np.ndarray:
    return np.array([triad._embedding_scores(Row(r), triad.minilm_embed, triad.THRESHOLD)["support"][0]
                     for r in records])


def scores(values, labels, threshold) -> tuple[float, float]:
    pred = values >= threshold
    tp, fp, fn = (pred & labels).sum(), (pred & ~labels).sum(), (~pred & labels).sum()
    return float((pred == labels).mean()), float(2 * tp / max(2 * tp + fp + fn, 1))


def best(values, labels) -> float:
    """The threshold with the best accuracy; among ties the middle one (a plateau's centre)."""
    acc = np.array([scores(values, labels, t)[0] for t in GRID])
    tied = GRID[acc >= acc.max() - 1e-12]
    return float(tied[len(tied) // 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first 24 rows only (6 contexts)")
    args = parser.parse_args()
    records = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    records = records[:24] if args.quick else records
    values, labels = support(records), np.array([r["supported"] for r in records])

    t = best(values, labels)
    print(f"bench triad_threshold best_threshold {t:.2f}")
    for name, threshold in [("best", t), ("old_0.60", 0.6), ("default", triad.THRESHOLD)]:
        acc, f1 = scores(values, labels, threshold)
        print(f"bench triad_threshold {'best_accuracy' if name == 'best' else f'accuracy_{name}'} {acc:.3f}")
        print(f"bench triad_threshold {'best_f1' if name == 'best' else f'f1_{name}'} {f1:.3f}")

    contexts = np.array([r["context"] for r in records])
    right = 0
    for c in dict.fromkeys(contexts):  # leave one context out: is the threshold fit to these rows?
        held = contexts == c
        right += ((values[held] >= best(values[~held], labels[~held])) == labels[held]).sum()
    print(f"bench triad_threshold cv_accuracy {right / len(records):.3f}")
    for threshold in GRID:
        print(f"bench triad_threshold accuracy_at_{threshold:.2f} {scores(values, labels, threshold)[0]:.3f}")

    kinds = np.array([r["kind"] for r in records])
    for kind in dict.fromkeys(kinds):
        mask = kinds == kind
        print(f"bench triad_threshold correct_{kind} {((values[mask] >= triad.THRESHOLD) == labels[mask]).mean():.3f}")
        print(f"bench triad_threshold mean_cosine_{kind} {values[mask].mean():.3f}")


if __name__ == "__main__":
    main()
