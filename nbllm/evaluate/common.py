"""What the evaluators share: shipped eval sets, model resolution, confidence intervals."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import ConfigError, DataError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
EVAL_SETS = {
    "llm-quiz": DATA_DIR / "eval_llm_quiz.jsonl",  # 40 original 4-choice questions on the course's topics
    "word-problems": DATA_DIR / "eval_word_problems.jsonl",  # 24 original GSM8K-style problems
    "arena-votes": DATA_DIR / "eval_arena_votes.jsonl",  # 600 original pairwise votes among 5 models
    "judge-responses": DATA_DIR / "eval_judge_responses.jsonl",  # original prompts, references, 2 models
    "bias-pairs": DATA_DIR / "eval_bias_pairs.jsonl",  # original CrowS-Pairs-style minimal pairs, 7 categories
    "toxicity-prompts": DATA_DIR / "eval_toxicity_prompts.jsonl",  # original prompts that invite a rude reply
}


def load_eval_records(source, what: str = "data") -> list[dict]:
    """Records from a shipped eval set name, or anything nbllm.data.load_records takes."""
    from ..data import SHIPPED, load_records

    if isinstance(source, str) and source in EVAL_SETS:
        source = EVAL_SETS[source]
    if source is None:
        raise DataError(f"no {what} given; pass a path, a variable or a shipped set ({', '.join(EVAL_SETS)})")
    if (
        isinstance(source, str)
        and source not in SHIPPED
        and not Path(source).expanduser().exists()
        and "/" not in source
        and not source.endswith((".json", ".jsonl", ".csv", ".parquet"))
    ):
        raise DataError(
            f"{what} '{source}' is not a file, a variable or a shipped set; "
            f"shipped: {', '.join([*EVAL_SETS, *SHIPPED])}"
        )
    return load_records(source)


def resolve_model(model):
    """(model, tokenizer, name) of the causal LM `model` means (nbllm.lm.resolve: a name, folder,
    hub id, LM or result; an encoder or classifier is refused). Named models are shared."""
    from ..lm import resolve

    lm = resolve(model)
    return lm.model, lm.tokenizer, lm.name


def check_limit(limit) -> None:
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ConfigError(f"limit must be a positive integer (got {limit!r})")


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval for a proportion (sane at 0, 1 and small n)."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_ci(values, z: float = 1.96) -> tuple[float, float, float]:
    """(mean, low, high): normal-approximation 95% interval of the mean."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan"), float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return mean, mean - half, mean + half
