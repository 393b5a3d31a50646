"""Result objects for %rag: deterministic __repr__, escaped HTML, to_pandas()."""

from __future__ import annotations

import html
import re

from ..display import Result

HIT_COLUMNS = ["rank", "id", "source", "page", "text", "score", "distance"]
CITATION_COLUMNS = ["sentence", "n", "source", "similarity", "by"]


def _short(text: str, n: int = 70) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def highlight(text: str, terms) -> str:
    """HTML-escaped text with the matched terms in <mark> (escaping first, piece by piece)."""
    terms = [t for t in terms if t]
    if not terms:
        return html.escape(text)
    pattern = re.compile(r"(?i)\b(" + "|".join(map(re.escape, sorted(terms, key=len, reverse=True))) + r")\b")
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def hit_card(n: int, hit: dict, terms=(), cited: bool = False) -> str:
    """One retrieved chunk as a card: number, source, page, scores, matched terms, escaped text."""
    page = f", page {hit['page']}" if hit.get("page") else ""
    score = f"score {hit['score']:.4f}" if hit.get("score") is not None else ""
    dist = f", distance {hit['distance']:.4f}" if hit.get("distance") is not None else ""
    matched = f" <small>matched: {html.escape(', '.join(terms))}</small>" if terms else ""
    style = f"border:1px solid {'#2a7' if cited else '#ccc'};border-radius:4px;padding:4px 8px;margin:4px 0"
    source = html.escape(str(hit["source"]) + page)
    return (
        f'<div class="nbllm-hit" style="{style}"><b>[{n}]</b> <code>{source}</code> '
        f"<small>{html.escape(score + dist)}</small>{matched}"
        f"<div style='white-space:pre-wrap'>{highlight(hit['text'], terms)}</div></div>"
    )


class IndexReport(Result):
    """What %rag index did: documents loaded, chunks added/updated/unchanged/removed, what was skipped."""

    _summary_fields = (
        "collection",
        "documents",
        "chunks",
        "added",
        "updated",
        "unchanged",
        "removed",
        "skipped",
        "embedded",
        "embedder",
        "distance",
        "where",
    )

    def __init__(
        self,
        collection,
        documents,
        chunks,
        added,
        updated,
        unchanged,
        removed,
        skipped_files,
        embedded,
        embedder,
        distance,
        where,
        total,
    ):
        self.collection, self.documents, self.chunks = collection, documents, chunks
        self.added, self.updated, self.unchanged, self.removed = added, updated, unchanged, removed
        self.skipped_files, self.embedded, self.embedder = skipped_files, embedded, embedder
        self.distance, self.where, self.total = distance, where, total

    @property
    def skipped(self) -> int:
        return len(self.skipped_files)

    def __repr__(self) -> str:
        lines = [super().__repr__(), f"collection '{self.collection}' now holds {self.total} chunks"]
        lines += [f"skipped {src}: {why}" for src, why in self.skipped_files]
        return "\n".join(lines)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.skipped_files, columns=["source", "reason"])

    def _repr_html_(self) -> str:
        skipped = self.to_pandas().to_html(index=False, escape=True) if self.skipped_files else ""
        return (
            f"<div class='nbllm nbllm-rag-index'><pre>{html.escape(repr(self).splitlines()[0])}</pre>"
            f"<p>collection <code>{html.escape(self.collection)}</code> now holds {self.total} chunks</p>"
            f"{skipped}</div>"
        )


class CollectionsResult(Result):
    """%rag list: collections with counts, embedder, distance and strategy (shown when not direct)."""

    def __init__(self, rows: list[dict], where: str):
        self.rows, self.where = rows, where

    def __repr__(self) -> str:
        if not self.rows:
            return f"no collections in {self.where}"
        lines = [f"collections in {self.where}:"]
        lines += [
            f"  {r['collection']:<20} {r['chunks']:>7} chunks  {r['embedder']} ({r['dim']}-d), {r['distance']}"
            + (f", {r['strategy']}" if r.get("strategy", "direct") != "direct" else "")
            for r in self.rows
        ]
        return "\n".join(lines)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(
            self.rows,
            columns=[
                "collection",
                "chunks",
                "embedder",
                "dim",
                "distance",
                "chunk_size",
                "overlap",
                "unit",
                "strategy",
            ],
        )

    def _repr_html_(self) -> str:
        return f"<div class='nbllm'><p>{html.escape(self.where)}</p>{self.to_pandas().to_html(index=False)}</div>"


