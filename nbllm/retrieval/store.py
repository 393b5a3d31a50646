"""The collections nbllm reads and writes, whichever store holds them: Chroma (memory, a
persistent folder or a server; the default), FAISS or LanceDB (memory or a folder). Each
collection remembers the embedder, dimension and distance it was built with.

The store is --store, else the one that wrote the --persist folder, else the one this process
last used for the collection, else Chroma. Everything here goes through the interface of
stores/base.py, so the callers (nbllm.rag, search, the explorer) never ask which store it is.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys

from ..errors import ConfigError, DataError, NbllmError
from . import stores
from .stores.base import folder_store
from .stores.chroma import (
    HNSW,
    SERVER_TIMEOUT_ENV,
    SERVER_TIMEOUT_S,
    _CLIENTS,
    _connection_failure,  # noqa: F401
    embedding_function,
    server_timeout,
    unreachable,
)

DISTANCES = ("l2", "ip", "cosine")
INDEXES = ("auto", "flat", "ann")
DEFAULT_COLLECTION = "default"
META_PREFIX = "nbllm_"

_WHERE: dict[str, tuple] = {}  # collection name -> (persist, server, store) it was last indexed or queried at


def check_name(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]", name or ""):
        raise ConfigError(
            f"collection name {name!r} is not valid; use 3-512 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise ConfigError(f"unknown distance {distance!r}; use l2, ip or cosine")
    return distance


def resolve(store: str | None = None, persist=None, server=None) -> str:
    """Which store: --store (checked against the folder), else the folder's own, else Chroma."""
    if store is not None:
        stores.check_store(store)
    if persist and server:
        raise ConfigError("use either --persist DIR or --server URL, not both")
    if server:
        if store not in (None, "chroma"):
            raise ConfigError(
                f"--server is a Chroma server; --store {store} keeps collections in memory or a "
                f"--persist folder: drop --server, or use --store chroma"
            )
        return "chroma"
    if persist:
        from ..paths import check_destination

        check_destination(persist, "--persist")  # the stores' own errors here are raw OS codes
        found = folder_store(persist)
        if found and store and found != store:
            raise ConfigError(
                f"the folder {persist} holds a {found} store, not {store}; open it with --store {found}, "
                f"or give --store {store} another --persist folder"
            )
        return store or found or stores.DEFAULT
    return store or stores.DEFAULT


def client(persist: str | None = None, server: str | None = None, store: str | None = None):
    """The store object (cached): Chroma's client, or a FAISS / LanceDB store in memory or a folder."""
    name = resolve(store, persist, server)
    if name == "chroma":
        from .stores import chroma

        return chroma.client(persist, server)
    return stores.backend(name).connect(persist)


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
            raise DataError(
                f"no collection '{name}' in server {server} any more (did it restart with another "
                f"--path?); run %rag index PATH --collection {name} --server {server} first"
            ) from None

    return wrapper


def remember(name: str, persist, server, store=None) -> None:
    _WHERE[name] = (persist, server, store)


def location(name: str, persist=None, server=None, store=None) -> tuple:
    """Where a collection lives, (persist, server, store): the flags given, else where this
    process last used it."""
    if persist or server:
        return persist, server, store
    if store is not None:
        was = _WHERE.get(name, (None, None, None))
        return (was[0], None, store) if was[2] == store and was[0] else (None, None, store)
    return _WHERE.get(name, (None, None, None))


def where_text(persist, server, store=None) -> str:
    kind = "" if resolve(store, persist, server) == "chroma" else f"{resolve(store, persist, server)} "
    return f"{kind}persistent folder {persist}" if persist else f"server {server}" if server else f"{kind}memory"


def names(chroma) -> list[str]:
    return sorted(c.name if hasattr(c, "name") else str(c) for c in chroma.list_collections())


