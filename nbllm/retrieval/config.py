"""Options of %rag index / %%rag / %rag explore, list and drop: one field per flag.

Plain dataclasses (no heavy imports); nbllm.rag's functions take their fields as keywords
and check the values (the messages name the flags).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import JsonConfig, option
from ..errors import ConfigError
from .stores import STORES, check_store

DISTANCES = ("l2", "ip", "cosine")
Distance = Literal[DISTANCES]
INDEXES = ("auto", "flat", "ann")
Index = Literal[INDEXES]
UNITS = ("tokens", "chars")
Unit = Literal[UNITS]
STRATEGIES = ("direct", "sentence-window", "auto-merging")  # nbllm.retrieval.split.STRATEGIES
Strategy = Literal[STRATEGIES]
REWRITES = ("multi-query", "hyde")  # nbllm.retrieval.rewrite.REWRITES
Rewrite = Literal[REWRITES]


@dataclass
class Location(JsonConfig):
    """Where the collections live (default: in memory); %rag list and drop take only this."""

    persist: str | None = option(None, "a folder for a persistent store (Chroma, FAISS or LanceDB)")
    server: str | None = option(None, "a running Chroma server, e.g. http://127.0.0.1:8000")
    store: str | None = option(
        None,
        "the vector store: " + " | ".join(STORES) + " (default: the --persist "
        "folder's own, else the one last used for the collection, else chroma)",
    )

    def __post_init__(self):
        self._check_numbers()
        if self.store is not None:
            check_store(self.store)


@dataclass
class CollectionOptions(Location):
    collection: str = option("default", "collection name")


@dataclass
class IndexOptions(CollectionOptions):
    """%rag index PATH|GLOB|VAR: load, split, embed, store."""

    chunk_size: int | None = option(None, "chunk size (default: 128 tokens / 512 chars)")
    overlap: int | None = option(None, "overlap between chunks (default: 16 tokens / 64 chars)")
    unit: Unit = option("tokens", "sizes in embedder tokens or characters: " + " | ".join(UNITS))
    embedder: str = option("minilm", "minilm, an encoder folder or a hub id")
    distance: Distance = option("l2", "the collection's distance: " + " | ".join(DISTANCES))
    index: Index = option(
        "auto",
        "faiss/lancedb search: flat (exact) | ann (FAISS HNSW, LanceDB IVF) | auto (flat "
        "below 20000 chunks, ann above); Chroma is always HNSW",
    )
    text_field: str | None = option(None, "the field holding the text in csv/json/jsonl/records (or a SQLite column)")
    table: str | None = option(None, "the SQLite tables to index, a name or comma list (default: every table)")
    strategy: Strategy = option(
        "direct",
        "what is indexed: direct (the chunks) | sentence-window (one chunk per sentence, its --window "
        "neighbours kept) | auto-merging (--child-size children of --chunk-size parents)",
    )
    window: int = option(2, "sentence-window: the sentences kept on each side of a hit")
    child_size: int | None = option(None, "auto-merging: the children's size (default: --chunk-size // 4)")


@dataclass
class ExploreOptions(CollectionOptions):
    """%rag explore: the explorer widget over a collection."""

    k: int = option(4, "chunks to retrieve")

    def __post_init__(self):
        super().__post_init__()
        if self.k < 1:
            raise ConfigError(f"--k must be >= 1 (got {self.k}): the number of chunks to retrieve")


@dataclass
class QueryOptions(ExploreOptions):
    """%%rag QUESTION: retrieve, then answer citing the chunks."""

    hybrid: bool = option(False, "fuse BM25 full-text results with dense ones (RRF)")
    rerank: bool = option(False, "re-score the top candidates (the LM's likelihood of the question, or --reranker)")
    reranker: str | None = option(None, "a cross-encoder (folder or hub id) for --rerank")
    exact: bool = option(False, "brute-force search: l2, ip and cosine side by side, with HNSW ranks")
    generate: bool = option(True, "answer from the retrieved chunks", no_help="retrieve only, no answer")
    where: str | None = option(
        None, 'metadata filter: source=lora.md (key=value,...) or JSON \'{"source": "lora.md"}\''
    )
    max_new_tokens: int = option(64, "answer length limit")
    embedder: str | None = option(
        None, "embed the question with this encoder (default: the collection's; another one is refused)"
    )
    distance: Distance | None = option(
        None, "search by another distance than the collection's, brute force: " + " | ".join(DISTANCES)
    )
    strategy: Strategy | None = option(
        None,
        "how hits become contexts (default: the collection's): direct | sentence-window (each hit's "
        "window) | auto-merging (enough children of a parent: the parent)",
    )
    merge_ratio: float = option(0.5, "auto-merging: the share of a parent's children that must be hits to merge")
    rewrite: Rewrite | None = option(
        None,
        "rewrite the question before retrieval with the language model: multi-query (--queries "
        "paraphrases, each retrieves, fused by RRF) | hyde (a hypothetical answer passage retrieves too)",
    )
    queries: int = option(3, "multi-query: the paraphrases to write, 1 to 10")
    compress: bool = option(False, "keep in each context only the sentences that bear on the question")
    compress_threshold: float = option(
        0.5, "compress: keep a sentence scoring at least this share of its context's best (0 < F <= 1)"
    )
    cache: bool = option(False, "answer a question like one answered before in this session from the cache")
    cache_threshold: float = option(0.95, "cache: the cosine similarity to a cached question that reuses its answer")

    def __post_init__(self):
        super().__post_init__()
        from . import cache, compress, rewrite

        if not 0 < self.merge_ratio <= 1:
            raise ConfigError(f"--merge-ratio must be > 0 and <= 1 (got {self.merge_ratio})")
        rewrite.check(self.rewrite, self.queries, True, None)  # a generator: checked by nbllm.rag.query
        compress.check(self.compress_threshold)
        cache.check(self.cache_threshold)
        for flag, value, default, needs, on in (
            ("--queries", self.queries, 3, "--rewrite multi-query", self.rewrite == "multi-query"),
            ("--compress-threshold", self.compress_threshold, 0.5, "--compress", self.compress),
            ("--cache-threshold", self.cache_threshold, 0.95, "--cache", self.cache),
        ):
            if value != default and not on:
                raise ConfigError(f"{flag} {value} only takes effect with {needs}; add {needs}, or drop {flag}")
        if self.reranker is not None and not self.rerank:
            raise ConfigError(
                f"--reranker {self.reranker} only takes effect with --rerank; add --rerank, or drop --reranker"
            )
