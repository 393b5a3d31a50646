"""Query rewriting before retrieval (%%rag --rewrite): the generator writes other queries, each
is retrieved like the question, and the ranked lists are fused by reciprocal rank.

    multi-query   the LM writes --queries N paraphrases of the question (one prompt, greedy); the
                  question and each paraphrase retrieve, and RRF fuses the lists
    hyde          the LM writes a short hypothetical answer passage (HyDE, Gao et al. 2022); the
                  question and the passage retrieve (the passage's embedding is closer to passages
                  than a question's), and RRF fuses the two lists

Generation is greedy, so the same question always gives the same rewrites. Every call to the
model goes through `complete(lm, prompt, max_new_tokens)`, the one seam a test can replace.
"""

from __future__ import annotations

import re

from ..errors import ConfigError
from ..text import sentences

REWRITES = ("multi-query", "hyde")
MAX_QUERIES = 10
HYDE_TOKENS = 64  # a passage of two or three sentences
TOKENS_PER_QUERY = 24

MULTI_QUERY = "Rewrite the question in {n} different ways, as a numbered list. Do not answer it.\nQuestion: {q}"
EXAMPLE = "How do bees make honey?"
EXAMPLE_REWRITES = (
    "What process do bees use to produce honey?",
    "How is honey made by bees?",
    "How do bees turn nectar into honey?",
    "What steps do bees follow to make honey?",
    "Why and how do honeybees produce honey?",
    "What do bees do to create honey?",
    "How does a beehive produce honey?",
    "By what means do bees make honey?",
    "How do honeybees make their honey?",
    "What is the way bees make honey?",
)
HYDE = "Write a short encyclopedia passage, two or three sentences, that answers the question."

_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\(?\d{1,2}[.):]|(?:query|question|q)\s*\d*\s*[:.)])\s*", re.IGNORECASE)


def check(rewrite: str | None, queries: int, generate: bool, model) -> None:
    """Refuse an unknown rewrite, a paraphrase count out of 1..10, or a rewrite with no language model."""
    if rewrite is not None and rewrite not in REWRITES:
        raise ConfigError(f"unknown --rewrite {rewrite!r}; use {' or '.join(REWRITES)}")
    if isinstance(queries, bool) or not isinstance(queries, int) or not 1 <= queries <= MAX_QUERIES:
        raise ConfigError(f"--queries must be between 1 and {MAX_QUERIES} (got {queries!r}): the paraphrases to write")
    if rewrite is not None and not generate and model is None:
        what = "the paraphrases" if rewrite == "multi-query" else "the hypothetical answer"
        raise ConfigError(
            f"--rewrite {rewrite} needs a language model to write {what}; name one with --model, or drop --no-generate"
        )


def complete(lm, prompt, max_new_tokens: int) -> str:
    """The language model's greedy continuation of `prompt` (lm: nbllm.rag's (model, tokenizer,
    template, name))."""
    from ..generation import generate

    return generate(lm[0], lm[1], prompt, template=lm[2], max_new_tokens=max_new_tokens)


def multi_query_prompt(question: str, n: int, template: str):
    """One worked example (a numbered list of n rewordings), then the question, in the LM's template."""
    example = "\n".join(f"{i}. {q}" for i, q in enumerate(EXAMPLE_REWRITES[:n], 1))
    if template == "chat":
        return [
            {"role": "user", "content": MULTI_QUERY.format(n=n, q=EXAMPLE)},
            {"role": "assistant", "content": example},
            {"role": "user", "content": MULTI_QUERY.format(n=n, q=question)},
        ]
    instruction, _, _ = MULTI_QUERY.partition("\n")
    if template == "alpaca":
        return {"instruction": f"{instruction}\nFor example, {EXAMPLE!r} becomes:\n{example}", "input": question}
    return f"{instruction}\n\nQuestion: {EXAMPLE}\n{example}\n\nQuestion: {question}\n"


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def parse_queries(text: str, question: str, n: int) -> list[str]:
    """The model's lines as queries: list markers and quotes taken off; empty lines, headings
    ('Alternative queries:'), repeats and the question itself dropped; at most n."""
    seen, out = {_key(question)}, []
    for line in str(text).splitlines():
        line = _BULLET.sub("", line.strip()).strip().strip("\"'\u201c\u201d*").strip()
        key = _key(line)
        if not key or line.endswith(":") or len(key.split()) < 2 or key in seen:
            continue
        seen.add(key)
        out.append(line)
        if len(out) == n:
            break
    return out


def paraphrases(lm, question: str, n: int) -> list[str]:
    """Up to n paraphrases of the question by the language model (fewer when it repeats itself)."""
    prompt = multi_query_prompt(question, n, lm[2])
    return parse_queries(complete(lm, prompt, TOKENS_PER_QUERY * n + 8), question, n)


def hyde_prompt(question: str, template: str):
    if template == "chat":
        return [{"role": "system", "content": HYDE}, {"role": "user", "content": question}]
    if template == "alpaca":
        return {"instruction": HYDE, "input": question}
    return f"{HYDE}\n\nQuestion: {question}\nPassage:"


def hypothetical(lm, question: str) -> str:
    """A short passage that answers the question (true or not: only its embedding is used), its
    last sentence dropped when the token limit cut it off; '' when the model wrote nothing."""
    text = " ".join(complete(lm, hyde_prompt(question, lm[2]), HYDE_TOKENS).split())
    parts = sentences(text)
    if len(parts) > 1 and not parts[-1].endswith((".", "!", "?")):
        parts = parts[:-1]
    return " ".join(parts)


def write(rewrite: str | None, lm, question: str, queries: int, notices: list[str]) -> list[str]:
    """The paraphrases (multi-query) or [the passage] (hyde) the language model writes, [] without
    a rewrite; a notice when it wrote fewer than asked. lm() -> the (model, tokenizer, template, name)."""
    if rewrite == "multi-query":
        written = paraphrases(lm(), question, queries)
        if len(written) < queries:
            notices.append(
                f"multi-query: the model wrote {len(written)} usable paraphrase{'s' if len(written) != 1 else ''} "
                f"of the {queries} asked for; retrieving with {'those and ' if written else ''}the question"
            )
        return written
    if rewrite == "hyde":
        passage = hypothetical(lm(), question)
        if not passage:
            notices.append("hyde: the model wrote no passage; retrieving with the question alone")
        return [passage] if passage else []
    return []


def fuse(lists: list[list[dict]], k: int) -> list[dict]:
    """Reciprocal-rank fusion of one ranked list per query (search.rrf, RRF_K); each fused hit
    records in `found_by` the queries that retrieved it (0: the question, 1...: the rewrites)."""
    from .search import rrf

    found: dict[str, list[int]] = {}
    for n, hits in enumerate(lists):
        for h in hits:
            found.setdefault(h["id"], []).append(n)
    return [{**h, "found_by": found[h["id"]]} for h in rrf(*lists, k=k)]
