"""Contextual compression (%%rag --compress): keep in each context only the sentences that bear
on the question, so the generator reads fewer tokens.

Each context is split into sentences (nbllm.text.sentences); each sentence is embedded with
the collection's embedder and scored by its cosine similarity to the question. A sentence is
kept when it scores at least `threshold` times the context's best sentence (the best one is
always kept; only it when the best scores <= 0); kept sentences stay in their order. The
hits keep the whole chunk in `full_text`.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..text import sentences

THRESHOLD = 0.5


def check(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ConfigError(
            f"--compress-threshold must be > 0 and <= 1 (got {threshold!r}): the share of a context's "
            "best sentence score a sentence needs to be kept"
        )


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=-1, keepdims=True), 1e-12)


def keep(scores: list[float], threshold: float) -> list[int]:
    """Indices of the sentences kept: score >= threshold * best (best > 0), always the best."""
    best = int(np.argmax(scores))
    if scores[best] <= 0:
        return [best]
    return [i for i, s in enumerate(scores) if i == best or s >= threshold * scores[best]]


def compress(hits: list[dict], question_vec, embed, threshold: float = THRESHOLD) -> list[dict]:
    """The hits with `text` cut to the sentences that bear on the question, `full_text` the
    chunk as retrieved, and `sentences_kept` 'kept/total'. embed(texts) -> vectors."""
    split = [sentences(h["text"]) or [h["text"]] for h in hits]
    flat = [s for parts in split for s in parts]
    if not flat:
        return [{**h, "full_text": h["text"]} for h in hits]
    scores = (_unit(embed(flat)) @ _unit(question_vec)).tolist()
    out, at = [], 0
    for h, parts in zip(hits, split):
        mine, at = scores[at : at + len(parts)], at + len(parts)
        kept = keep(mine, threshold) if len(parts) > 1 else [0]
        text = h["text"] if len(kept) == len(parts) else " ".join(parts[i] for i in kept)
        out.append({**h, "text": text, "full_text": h["text"], "sentences_kept": f"{len(kept)}/{len(parts)}"})
    return out


def report(before: int, after: int, tokenizer: str) -> tuple[dict, str]:
    """(res.compression, its notice line)."""
    saved = before - after
    share = round(100 * saved / before) if before else 0
    figures = {"tokens_before": before, "tokens_after": after, "tokens_saved": saved, "tokenizer": tokenizer}
    return figures, f"compress: kept {after} of {before} context tokens ({share}% saved)"
