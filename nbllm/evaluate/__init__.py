"""Evaluation: benchmark scoring, generative metrics, perplexity, LLM-as-judge, RAG triad,
arena ratings, contamination, synthetic in-context-learning tasks, diversity, bias (minimal
pairs), toxicity and a leaderboard.

Each function returns the result object `%eval` displays; importing this package is cheap
(every submodule imports torch and friends only inside its functions).

    from nbllm import evaluate
    evaluate.mc.evaluate("smollm2", "llm-quiz", shots=2).score
    evaluate.judge.evaluate("judge-responses", "smollm2").by_model()
    evaluate.synthetic.make_task("mqar", n=8, context_length=16, seed=0)
    evaluate.diversity.evaluate("smollm2", "toxicity-prompts", samples=5, temperature="0.3,1.0")
    evaluate.bias.evaluate("smollm2").by_category()
    evaluate.toxicity.evaluate("smollm2", "toxicity-prompts", classifier=clf).worst(5)
"""

from __future__ import annotations

import importlib

_MODULES = (
    "mc",
    "generative",
    "perplexity",
    "judge",
    "triad",
    "arena",
    "contamination",
    "synthetic",
    "diversity",
    "bias",
    "toxicity",
    "leaderboard",
    "results",
    "common",
)

__all__ = [*_MODULES, "make_task", "score_generations", "make_sweep"]


def __getattr__(name):
    if name in ("make_task", "score_generations", "make_sweep"):
        return getattr(importlib.import_module(".synthetic", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nbllm.evaluate' has no attribute {name!r}")
