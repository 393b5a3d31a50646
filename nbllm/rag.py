"""Retrieval-augmented generation from a script: the backend of %rag / %%rag.

    import nbllm.rag as rag
    rag.index("nbllm/data/corpus")                       # load, split, embed, store (Chroma)
    rag.index("nbllm/data/corpus", store="faiss", persist="vectors/")  # or FAISS / LanceDB
    res = rag.query("How is LoRA's B initialised?", k=3)  # retrieve, then answer citing [n]
    res.hits, res.contexts, res.answer, res.citations, res.latency["total"], res.context_tokens
    rag.query(q, rewrite="multi-query", compress=True, cache=True)  # paraphrases, fewer tokens, reuse
    rag.clear_cache()

Everything is read, split and embedded before anything is written, so a failed run never
leaves a persistent collection half-changed.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

from .errors import ConfigError, DataError
from .retrieval.store import server_errors

DEFAULTS = {"chunk_size": 128, "overlap": 16, "unit": "tokens", "embedder": "minilm", "distance": "l2", "k": 4}


def corpus_dir() -> Path:
    """The small original corpus shipped for the RAG lab and tests."""
    return Path(__file__).resolve().parent / "data" / "corpus"


def _where(where):
    """A Chroma metadata filter from a dict, JSON ('{"source": "lora.md"}') or key=value pairs
    ('source=lora.md,page=2'; numbers become ints), the form that survives IPython's {var} expansion."""
    if where is None or isinstance(where, dict):
        return where or None
    text = where.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":  # quotes the magic's parser kept
        text = text[1:-1].strip()
    if text and not text.startswith(("{", "[")) and "=" in text:
        value = {}
        for pair in text.split(","):
            key, _, val = pair.partition("=")
            value[key.strip()] = int(val) if val.strip().lstrip("-").isdigit() else val.strip()
        return value if len(value) == 1 else {"$and": [{k: v} for k, v in value.items()]}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        try:  # IPython may have turned the JSON into a Python dict's repr
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ConfigError(
                f"--where is not valid JSON ({err.msg}); write e.g. --where source=lora.md or "
                '--where \'{"source": "lora.md"}\''
            ) from None
    if not isinstance(value, dict):
        raise ConfigError('--where must be a JSON object such as {"source": "lora.md"}, or source=lora.md')
    _check_where(value)
    return value or None


def _check_where(where: dict) -> None:
    """Refuse an operator no store supports before any query (Chroma's own error is a raw ValueError)."""
    from .retrieval.stores.base import _COMPARE

    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond or not all(isinstance(c, dict) for c in cond):
                raise ConfigError(
                    f"--where {key} takes a non-empty list of filters, e.g. "
                    f'{{"{key}": [{{"source": "a.md"}}, {{"page": 2}}]}}'
                )
            for c in cond:
                _check_where(c)
        elif key.startswith("$"):
            raise ConfigError(f"--where operator {key!r} is not known; use $and or $or at the top level")
        elif isinstance(cond, dict):
            for op in cond:
                if op not in _COMPARE:
                    raise ConfigError(f"--where operator {op!r} is not supported; use one of {', '.join(_COMPARE)}")


