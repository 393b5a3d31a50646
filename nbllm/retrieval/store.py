"""Chroma clients (in memory, persistent folder, or a running server) and collections that
remember the embedder they were built with.

Chroma's default embedding function downloads a model on first use and fails offline, so
every collection gets nbllm's own (NbllmEmbeddingFunction), and nbllm passes vectors itself.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
import sys
from urllib.parse import urlparse

from ..errors import ConfigError, DataError, NbllmError, ServerError

DISTANCES = ("l2", "ip", "cosine")
DEFAULT_COLLECTION = "default"
# HNSW settings: measured with benchmarks/rag.py to keep recall@10 >= 0.98 against exact search
HNSW = {"ef_construction": 200, "ef_search": 128, "max_neighbors": 32}
META_PREFIX = "nbllm_"

# chromadb 1.5's HttpClient builds its httpx session with timeout=None and has no setting for it
# (chroma_query_request_timeout_seconds is the server's own limit on its query nodes), so a stopped
# or stalled server would hang the cell forever; nbllm sets this limit on every request instead.
# 60 s: one upsert batch of chromadb's maximum (5461 chunks, 384-d) took 6-10 s on a busy 2-core
# machine, so a slow server has ample room, yet a stuck one is reported within a minute.
SERVER_TIMEOUT_ENV = "NBLLM_CHROMA_TIMEOUT"
SERVER_TIMEOUT_S = 60.0

_CLIENTS: dict[tuple, object] = {}
_WHERE: dict[str, tuple] = {}  # collection name -> (persist, server) it was last indexed or queried at


def _embedding_function_class():
    from chromadb.api.types import Documents, EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function, known_embedding_functions

    if "nbllm" in known_embedding_functions:
        return known_embedding_functions["nbllm"]

    class NbllmEmbeddingFunction(EmbeddingFunction[Documents]):
        """Embeds with nbllm's Embedder (offline, cached), never Chroma's downloading default."""

        def __init__(self, embedder: str = "minilm"):
            self.embedder = embedder

        def __call__(self, input: Documents):
            from .embed import get_embedder

            return list(get_embedder(self.embedder).embed(list(input)))

        @staticmethod
        def name() -> str:
            return "nbllm"

        def get_config(self) -> dict:
            return {"embedder": self.embedder}

        @staticmethod
        def build_from_config(config: dict) -> "NbllmEmbeddingFunction":
            return NbllmEmbeddingFunction(config.get("embedder", "minilm"))

    register_embedding_function(NbllmEmbeddingFunction)
    return NbllmEmbeddingFunction


def embedding_function(embedder: str):
    return _embedding_function_class()(embedder)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]", name or ""):
        raise ConfigError(f"collection name {name!r} is not valid; use 3-512 letters, digits, '.', '_' or '-', "
                          "starting and ending with a letter or digit")
    return name


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise ConfigError(f"unknown distance {distance!r}; use l2, ip or cosine")
    return distance


def client(persist: str | None = None, server: str | None = None):
    """A cached Chroma client: in memory (default), a persistent folder, or an HTTP server."""
    if persist and server:
        raise ConfigError("use either --persist DIR or --server URL, not both")
    key = ("persist", str(persist)) if persist else ("server", server) if server else ("memory",)
    if key in _CLIENTS:
        return _CLIENTS[key]
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if persist:
        made = chromadb.PersistentClient(path=str(persist), settings=settings)
    elif server:
        url = urlparse(server if "://" in server else f"http://{server}")
        if not url.hostname:
            raise ConfigError(f"--server {server!r} is not a URL; use e.g. http://127.0.0.1:8000")
        import httpx
        from chromadb.api.fastapi import FastAPI

        seconds = server_timeout()
        host, port, ssl = url.hostname, url.port or 8000, url.scheme == "https"
        api = FastAPI.resolve_url(chroma_server_host=host, chroma_server_http_port=port, chroma_server_ssl_enabled=ssl,
                                  default_api_path=settings.chroma_server_api_default_path)
        try:
            # HttpClient() itself asks the server twice with no timeout: check it answers in time first
            httpx.get(f"{api}/heartbeat", timeout=seconds).raise_for_status()
            made = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
        except Exception as err:  # noqa: BLE001 - chromadb raises several types for a dead server
            raise unreachable(server, _connection_failure(err) or err, seconds) from None
        made._server._session.timeout = httpx.Timeout(seconds)  # no public way in chromadb 1.5 (see above)
    else:
        made = chromadb.EphemeralClient(settings=settings)
    _CLIENTS[key] = made
    return made


def server_timeout() -> float:
    """Seconds to wait for each answer of a Chroma server: NBLLM_CHROMA_TIMEOUT, else 60."""
    raw = os.environ.get(SERVER_TIMEOUT_ENV, "").strip()
    if not raw:
        return SERVER_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"{SERVER_TIMEOUT_ENV}={raw!r} is not a number of seconds; set it to a positive number "
                          f"(e.g. {SERVER_TIMEOUT_ENV}=120), or unset it for the default {SERVER_TIMEOUT_S:g} s")
    return seconds


def unreachable(server: str, err: BaseException, seconds: float | None = None) -> ServerError:
    url = urlparse(server if "://" in server else f"http://{server}")
    run = f"`chroma run --path DIR --host {url.hostname} --port {url.port or 8000}`"
    httpx = sys.modules.get("httpx")
    if isinstance(err, TimeoutError) or (httpx and isinstance(err, httpx.TimeoutException)):
        waited = f"within {seconds:g} s" if seconds else "in time"
        return ServerError(f"the Chroma server at {server} did not answer {waited}; check that it is running and "
                           f"not stopped or stuck (restart {run}), or raise {SERVER_TIMEOUT_ENV} (seconds) for "
                           "slow requests")
    return ServerError(f"cannot reach the Chroma server at {server} ({type(err).__name__}); start it (again) with "
                       f"{run}, or fix or drop --server")


def _connection_failure(err: BaseException) -> BaseException | None:
    """The connection failure (refused, reset, timed out) behind `err`, following its causes."""
    httpx = sys.modules.get("httpx")  # loaded if chromadb's client raised it
    kinds = (ConnectionError, TimeoutError) + ((httpx.TransportError,) if httpx else ())
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, kinds):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def server_errors(func):
    """For the functions that talk to Chroma: a server that was reached once but has died or
    stopped answering (timeout) since becomes one ServerError line (and its cached client is dropped,
    so the next call reconnects once it is back); a collection gone from a restarted server becomes
    the usual DataError."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except NbllmError:
            raise
        except Exception as err:
            failure = _connection_failure(err)
            chroma_errors = sys.modules.get("chromadb.errors")  # loaded if chromadb raised it
            if failure is None and not (chroma_errors and isinstance(err, chroma_errors.NotFoundError)):
                raise
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            persist, server, name = (bound.arguments.get(k) for k in ("persist", "server", "collection"))
            server = server or (None if persist or not name else location(name)[1])
            if not server or (failure is None and not name):
                raise
            if failure is not None:
                dropped = _CLIENTS.pop(("server", server), None)
                waited = dropped._server._session.timeout.read if dropped is not None else None  # set in client()
                raise unreachable(server, failure, waited) from None
            raise DataError(f"no collection '{name}' in server {server} any more (did it restart with another "
                            f"--path?); run %rag index PATH --collection {name} --server {server} first") from None

    return wrapper


