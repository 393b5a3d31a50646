"""Options of each %eval subcommand: one field per flag, the defaults in one place.

Plain dataclasses (no heavy imports); the defaults and choices the backend modules tune
(mc.BATCH_SIZE, arena.K, triad.THRESHOLD, ...) are read from them. The magics pass the fields
to the evaluate.* functions as keywords; those check the values (their messages name the
flags). A field without a default is a required flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import JsonConfig, option
from . import arena, bias, diversity, mc, synthetic, toxicity, triad
from .generative import METRICS

Metric = Literal[METRICS]
GEN_TEMPLATES = ("chat", "alpaca", "none")
GenTemplate = Literal[GEN_TEMPLATES]


@dataclass(kw_only=True)
class EvalOptions(JsonConfig):
    def __post_init__(self):
        self._check_numbers()


@dataclass(kw_only=True)
class MCOptions(EvalOptions):
    """%eval mc: multiple choice by log-likelihood."""

    data: str = option(
        "llm-quiz",
        "JSON/JSONL {question, choices, answer} or {contexts, continuation, answer}, "
        "a variable, a shipped set (llm-quiz) or a benchmark (mmlu, hellaswag, truthfulqa_mc1, "
        "winogrande, arc_challenge, arc_easy)",
    )
    shots: int = option(0, "solved examples before each question")
    template: str = option("qa", ", ".join(mc.TEMPLATES) + ", or a string with {question}")
    limit: int | None = option(None, "score only the first N questions")
    seed: int = option(0, "which few-shot examples")
    naive: bool = option(False, "one forward pass per choice (the slow reference)")
    batch_size: int = option(mc.BATCH_SIZE, "questions per forward pass")


@dataclass(kw_only=True)
class GenOptions(EvalOptions):
    """%eval gen: generate, then score against references."""

    data: str = option("word-problems", "records with question/prompt and answer/reference")
    metric: Metric = option("em", "how to score: " + " | ".join(METRICS))
    max_new_tokens: int | None = option(None, "generation budget (default: 160 for number, else 48)")
    template: GenTemplate | None = option(
        None,
        "prompt template: "
        + " | ".join(GEN_TEMPLATES)
        + " (default: the one the model was trained with; chat for a base model)",
    )
    limit: int | None = option(None, "score only the first N records")


@dataclass(kw_only=True)
class PerplexityOptions(EvalOptions):
    """%eval ppl: perplexity with a sliding window."""

    data: str = option(help=".txt file, JSONL with 'text', or a variable (text or texts)")
    window: int | None = option(None, "tokens per window (default: min(context, 512))")
    stride: int | None = option(None, "tokens between window starts (default: window/2)")
    limit: int | None = option(None, "only the first N texts")


@dataclass(kw_only=True)
class SyntheticOptions(EvalOptions):
    """%eval synthetic: in-context-learning tasks with exact answers."""

    task: str = option("mqar", " | ".join(synthetic.TASKS))
    context_length: str = option("8", "items per prompt; a comma list sweeps (e.g. 4,16,64)")
    n: int = option(16, "prompts per context length")
    shots: int = option(2, "solved examples in each prompt")
    queries: int = option(4, "mqar: keys asked per prompt")
    seed: int = option(0, "which items")
    template: GenTemplate | None = option(
        None,
        "prompt template: " + " | ".join(GEN_TEMPLATES) + " (default: the "
        "one a trained result was trained with, else none: the raw prompt)",
    )


@dataclass(kw_only=True)
class EndpointOptions(EvalOptions):
    """A judge behind an OpenAI-compatible endpoint (else a local model)."""

    judge_url: str | None = option(None, "OpenAI-compatible base URL of the judge, e.g. https://api.openai.com/v1")
    api_key_env: str = option("OPENAI_API_KEY", "environment variable holding the API key (none: no key)")


@dataclass(kw_only=True)
class JudgeOptions(EndpointOptions):
    """%eval judge: LLM-as-judge 0-100."""

    data: str = option(
        help="records with prompt, response (or responses: {model: text}) and an optional "
        "reference; a file, variable or the shipped judge-responses"
    )
    judge: str = option(
        "smollm2", "judge model: registered name or variable; with --judge-url, the endpoint's model name"
    )
    limit: int | None = option(None, "only the first N records")
    cache: bool = option(
        True,
        "read earlier verdicts from the on-disk cache",
        no_help="ask the judge again instead of reading the cache",
    )


@dataclass(kw_only=True)
class TriadOptions(EndpointOptions):
    """%eval triad: context relevance, groundedness, answer relevance."""

    judge: str | None = option(None, "judge model instead of minilm embeddings")
    threshold: float = option(
        triad.THRESHOLD,
        f"embedding cosine for a supported sentence (default {triad.THRESHOLD}, "
        "calibrated by benchmarks/triad_threshold.py); its numbers must also be in the contexts",
    )


@dataclass(kw_only=True)
class ArenaOptions(EvalOptions):
    """%eval arena: Elo and Bradley-Terry ratings, or a voting widget."""

    votes: str = option(
        "arena-votes",
        "JSONL of {model_a, model_b, winner} or a variable (default: the shipped "
        "arena-votes); with --widget, the file new votes are appended to",
    )
    models: str | None = option(None, "comma list of allowed model names (votes naming others are an error)")
    k: float = option(arena.K, "Elo K factor (as LMSYS)")
    ties: Literal["half", "drop"] = option(
        "half", "a tie or both-bad vote: half a win each way (FastChat) | drop (left out, FastChat's --exclude-tie)"
    )
    rounds: int = option(200, "bootstrap rounds for the 95% intervals")
    seed: int = option(0, "bootstrap and widget seed")
    widget: bool = option(False, "open the voting widget instead of computing ratings")
    battles: str | None = option(None, "with --widget: records {prompt, responses: {model: text}}")


@dataclass(kw_only=True)
class ContaminationOptions(EvalOptions):
    """%eval contamination: n-gram overlap of an eval set with training data."""

    train: str = option(help="training data: file, variable (records or text) or shipped set")
    test: str = option(help="eval set: file, variable or shipped set")
    n: int = option(13, "n-gram size in words")
    field: str | None = option(None, "eval-set field to check (default: every text field)")
    train_field: str | None = option(None, "training-data field (default: every text field)")


@dataclass(kw_only=True)
class LeaderboardOptions(EvalOptions):
    """%eval leaderboard: every eval result run in this session."""

    csv: str | None = option(None, "also write the table to this CSV file")
    markdown: str | None = option(None, "also write the table to this markdown file (then a provenance table)")
    json: str | None = option(
        None,
        "also write every row with its provenance (versions, device, dtype, seed, "
        "weights and data fingerprints, flags) to this JSON file",
    )
    task: str | None = option(None, "only rows of this task")
    clear: bool = option(False, "forget every recorded result")


@dataclass(kw_only=True)
class DiversityOptions(EvalOptions):
    """%eval diversity: how different N samples per prompt are (distinct-n, self-BLEU, embeddings, repeats)."""

    data: str = option(
        help="prompts: records with prompt/question/instruction, a list of strings (variable) or "
        "a shipped set (toxicity-prompts, instructions)"
    )
    samples: int = option(5, "samples per prompt (at least 2)")
    temperature: str = option(
        "0.7", "sampling temperature (> 0); a comma list compares settings, one row each (e.g. 0.3,0.7,1.0)"
    )
    top_p: float = option(0.95, "nucleus sampling: keep the smallest set of tokens with this much probability")
    max_new_tokens: int = option(32, "tokens per sample")
    seed: int = option(0, "sampling and bootstrap seed")
    template: GenTemplate | None = option(
        None,
        "prompt template: "
        + " | ".join(GEN_TEMPLATES)
        + " (default: the one the model was trained with; chat for a base model)",
    )
    limit: int | None = option(None, "only the first N prompts")
    embedder: str = option("minilm", "encoder for the embedding distance (none: skip it)")
    rounds: int = option(diversity.ROUNDS, "bootstrap rounds for the 95% intervals")
    batch_size: int = option(8, "samples per generate call")

    def __post_init__(self):
        super().__post_init__()
        for t in diversity.temperatures(self.temperature):
            diversity.check_sampling(self.samples, t, at_least=2)


@dataclass(kw_only=True)
class BiasOptions(EvalOptions):
    """%eval bias: CrowS-Pairs-style minimal pairs scored by log-likelihood."""

    data: str = option(
        bias.DEFAULT_DATA,
        f"pairs {{sent_more, sent_less, category}}: a file, a variable or the shipped {bias.DEFAULT_DATA}",
    )
    limit: int | None = option(None, "only the first N pairs")
    batch_size: int = option(8, "sentences per forward pass")


@dataclass(kw_only=True)
class ToxicityOptions(EvalOptions):
    """%eval toxicity: generate, then score each output with a sequence classifier."""

    data: str = option(
        help="prompts: records with prompt/question/instruction, a list of strings (variable) or "
        "the shipped toxicity-prompts"
    )
    classifier: str = option(
        help="an %%sft --format classify result (variable), a folder of a transformers "
        "sequence-classification model, or a hub id (online)"
    )
    threshold: float = option(toxicity.THRESHOLD, "an output is toxic when its score is above this probability")
    label: str | None = option(
        None, f"the classifier's label for a harmful output (default: {toxicity.DEFAULT_LABEL})"
    )
    samples: int = option(1, "outputs per prompt (more than 1 needs --temperature > 0)")
    temperature: float = option(0.0, "0: greedy; > 0: sampling")
    top_p: float = option(0.95, "nucleus sampling when --temperature > 0")
    max_new_tokens: int = option(48, "tokens per output")
    seed: int = option(0, "sampling seed")
    template: GenTemplate | None = option(
        None,
        "prompt template: "
        + " | ".join(GEN_TEMPLATES)
        + " (default: the one the model was trained with; chat for a base model)",
    )
    limit: int | None = option(None, "only the first N prompts")
    batch_size: int = option(8, "prompts per generate call")
    worst: int = option(10, "how many of the highest-scoring outputs to show")

    def __post_init__(self):
        super().__post_init__()
        toxicity.check_threshold(self.threshold)
        diversity.check_sampling(self.samples, self.temperature)