@server_errors
def index(
    source,
    collection: str = "default",
    *,
    chunk_size: int | None = None,
    overlap: int | None = None,
    unit: str = "tokens",
    embedder: str = "minilm",
    distance: str = "l2",
    text_field: str | None = None,
    table: str | None = None,
    persist: str | None = None,
    server: str | None = None,
    store: str | None = None,
    index: str = "auto",
    strategy: str = "direct",
    window: int = 2,
    child_size: int | None = None,
):
    """Load, split, embed and store `source` (path, folder, glob, list or DataFrame) in a collection
    of `store` (chroma, faiss or lancedb; `index`: flat, ann or auto on faiss/lancedb); returns an
    IndexReport. Re-indexing an unchanged corpus adds nothing. `table`: the SQLite tables to read
    (a name or comma list; default every table).

    strategy: direct (the chunks), sentence-window (one chunk per sentence, metadata doc, sentence
    and window: the sentence with `window` neighbours each side) or auto-merging (parents of
    chunk_size split into children of child_size, default chunk_size // 4; the children are indexed
    with metadata parent, parent_text and children). The collection records its strategy."""
    store_name = store  # the keyword; `store` below is the module
    from .retrieval import load, search, split, store
    from .retrieval.embed import get_embedder
    from .retrieval.results import IndexReport

    store.check_name(collection)
    store.check_distance(distance)
    kind = store.resolve(store_name, persist, server)
    store.check_index(index, kind)
    chunk_size = chunk_size if chunk_size is not None else (DEFAULTS["chunk_size"] if unit == "tokens" else 512)
    overlap = overlap if overlap is not None else (DEFAULTS["overlap"] if unit == "tokens" else 64)
    split.check_sizes(chunk_size, overlap, unit=unit)
    if strategy == "auto-merging" and child_size is None:
        child_size = max(1, chunk_size // 4)
    split.check_strategy(strategy, window, chunk_size, child_size)
    loaded = load.load(source, text_field, table)
    if not loaded.documents:
        why = "; ".join(f"{s}: {r}" for s, r in loaded.skipped[:3])
        raise DataError(f"nothing to index: no readable text in {source!r}" + (f" (skipped {why})" if why else ""))
    emb = get_embedder(embedder)
    split.check_sizes(chunk_size, overlap, emb.max_tokens, unit)
    length = emb.tokens if unit == "tokens" else len
    if strategy == "sentence-window":
        chunks = split.sentence_window_documents(loaded.documents, window)
    elif strategy == "auto-merging":
        chunks = split.auto_merging_documents(loaded.documents, chunk_size, overlap, child_size, length)
    else:
        chunks = split.split_documents(loaded.documents, chunk_size, overlap, length)
    chunks = list({c.id: c for c in chunks}.values())
    hashes = {c.id: split.text_hash(_hashed(c, strategy)) for c in chunks}
    built = {"strategy": strategy, "window": window if strategy == "sentence-window" else None}
    built["child_size"] = child_size if strategy == "auto-merging" else None

    made = store.client(persist, server, kind)
    existing = {}
    if collection in store.names(made):  # read-only checks before anything is written
        col = store.get_collection(collection, persist, server, kind)
        store.check_built(col, embedder, emb.dim, distance, index)
        _check_strategy(col, strategy, window, child_size)
        sources = sorted({c.source for c in chunks})
        for i in range(0, len(sources), 100):
            got = col.get(where={"source": {"$in": sources[i : i + 100]}}, include=["metadatas"])
            existing.update({id_: (m or {}).get("text_hash") for id_, m in zip(got["ids"], got["metadatas"])})
        origins = sorted({c.meta["origin"] for c in chunks if "origin" in c.meta})  # rows and defs now gone
        for i in range(0, len(origins), 100):
            got = col.get(where={"origin": {"$in": origins[i : i + 100]}}, include=["metadatas"])
            existing.update({id_: (m or {}).get("text_hash") for id_, m in zip(got["ids"], got["metadatas"])})
    todo = [c for c in chunks if existing.get(c.id) != hashes[c.id]]
    stale = sorted(set(existing) - set(hashes))
    before = emb.stats["embedded"]
    vectors = emb.embed([c.text for c in todo])  # everything is embedded before the first write
    embedded = emb.stats["embedded"] - before

    col = store.open_for_write(
        collection,
        embedder,
        emb.dim,
        distance,
        {"chunk_size": chunk_size, "overlap": overlap, "unit": unit, **built},
        persist,
        server,
        kind,
        index,
    )
    batch = made.get_max_batch_size() if hasattr(made, "get_max_batch_size") else None
    store.write(
        col,
        [c.id for c in todo],
        vectors,
        [c.text for c in todo],
        [_metadata(c, hashes[c.id]) for c in todo],
        stale,
        batch,
    )
    store.remember(collection, persist, server, kind)
    search.WRITES[0] += 1
    updated = sum(1 for c in todo if c.id in existing)
    report = IndexReport(
        collection,
        len(loaded.documents),
        len(chunks),
        len(todo) - updated,
        updated,
        len(chunks) - len(todo),
        len(stale),
        loaded.skipped,
        embedded,
        embedder,
        distance,
        store.where_text(persist, server, kind),
        col.count(),
    )
    from .provenance import attach  # the embedder's weights, the corpus's chunks, the options

    return attach(
        report,
        model=emb,
        name=embedder,
        data=sorted(hashes.items()),
        collection=collection,
        store=kind,
        flags={
            "chunk_size": chunk_size,
            "overlap": overlap,
            "unit": unit,
            "distance": distance,
            "index": index,
            **{k: v for k, v in built.items() if v is not None},
        },
    )


def _hashed(chunk, strategy: str) -> str:
    """What a chunk's text_hash covers: its text, and the window or parent a strategy stores with it."""
    if strategy == "sentence-window":
        return f"{chunk.text}\x00{chunk.meta['window']}"
    if strategy == "auto-merging":
        return f"{chunk.text}\x00{chunk.meta['parent']}\x00{chunk.meta['parent_text']}"
    return chunk.text


def _check_strategy(col, strategy: str, window: int, child_size) -> None:
    """Adding to a collection needs the strategy (and window / child size) it was built with."""
    from .retrieval.store import info

    built = info(col)
    have = built.get("strategy", "direct")
    if have != strategy:
        raise ConfigError(
            f"collection '{col.name}' was built with --strategy {have}, not {strategy}; use --strategy {have}, "
            f"or a new --collection: %rag index PATH --strategy {strategy} --collection NEW"
        )
    for key, value, flag in (("window", window, "--window"), ("child_size", child_size, "--child-size")):
        if built.get(key) is not None and value is not None and built[key] != value:
            raise ConfigError(
                f"collection '{col.name}' was built with {flag} {built[key]}, not {value}; use {flag} {built[key]}, "
                f"or a new --collection"
            )


def _apply_strategy(hits: list[dict], strategy: str, merge_ratio: float) -> tuple[list[dict], int]:
    """The hits as contexts: each sentence's window (the sentence kept as 'sentence'), or children
    replaced by their parent when at least merge_ratio of its children are hits (at the best
    child's rank). Returns (hits, merges)."""
    if strategy == "sentence-window":
        out = []
        for h in hits:
            meta = h.get("meta") or {}
            window = meta.get("window")
            out.append({**h, "sentence": h["text"], "text": window if window is not None else h["text"]})
        return out, 0
    if strategy != "auto-merging":
        return hits, 0
    groups: dict[str, list[dict]] = {}
    for h in hits:
        parent = (h.get("meta") or {}).get("parent")
        if parent is not None:
            groups.setdefault(parent, []).append(h)
    merged = {}
    for parent, kids in groups.items():
        children = int(kids[0]["meta"].get("children") or 1)
        if children > 1 and len(kids) >= merge_ratio * children:
            merged[parent] = kids
    out, done = [], set()
    for h in hits:
        parent = (h.get("meta") or {}).get("parent")
        if parent not in merged:
            out.append({**h, "merged": 0})
        elif parent not in done:
            done.add(parent)
            out.append({**h, "id": parent, "text": h["meta"]["parent_text"], "merged": len(merged[parent])})
    return out, len(merged)


def _metadata(chunk, text_hash: str) -> dict:
    meta = {
        k: v
        for k, v in chunk.meta.items()
        if isinstance(v, (str, int, float, bool)) and k not in ("source", "page", "offset", "text_hash")
    }
    return {**meta, "source": chunk.source, "page": chunk.page or 0, "offset": chunk.offset, "text_hash": text_hash}


def _language_model(model):
    """(model, tokenizer, template, name) of the generator `model` means (nbllm.lm.resolve): the
    template it was trained with answers the question."""
    from .lm import resolve

    lm = resolve(model)
    return lm.model, lm.tokenizer, lm.template, lm.name


def _lazy_language_model(model):
    """A function returning _language_model(model), loaded on the first call (retrieval alone never loads it)."""
    loaded = []

    def get():
        if not loaded:
            loaded.append(_language_model(model))
        return loaded[0]

    return get


def _checked_question(question) -> str:
    if not isinstance(question, str) or not question.strip():
        raise DataError("the question is empty; write it in the cell below %%rag (or pass it after the flags)")
    return question.strip()


def _query_strategy(collection: str, built: dict, strategy: str | None, merge_ratio: float) -> str:
    """The strategy asked for (or the collection's): direct, or the one the collection was built with."""
    from .retrieval.split import STRATEGIES

    have = built.get("strategy", "direct")  # collections from before strategies are direct
    strategy = strategy or have
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown --strategy {strategy!r}; use {', '.join(STRATEGIES)}")
    if strategy not in ("direct", have):
        raise ConfigError(
            f"collection '{collection}' was built with --strategy {have}, not {strategy}; re-index for it: "
            f"%rag index PATH --strategy {strategy} --collection NEW"
        )
    if not 0 < merge_ratio <= 1:
        raise ConfigError(f"--merge-ratio must be > 0 and <= 1 (got {merge_ratio})")
    return strategy


def _cache_key(config: dict, location, model, lm, uses_lm: bool, **settings) -> str:
    """Everything that changes the answer: the config, where the collection lives, the model (a
    variable's model by identity) and the generation settings."""
    from .retrieval import cache as answers

    name = None
    if uses_lm:
        name = lm()[3] if model is None or isinstance(model, str) else f"{lm()[3]}@{id(lm()[0])}"
    kept = {k: v for k, v in config.items() if k not in ("model", "merges")}
    return answers.key({**kept, "location": list(location), "lm": name, **settings})


@server_errors
def query(
    question: str,
    collection: str = "default",
    *,
    k: int = 4,
    model=None,
    generate: bool = True,
    hybrid: bool = False,
    rerank: bool = False,
    exact: bool = False,
    where=None,
    embedder: str | None = None,
    reranker: str | None = None,
    distance: str | None = None,
    candidates: int | None = None,
    max_new_tokens: int = 64,
    persist: str | None = None,
    server: str | None = None,
    store: str | None = None,
    strategy: str | None = None,
    merge_ratio: float = 0.5,
    rewrite: str | None = None,
    queries: int = 3,
    compress: bool = False,
    compress_threshold: float = 0.5,
    cache: bool = False,
    cache_threshold: float = 0.95,
):
    """Retrieve the top-k chunks for `question` and (unless generate=False) answer citing them.

    strategy (default: the collection's): sentence-window answers from each hit's window (the hit's
    own sentence in .hits' sentence column); auto-merging replaces the children of a parent by
    the parent when at least merge_ratio of them are hits (at the best child's rank).

    hybrid: fuse BM25 with dense results by reciprocal rank; rerank: re-score the top
    candidates (a cross-encoder named by `reranker`, else the language model's likelihood);
    exact: brute-force search with all three distances side by side (and HNSW's ranks).

    rewrite: "multi-query" (the language model writes `queries` paraphrases; each retrieves like
    the question and RRF fuses the lists) or "hyde" (it writes a hypothetical answer passage that
    retrieves beside the question); .rewrites holds what it wrote, .hits' found_by which queries
    found each chunk. It needs a language model: generate, or name a `model`.
    compress: keep in each context the sentences scoring >= compress_threshold of its best
    sentence's cosine to the question (.hits' full_text keeps the chunk; .compression counts the
    tokens). cache: reuse the answer to a question answered before in this session (cosine >=
    cache_threshold, same collection and settings; nbllm.rag.clear_cache() forgets them).

    Every result has .latency (seconds: retrieve, generate, total; rewrite, compress and cache
    when used) and .context_tokens (in .context_tokenizer: the generator's, else the embedder's)."""
    started = time.perf_counter()
    store_name = store  # the keyword; `store` below is the module
    from .retrieval import cache as answers
    from .retrieval import compress as compression
    from .retrieval import generate as gen
    from .retrieval import rewrite as rewriting
    from .retrieval import search, store
    from .retrieval.embed import get_embedder
    from .retrieval.results import RAGResult

    question = _checked_question(question)
    if k is None or k <= 0:
        raise ConfigError(f"--k must be >= 1 (got {k})")
    if distance is not None:
        store.check_distance(distance)
    rewriting.check(rewrite, queries, generate, model)
    compression.check(compress_threshold)
    answers.check(cache_threshold)
    where = _where(where)
    persist, server, kind = store.location(collection, persist, server, store_name)
    col = store.get_collection(collection, persist, server, kind)
    total = col.count()
    if total == 0:
        raise DataError(
            f"collection '{collection}' is empty; add documents with %rag index PATH --collection {collection}"
        )
    built = store.info(col)
    strategy = _query_strategy(collection, built, strategy, merge_ratio)
    name = built.get("embedder", "minilm")
    emb = get_embedder(name)
    if embedder is not None:
        store.check_embedder(col, embedder)  # by name: no need to load the other model
    notices = []
    if k > total:
        notices.append(f"--k {k} is more than the {total} chunks in '{collection}'; using k={total}")
        k = total
    space = distance or built.get("distance", "l2")
    pool = min(total, max(k, candidates or (3 * k if rerank else k)))
    lm = _lazy_language_model(model)
    config = {
        "collection": collection,
        "k": k,
        "distance": space,
        "hybrid": hybrid,
        "rerank": (reranker or "lm") if rerank else False,
        "exact": exact,
        "embedder": name,
        "model": None,  # the generator's name, once it answered (or rewrote)
        "where": where,
        "strategy": strategy,
        **({"merge_ratio": merge_ratio} if strategy == "auto-merging" else {}),
        "rewrite": rewrite,
        **({"queries": queries} if rewrite == "multi-query" else {}),
        "compress": compress,
        **({"compress_threshold": compress_threshold} if compress else {}),
    }

    clock = time.perf_counter()
    qvec = emb.embed([question])[0]
    latency = {"retrieve": time.perf_counter() - clock}
    if cache:  # ---------------------------------------------------------------- a question answered before?
        uses_lm = generate or rewrite is not None or (rerank and not reranker)
        key = _cache_key(
            config,
            (persist, server, kind),
            model,
            lm,
            uses_lm,
            generate=generate,
            max_new_tokens=max_new_tokens if generate else None,
            candidates=candidates,
        )
        state = (total, search.WRITES[0])
        clock = time.perf_counter()
        hit = answers.lookup(key, state, qvec, cache_threshold)
        latency["cache"] = time.perf_counter() - clock
        if hit is not None:
            latency = {"retrieve": 0.0, "generate": 0.0, "cache": latency["retrieve"] + latency["cache"]}
            latency["total"] = time.perf_counter() - started
            return answers.replay(question, hit, answers.stats(key), latency)

    clock = time.perf_counter()  # ---------------------------------------------------------------- rewrite
    written = rewriting.write(rewrite, lm, question, queries, notices)
    if rewrite is not None:
        latency["rewrite"] = time.perf_counter() - clock

    clock = time.perf_counter()  # ---------------------------------------------------------------- retrieve
    vectors = [qvec, *emb.embed(written)] if written else [qvec]
    ranked = [
        search.query_hits(col, collection, vec, text, pool, where, space, exact, hybrid)
        for vec, text in zip(vectors, [question, *written])
    ]
    hnsw_ids = ranked[0][1]  # the question's own
    hits = ranked[0][0] if rewrite is None else rewriting.fuse([r[0] for r in ranked], pool)
    if rerank:
        if reranker:
            scorer = search.cross_encoder_scorer(reranker)
        else:
            scorer = lambda q, texts: search.lm_scores(lm()[0], lm()[1], q, texts)  # noqa: E731
        hits = search.rerank(question, hits, k, scorer)
    hits, merges = _apply_strategy(hits[:k], strategy, merge_ratio)
    if strategy == "auto-merging":
        config["merges"] = merges
        if merges:
            notices.append(
                f"auto-merging: {merges} parent{'s' if merges > 1 else ''} replaced their retrieved children"
            )
    if rewrite == "multi-query" and written:
        notices.append(
            f"multi-query: retrieved with the question and {len(written)} "
            f"paraphrase{'s' if len(written) > 1 else ''}, fused by reciprocal rank"
        )
    elif rewrite == "hyde" and written:
        notices.append("hyde: retrieved with the question and a hypothetical answer, fused by reciprocal rank")
    latency["retrieve"] += time.perf_counter() - clock

    count, tokenizer = gen.token_counter(lm() if generate else None, emb)  # ---------------- compress
    figures = None
    if compress:
        clock = time.perf_counter()
        hits = compression.compress(hits, qvec, emb.embed, compress_threshold)
        latency["compress"] = time.perf_counter() - clock
        figures, line = compression.report(
            count([h["full_text"] for h in hits]), count([h["text"] for h in hits]), tokenizer
        )
        notices.append(line)

    contexts = [h["text"] for h in hits]  # ---------------------------------------------------------------- generate
    answer, citations, prompt = None, [], None
    clock = time.perf_counter()
    if generate:
        prompt, answer = gen.answer(lm()[0], lm()[1], question, contexts, lm()[2], max_new_tokens)
        citations = gen.model_citations(answer, len(hits)) or gen.similarity_citations(answer, contexts, emb.embed)
    latency["generate"] = time.perf_counter() - clock if generate else 0.0
    if generate or rewrite is not None:
        config["model"] = lm()[3]

    from .provenance import attach, for_model  # the answering model, the embedder, the retrieved chunks

    res = RAGResult(
        question,
        hits,
        answer,
        citations,
        config,
        notices,
        prompt,
        hnsw_ids,
        context_tokens=count(contexts),
        context_tokenizer=tokenizer,
        rewrites=written if rewrite is not None else None,
        compression=figures,
        cache_hit=False if cache else None,
    )
    attach(
        res,
        model=lm()[0] if generate else None,
        name=config["model"] if generate else None,
        flags=config,
        collection=collection,
        data=[{"id": h["id"], "text": h["text"]} for h in hits],
        store=kind,
        embedder=name,
        embedder_fingerprint=for_model(emb).get("model_fingerprint"),
    )
    if cache:
        answers.put(key, state, question, qvec, res)
        res.cache_stats = answers.stats(key)
        res.notices = [*notices, answers.notice(res.cache_stats)]
    res.latency = {**latency, "total": time.perf_counter() - started}
    return res


@server_errors
def collections(persist: str | None = None, server: str | None = None, store: str | None = None):
    """The collections of a store (Chroma's unless --store or the folder says otherwise), with
    chunk counts, embedder, distance and strategy."""
    store_name = store  # the keyword; `store` below is the module
    from .retrieval import store
    from .retrieval.results import CollectionsResult

    made = store.client(persist, server, store_name)
    rows = []
    for name in store.names(made):
        col = made.get_collection(name)
        meta = store.info(col)
        rows.append(
            {
                "collection": name,
                "chunks": col.count(),
                "embedder": meta.get("embedder", "?"),
                "dim": meta.get("dim"),
                "distance": meta.get("distance", "?"),
                "chunk_size": meta.get("chunk_size"),
                "overlap": meta.get("overlap"),
                "unit": meta.get("unit"),
                "strategy": meta.get("strategy", "direct"),  # collections from before strategies are direct
            }
        )
    return CollectionsResult(rows, store.where_text(persist, server, store_name))


@server_errors
def drop(collection: str, persist: str | None = None, server: str | None = None, store: str | None = None) -> str:
    store_name = store  # the keyword; `store` below is the module
    from .retrieval import search, store

    persist, server, kind = store.location(collection, persist, server, store_name)
    store.drop(collection, persist, server, kind)
    search.WRITES[0] += 1
    return f"dropped collection '{collection}'"


def clear_cache() -> int:
    """Forget the answers %%rag --cache kept in this session (and its statistics); returns how many."""
    from .retrieval import cache

    return cache.clear()