def get_collection(name: str, persist=None, server=None, store=None):
    """An existing collection (with nbllm's embedding function on Chroma), or DataError naming the fix."""
    check_name(name)
    kind = resolve(store, persist, server)
    made = client(persist, server, kind)
    existing = names(made)
    if name not in existing:
        have = f"collections here: {', '.join(existing)}" if existing else "no collections yet"
        flag = "" if kind == "chroma" else f" --store {kind}"
        raise DataError(
            f"no collection '{name}' in {where_text(persist, server, kind)} ({have}); "
            f"run %rag index PATH --collection {name}{flag} first"
        )
    if kind != "chroma":
        return made.get_collection(name)
    raw = made.get_collection(name)
    meta = raw.metadata or {}
    return made.get_collection(name, embedding_function=embedding_function(meta.get("nbllm_embedder", "minilm")))


def exists(name: str, persist=None, server=None, store=None) -> bool:
    return name in names(client(persist, server, store))


def info(collection) -> dict:
    meta = collection.metadata or {}
    return {k[len(META_PREFIX) :]: v for k, v in meta.items() if k.startswith(META_PREFIX)}


def check_embedder(collection, embedder: str, dim: int | None = None) -> None:
    built = info(collection)
    if built.get("embedder") not in (None, embedder) or (dim is not None and built.get("dim") not in (None, dim)):
        raise ConfigError(
            f"collection '{collection.name}' was built with embedder '{built.get('embedder')}' "
            f"({built.get('dim')}-d vectors), not '{embedder}'{f' ({dim}-d)' if dim else ''}; use --embedder "
            f"{built.get('embedder')}, or a new --collection for this embedder"
        )


def check_built(col, embedder: str, dim: int, distance: str, index: str | None = None) -> None:
    """The embedder, dimension and distance (fixed when the collection was created) must match."""
    check_embedder(col, embedder, dim)
    built = info(col)
    if built.get("distance") and built["distance"] != distance:
        raise ConfigError(
            f"collection '{col.name}' uses distance {built['distance']}, not {distance} (fixed when it "
            f"was created); use --distance {built['distance']}, or a new --collection"
        )
    if index not in (None, "auto") and built.get("index", "auto") != index:
        raise ConfigError(
            f"collection '{col.name}' was created with --index {built.get('index', 'auto')}, not "
            f"{index}; use --index {built.get('index', 'auto')}, or a new --collection"
        )


def check_index(index: str, store: str) -> str:
    if index not in INDEXES:
        raise ConfigError(f"unknown --index {index!r}; use auto, flat or ann")
    if store == "chroma" and index == "flat":
        raise ConfigError(
            "Chroma always builds an HNSW index; use --store faiss or --store lancedb for --index flat "
            "(exact search), or --exact at query time"
        )
    return index


def open_for_write(
    name: str,
    embedder: str,
    dim: int,
    distance: str,
    extra: dict,
    persist=None,
    server=None,
    store=None,
    index: str = "auto",
):
    """Get or create the collection; the embedder and distance must match what it was built with."""
    check_name(name)
    check_distance(distance)
    kind = resolve(store, persist, server)
    check_index(index, kind)
    made = client(persist, server, kind)
    if name in names(made):
        col = get_collection(name, persist, server, kind)
        check_built(col, embedder, dim, distance, index)
        return col
    meta = {
        f"{META_PREFIX}embedder": embedder,
        f"{META_PREFIX}dim": dim,
        f"{META_PREFIX}distance": distance,
        **({f"{META_PREFIX}index": index} if kind != "chroma" else {}),
        **{f"{META_PREFIX}{k}": v for k, v in extra.items() if v is not None},
    }
    if kind == "chroma":
        from .stores import chroma

        return chroma.create(made, name, meta, distance, embedder)
    return made.create_collection(name, metadata=meta)


def write(col, ids, vectors, documents, metadatas, delete=(), batch: int | None = None) -> None:
    """Upsert and delete: one transaction on stores that offer it (write()), Chroma's batches else."""
    if hasattr(col, "write"):
        col.write(ids, vectors, documents, metadatas, delete=list(delete))
        return
    batch = batch or 5000
    for i in range(0, len(ids), batch):
        col.upsert(
            ids=ids[i : i + batch],
            embeddings=vectors[i : i + batch],
            documents=documents[i : i + batch],
            metadatas=metadatas[i : i + batch],
        )
    if delete:
        col.delete(ids=list(delete))


def drop(name: str, persist=None, server=None, store=None) -> None:
    get_collection(name, persist, server, store)  # a clear error if it is not there
    client(persist, server, store).delete_collection(name)
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
