"""Retrieval: dense (Chroma's HNSW), exact (numpy brute force, all three distances), BM25,
reciprocal-rank fusion, and re-ranking.

A hit is a dict: id, text, source, page, offset, distance, score (higher is better). Ties are
broken by id, so the same query always gives the same order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from . import store

RRF_K = 60
_BM25: dict[tuple, tuple] = {}
_ROWS: dict[tuple, dict] = {}
WRITES = [0]  # bumped by every index/drop so cached corpora are rebuilt


def _hit(id_, text, meta, distance=None, score=None) -> dict:
    meta = meta or {}
    page = meta.get("page", 0)
    return {
        "id": id_,
        "text": text,
        "source": meta.get("source", ""),
        "page": page if page else None,
        "offset": meta.get("offset", 0),
        "distance": distance,
        "score": score,
        "meta": meta,  # the chunk's whole metadata (sentence windows, parents); not a .hits column
    }


def similarity(distance: float, space: str) -> float:
    """Higher is better: 1 - d for ip and cosine (the dot product / cosine), -d for squared L2."""
    return -distance if space == "l2" else 1.0 - distance


def distances(matrix: np.ndarray, query: np.ndarray) -> dict[str, np.ndarray]:
    """Chroma's three distances from `query` to every row, by brute force:
    l2 = sum((a - b)^2), ip = 1 - a.b, cosine = 1 - a.b / (|a| |b|)."""
    matrix, query = np.asarray(matrix, dtype=np.float32), np.asarray(query, dtype=np.float32)
    dots = matrix @ query
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(query)
    return {
        "l2": (matrix**2).sum(1) - 2 * dots + (query**2).sum(),
        "ip": 1.0 - dots,
        "cosine": 1.0 - dots / np.maximum(norms, 1e-12),
    }


def top_k(values: np.ndarray, ids: list[str], k: int) -> list[int]:
    """Indices of the k smallest values, ties broken by id."""
    k = min(k, len(ids))
    if k <= 0:
        return []
    cand = np.argpartition(values, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
    cutoff = values[cand].max()
    cand = np.flatnonzero(values <= cutoff)  # everything tied with the k-th too
    return sorted(cand.tolist(), key=lambda i: (round(float(values[i]), 6), ids[i]))[:k]


def dense(collection, query_vec: np.ndarray, k: int, where=None) -> list[dict]:
    space = store.info(collection).get("distance", "l2")
    got = collection.query(
        query_embeddings=[np.asarray(query_vec, dtype=np.float32).tolist()],
        n_results=k,
        where=where,
        include=["documents", "metadatas", "distances"],
    )
    hits = [
        _hit(i, t, m, float(d), similarity(float(d), space))
        for i, t, m, d in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
    ]
    return sorted(hits, key=lambda h: (round(h["distance"], 6), h["id"]))


def rows(collection, where=None) -> dict:
    """All ids, texts, metadatas and embeddings (cached until the next index run)."""
    key = (collection.id, collection.count(), json.dumps(where, sort_keys=True), WRITES[0])
    if key not in _ROWS:
        _ROWS.clear()
        got = store.all_rows(collection, where=where)
        got["matrix"] = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)
        _ROWS[key] = got
    return _ROWS[key]


def exact(collection, query_vec: np.ndarray, k: int, where=None, space: str | None = None) -> list[dict]:
    """Brute-force top-k by `space` (default: the collection's), with all three distances and
    each chunk's rank under each of them."""
    space = space or store.info(collection).get("distance", "l2")
    data = rows(collection, where)
    if not data["ids"]:
        return []
    d = distances(data["matrix"], query_vec)
    ranks = {name: np.empty(len(data["ids"]), dtype=int) for name in d}
    for name, values in d.items():
        order = sorted(range(len(values)), key=lambda i: (round(float(values[i]), 6), data["ids"][i]))
        ranks[name][order] = np.arange(1, len(order) + 1)
    hits = []
    for i in top_k(d[space], data["ids"], k):
        hit = _hit(
            data["ids"][i],
            data["documents"][i],
            data["metadatas"][i],
            float(d[space][i]),
            similarity(float(d[space][i]), space),
        )
        hit.update({name: float(d[name][i]) for name in d})
        hit.update({f"rank_{name}": int(ranks[name][i]) for name in d})
        hits.append(hit)
    return hits


# ---------------------------------------------------------------- BM25

STOPWORDS = None


def words(text: str) -> list[str]:
    global STOPWORDS
    if STOPWORDS is None:
        from bm25s.stopwords import STOPWORDS_EN

        STOPWORDS = set(STOPWORDS_EN)
    return [w for w in re.findall(r"(?u)\b\w\w+\b", text.lower()) if w not in STOPWORDS]


def matched_terms(query: str, text: str) -> list[str]:
    present = set(words(text))
    return sorted({w for w in words(query) if w in present})


def bm25(collection, query: str, k: int, where=None) -> list[dict]:
    """Full-text BM25 (bm25s) over the collection's chunks; chunks with no query word are left out."""
    import bm25s

    data = rows(collection, where)
    key = (collection.id, len(data["ids"]), json.dumps(where, sort_keys=True), WRITES[0])
    if key not in _BM25:
        _BM25.clear()
        retriever = bm25s.BM25()
        retriever.index([words(t) or ["\x00"] for t in data["documents"]], show_progress=False)
        _BM25[key] = retriever
    retriever = _BM25[key]
    terms = words(query)
    if not terms or not data["ids"]:
        return []
    scores = retriever.get_scores(terms)
    order = [i for i in top_k(-scores, data["ids"], k) if scores[i] > 0]
    return [_hit(data["ids"][i], data["documents"][i], data["metadatas"][i], None, float(scores[i])) for i in order]


def rrf(*ranked: list[dict], k: int, c: int = RRF_K) -> list[dict]:
    """Reciprocal-rank fusion: each hit scores sum(1 / (c + rank)) over the lists it is in."""
    fused, first = {}, {}
    for hits in ranked:
        for rank, hit in enumerate(hits, 1):
            fused[hit["id"]] = fused.get(hit["id"], 0.0) + 1.0 / (c + rank)
            first.setdefault(hit["id"], dict(hit))
    order = sorted(fused, key=lambda i: (-round(fused[i], 9), i))[:k]
    out = []
    for i in order:
        hit = first[i]
        hit["score"] = fused[i]
        out.append(hit)
    return out


def query_hits(col, collection: str, vec, text: str, k: int, where, space: str, brute_force: bool, hybrid: bool):
    """(hits, HNSW ids or None) for one query (vector `vec`, text `text`): dense (HNSW), or exact
    by `space` beside HNSW's ranks (brute_force, or a distance the collection was not built with);
    BM25 fused in by RRF when hybrid. A --where that matches no chunk is a DataError."""
    hnsw_ids = None
    if brute_force or space != store.info(col).get("distance", "l2"):
        hits = exact(col, vec, k, where, space)
        hnsw_ids = [h["id"] for h in dense(col, vec, k, where)]
        for h in hits:
            h["hnsw_rank"] = hnsw_ids.index(h["id"]) + 1 if h["id"] in hnsw_ids else None
    else:
        hits = dense(col, vec, k, where)
    if not hits:
        raise DataError(f"no chunk of '{collection}' matches --where {json.dumps(where)}; loosen the filter")
    if hybrid:
        hits = rrf(hits, bm25(col, text, k, where), k=k)
    return hits, hnsw_ids


# ---------------------------------------------------------------- re-ranking

RERANK_PROMPT = "Passage: {passage}\n\nWrite a question that this passage answers.\nQuestion: "


def lm_scores(model, tokenizer, question: str, passages: list[str], batch_size: int = 4) -> list[float]:
    """Mean log-probability of the question's tokens given each passage (a language model as
    re-ranker: how well does the passage 'explain' the question?), scored by the model handle
    (nbllm.lm: the prompt's shared prefix runs once, several passages per pass)."""
    from ..lm import LM

    q_ids = tokenizer(question.strip(), add_special_tokens=False)["input_ids"]
    if not q_ids:
        raise ConfigError("the question is empty; nothing to re-rank by")
    requests = [
        [(tokenizer(RERANK_PROMPT.format(passage=p.strip()), add_special_tokens=False)["input_ids"], q_ids)]
        for p in passages
    ]
    sums = LM(model, tokenizer, "reranker").loglikelihood_tokens(requests, batch_size)
    return [s[0] / len(q_ids) for s in sums]


def rerank(question: str, hits: list[dict], k: int, scorer) -> list[dict]:
    """Re-score candidates with `scorer(question, texts) -> scores` and keep the best k."""
    if not hits:
        return []
    scores = scorer(question, [h["text"] for h in hits])
    for h, s, before in zip(hits, scores, range(1, len(hits) + 1)):
        h["retrieval_rank"], h["score"] = before, float(s)
    return sorted(hits, key=lambda h: (-round(h["score"], 6), h["id"]))[:k]


def cross_encoder_scorer(name: str):
    from sentence_transformers import CrossEncoder

    from .. import models

    if models._is_hub_id(name) and not Path(name).expanduser().exists():
        models.require_hub(name, "reranker")
    try:
        model = CrossEncoder(name)
    except (OSError, ValueError) as err:
        raise models._hub_error(name, err) from None
    return lambda question, texts: [float(s) for s in model.predict([(question, t) for t in texts])]