def remember(name: str, persist, server) -> None:
    _WHERE[name] = (persist, server)


def location(name: str, persist=None, server=None) -> tuple:
    """Where a collection lives: the flags given, else where this process last used it."""
    if persist or server:
        return persist, server
    return _WHERE.get(name, (None, None))


def where_text(persist, server) -> str:
    return f"persistent folder {persist}" if persist else f"server {server}" if server else "memory"


def names(chroma) -> list[str]:
    return sorted(c.name if hasattr(c, "name") else str(c) for c in chroma.list_collections())


def get_collection(name: str, persist=None, server=None):
    """An existing collection with nbllm's embedding function, or DataError naming the fix."""
    check_name(name)
    chroma = client(persist, server)
    existing = names(chroma)
    if name not in existing:
        have = f"collections here: {', '.join(existing)}" if existing else "no collections yet"
        raise DataError(f"no collection '{name}' in {where_text(persist, server)} ({have}); "
                        f"run %rag index PATH --collection {name} first")
    raw = chroma.get_collection(name)
    meta = raw.metadata or {}
    return chroma.get_collection(name, embedding_function=embedding_function(meta.get("nbllm_embedder", "minilm")))


def info(collection) -> dict:
    meta = collection.metadata or {}
    return {k[len(META_PREFIX):]: v for k, v in meta.items() if k.startswith(META_PREFIX)}


def check_embedder(collection, embedder: str, dim: int | None = None) -> None:
    built = info(collection)
    if built.get("embedder") not in (None, embedder) or (dim is not None and built.get("dim") not in (None, dim)):
        raise ConfigError(f"collection '{collection.name}' was built with embedder '{built.get('embedder')}' "
                          f"({built.get('dim')}-d vectors), not '{embedder}'{f' ({dim}-d)' if dim else ''}; use --embedder "
                          f"{built.get('embedder')}, or a new --collection for this embedder")


def open_for_write(name: str, embedder: str, dim: int, distance: str, extra: dict, persist=None, server=None):
    """Get or create the collection; the embedder and distance must match what it was built with."""
    check_name(name)
    check_distance(distance)
    chroma = client(persist, server)
    if name in names(chroma):
        col = get_collection(name, persist, server)
        check_embedder(col, embedder, dim)
        built = info(col).get("distance")
        if built and built != distance:
            raise ConfigError(f"collection '{name}' uses distance {built}, not {distance} (fixed when it was "
                              f"created); use --distance {built}, or a new --collection")
        return col
    meta = {f"{META_PREFIX}embedder": embedder, f"{META_PREFIX}dim": dim, f"{META_PREFIX}distance": distance,
            **{f"{META_PREFIX}{k}": v for k, v in extra.items() if v is not None}}
    return chroma.create_collection(name, metadata=meta, embedding_function=embedding_function(embedder),
                                    configuration={"hnsw": {"space": distance, **HNSW}})


def drop(name: str, persist=None, server=None) -> None:
    get_collection(name, persist, server)  # a clear error if it is not there
    client(persist, server).delete_collection(name)
    _WHERE.pop(name, None)


def all_rows(collection, include=("documents", "metadatas", "embeddings"), where=None) -> dict:
    """Every row of a collection (paged), sorted by id so that order never depends on storage."""
    out = {"ids": [], **{k: [] for k in include}}
    total, page = collection.count(), 5000
    for offset in range(0, total, page):
        got = collection.get(include=list(include), limit=page, offset=offset, where=where)
        out["ids"] += list(got["ids"])
        for k in include:
            out[k] += list(got[k]) if got[k] is not None else []
    order = sorted(range(len(out["ids"])), key=out["ids"].__getitem__)
    return {k: [v[i] for i in order] for k, v in out.items()}
