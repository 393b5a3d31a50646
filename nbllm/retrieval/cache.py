"""A semantic cache of answered questions (%%rag --cache), in memory for the session.

A cache key is the collection, where it lives and every setting that changes the answer (k,
distance, strategy, hybrid, rerank, rewrite, compress, the model, --where, ...), as JSON. Under
a key, a question whose embedding has cosine similarity >= the threshold with a question
answered before gets that answer and those hits back, with no retrieval and no generation.
The entries of a key are dropped when its collection changed since they were stored (another
index or drop run in this process: search.WRITES, or a different chunk count).

Statistics (lookups, hits, hit_rate) are kept per key, i.e. per collection and configuration,
from the first lookup of the session (or since clear()); stats() with no key sums all keys.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import ConfigError

THRESHOLD = 0.95
MAX_ENTRIES = 1000  # per key; the oldest go first
_CACHE: dict[str, dict] = {}


def check(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ConfigError(
            f"--cache-threshold must be > 0 and <= 1 (got {threshold!r}): the cosine similarity to a "
            "question answered before that reuses its answer"
        )


def key(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def _unit(vec) -> np.ndarray:
    vec = np.asarray(vec, dtype=np.float32)
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


def _slot(key: str, state) -> dict:
    slot = _CACHE.setdefault(key, {"state": state, "entries": [], "lookups": 0, "hits": 0})
    if slot["state"] != state:  # the collection changed: its answers may be stale
        slot["state"], slot["entries"] = state, []
    return slot


def lookup(key: str, state, vec, threshold: float = THRESHOLD):
    """(result, question, similarity) of the most similar cached question at or above the
    threshold, else None; counts the lookup (and the hit)."""
    slot = _slot(key, state)
    slot["lookups"] += 1
    if not slot["entries"]:
        return None
    sims = np.stack([e[1] for e in slot["entries"]]) @ _unit(vec)
    best = int(np.argmax(np.round(sims, 6)))  # the first of equals: the earliest stored
    similarity = round(float(sims[best]), 6)
    if similarity < threshold:
        return None
    slot["hits"] += 1
    question, _, result = slot["entries"][best]
    return result, question, similarity


def put(key: str, state, question: str, vec, result) -> None:
    slot = _slot(key, state)
    slot["entries"].append((question, _unit(vec), result))
    del slot["entries"][:-MAX_ENTRIES]


def stats(key: str | None = None) -> dict:
    """{"lookups", "hits", "hit_rate"} of one key, or of the whole cache."""
    slots = [_CACHE[key]] if key is not None and key in _CACHE else [] if key is not None else list(_CACHE.values())
    lookups, hits = sum(s["lookups"] for s in slots), sum(s["hits"] for s in slots)
    return {"lookups": lookups, "hits": hits, "hit_rate": round(hits / lookups, 4) if lookups else 0.0}


def entries() -> int:
    return sum(len(s["entries"]) for s in _CACHE.values())


def clear() -> int:
    """Forget every cached answer and the statistics; returns how many answers were dropped."""
    n = entries()
    _CACHE.clear()
    return n


def notice(stats: dict, hit: tuple | None = None) -> str:
    """The notice line of a lookup: hit (with the similarity and the question matched) or miss, and the counts."""
    counts = (
        f"{stats['lookups']} lookup{'s' if stats['lookups'] != 1 else ''}, {stats['hits']} "
        f"hit{'s' if stats['hits'] != 1 else ''}: {round(100 * stats['hit_rate'])}% for this configuration"
    )
    if hit is None:
        return f"cache: miss ({counts})"
    return f"cache: hit, similarity {hit[2]:.2f} to {hit[1]!r} ({counts})"


def replay(question: str, hit: tuple, stats: dict, latency: dict):
    """A RAGResult for `question` from a lookup's hit: the cached hits, answer and citations (no
    retrieval, no generation), cache_hit True, the question it matched and the statistics."""
    from .results import RAGResult

    cached, asked, similarity = hit
    res = RAGResult(
        question,
        [dict(h) for h in cached._hits],
        cached.answer,
        list(cached._citations),
        cached.config,
        [n for n in cached.notices if not n.startswith("cache:")] + [notice(stats, hit)],
        cached.prompt,
        cached.hnsw_ids,
        latency=latency,
        context_tokens=cached.context_tokens,
        context_tokenizer=cached.context_tokenizer,
        rewrites=cached.rewrites,
        compression=cached.compression,
        cache_hit=True,
        cached_question=asked,
        cache_similarity=similarity,
        cache_stats=stats,
    )
    res.provenance = cached.provenance
    return res