class RAGResult(Result):
    """%%rag: the question, the retrieved chunks (rank order) and the answer that cites them.

    .question, .contexts (chunk texts in rank order), .answer (the model's text or None),
    .hits (DataFrame), .citations (DataFrame: sentence, n, source, similarity, by), .config,
    .merges (auto-merging: parents that replaced their children).

    What it cost: .latency (seconds: {"retrieve", "generate", "total"}, and "rewrite", "compress",
    "cache" when used; never in the repr, which stays deterministic) and .context_tokens (tokens
    of the contexts given to the generator, in .context_tokenizer: the generator's when it
    answered, else the embedder's).

    --rewrite: .rewrites (the paraphrases, or [the hypothetical passage]; None without it) and a
    found_by column in .hits (the queries that retrieved each chunk, 0 being the question).
    --compress: .contexts are the kept sentences, .hits' full_text the chunks as retrieved, and
    .compression {"tokens_before", "tokens_after", "tokens_saved", "tokenizer"}.
    --cache: .cache_hit (True: answered from the cache, no retrieval or generation), and on a hit
    .cached_question and .cache_similarity; .cache_stats {"lookups", "hits", "hit_rate"} of this
    collection and configuration in the session. Without --cache, .cache_hit is None."""

    def __init__(
        self,
        question: str,
        hits: list[dict],
        answer: str | None,
        citations: list[dict],
        config: dict,
        notices: list[str] | None = None,
        prompt: str | None = None,
        hnsw_ids: list[str] | None = None,
        *,
        latency: dict | None = None,
        context_tokens: int | None = None,
        context_tokenizer: str | None = None,
        rewrites: list[str] | None = None,
        compression: dict | None = None,
        cache_hit: bool | None = None,
        cached_question: str | None = None,
        cache_similarity: float | None = None,
        cache_stats: dict | None = None,
    ):
        self.question, self._hits, self.answer, self._citations = question, hits, answer, citations
        self.config, self.notices, self.prompt, self.hnsw_ids = config, notices or [], prompt, hnsw_ids
        self.latency = latency or {}
        self.context_tokens, self.context_tokenizer = context_tokens, context_tokenizer
        self.rewrites, self.compression = rewrites, compression
        self.cache_hit, self.cached_question, self.cache_similarity = cache_hit, cached_question, cache_similarity
        self.cache_stats = cache_stats

    @property
    def contexts(self) -> list[str]:
        return [h["text"] for h in self._hits]

    @property
    def merges(self) -> int:
        """auto-merging: how many parents replaced their retrieved children (0 otherwise)."""
        return self.config.get("merges", 0)

    @property
    def hits(self):
        import pandas as pd

        rows = [{"rank": n, **h} for n, h in enumerate(self._hits, 1)]
        extra = [c for c in (rows[0] if rows else {}) if c not in HIT_COLUMNS and c != "meta"]
        df = pd.DataFrame(rows, columns=HIT_COLUMNS + extra)
        df["page"] = df["page"].astype("Int64")
        return df

    @property
    def citations(self):
        import pandas as pd

        rows = [{**c, "source": self._hits[c["n"] - 1]["source"]} for c in self._citations]
        return pd.DataFrame(rows, columns=CITATION_COLUMNS)

    @property
    def cited(self) -> list[int]:
        """The chunk numbers the answer cites (by the model or by similarity), sorted."""
        return sorted({c["n"] for c in self._citations})

    @property
    def cited_by(self) -> str | None:
        """'model' when the model wrote valid [n] itself, 'similarity' when nbllm attributed them."""
        return self._citations[0]["by"] if self._citations else None

    @property
    def cited_answer(self) -> str | None:
        """The answer with similarity citations added as [n] (the model's own text when it cited)."""
        from .generate import with_markers

        return None if self.answer is None else with_markers(self.answer, self._citations)

    @property
    def sources(self) -> list[str]:
        return [h["source"] for h in self._hits]

    def to_pandas(self):
        return self.hits

    def summary(self) -> dict:
        return {
            "question": self.question,
            "collection": self.config["collection"],
            "k": len(self._hits),
            "sources": self.sources,
            "cited": self.cited,
            "cited_by": self.cited_by,
        }

    def __repr__(self) -> str:
        lines = [super().__repr__()] + [f"notice: {n}" for n in self.notices]
        lines += [f"rewrite: {_short(r, 100)}" for r in self.rewrites or ()]
        for n, h in enumerate(self._hits, 1):
            page = f" p{h['page']}" if h.get("page") else ""
            lines.append(f"[{n}] {h['score']:.3f} {h['source']}{page}: {_short(h['text'])}")
        if self.answer is not None:
            lines.append(f"answer: {self.cited_answer}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from .search import matched_terms

        head = html.escape(super().__repr__())
        notices = "".join(f"<p><i>notice: {html.escape(n)}</i></p>" for n in self.notices)
        if self.rewrites:
            items = "".join(f"<li>{html.escape(r)}</li>" for r in self.rewrites)
            notices += f"<p><b>Rewrites</b> ({html.escape(str(self.config.get('rewrite')))}):</p><ol>{items}</ol>"
        cited = set(self.cited)
        cards = "".join(
            hit_card(n, h, matched_terms(self.question, h["text"]), n in cited) for n, h in enumerate(self._hits, 1)
        )
        answer = ""
        if self.answer is not None:
            how = {
                "model": "citations written by the model",
                "similarity": "the model cited nothing; [n] added by embedding similarity",
                None: "no citations",
            }[self.cited_by]
            answer = (
                f"<div class='nbllm-answer'><b>Answer</b> <small>({html.escape(how)})</small>"
                f"<p style='white-space:pre-wrap'>{html.escape(self.cited_answer)}</p></div>"
            )
        return (
            f"<div class='nbllm nbllm-rag'><code>{head}</code>{notices}"
            f"<p><b>Question:</b> {html.escape(self.question)}</p>{cards}{answer}</div>"
        )
