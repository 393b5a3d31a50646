"""The interface every vector store implements: the subset of Chroma's client and collection
API that nbllm calls, so a Chroma collection is one as it is, and FAISS, LanceDB (or a
Pinecone adapter) implement the same methods.

    store = backend.connect(persist)              # persist: a folder, or None for memory
    store.list_collections() -> [name]
    store.create_collection(name, metadata) / get_collection(name) / delete_collection(name)
    col.upsert(ids, embeddings, documents, metadatas)   # same ids replace: re-indexing adds nothing
    col.query(query_embeddings=[v], n_results=k, where=..., include=[...])
        -> {"ids": [[...]], "documents": [[...]], "metadatas": [[...]], "distances": [[...]]}
    col.get(ids=, where=, include=, limit=, offset=) -> {"ids": [...], "documents": [...], ...}
    col.count(), col.delete(ids=), col.name, col.id, col.metadata

Distances are Chroma's on every store: l2 = squared L2, ip = 1 - a.b, cosine = 1 - cos.
TableCollection holds ids, texts, metadata and vectors in numpy for stores whose index
keeps only vectors (FAISS); where() applies Chroma's metadata filter syntax in nbllm.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError

MARKER = "nbllm-store.json"  # at the root of a --persist folder written by faiss or lancedb
INCLUDE = ("documents", "metadatas")


def distance(matrix: np.ndarray, query: np.ndarray, space: str) -> np.ndarray:
    """Chroma's `space` distance from `query` to every row (float32, exact)."""
    matrix, query = np.asarray(matrix, dtype=np.float32), np.asarray(query, dtype=np.float32)
    dots = matrix @ query
    if space == "l2":
        return (matrix**2).sum(1) - 2 * dots + (query**2).sum()
    if space == "ip":
        return 1.0 - dots
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(query)
    return 1.0 - dots / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------- Chroma's where syntax, in nbllm

_COMPARE = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
}


def matches(meta: dict | None, where: dict | None) -> bool:
    """Whether a chunk's metadata passes a Chroma `where` filter: {"key": value},
    {"key": {"$gt": 3}} ($eq $ne $gt $gte $lt $lte $in $nin), {"$and": [...]}, {"$or": [...]}.
    A chunk without the key never matches (as in Chroma)."""
    if not where:
        return True
    meta = meta or {}
    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise ConfigError(
                    f"--where {key} takes a non-empty list of filters, e.g. "
                    f'{{"{key}": [{{"source": "a.md"}}, {{"page": 2}}]}}'
                )
            ok = (all if key == "$and" else any)(matches(meta, c) for c in cond)
        elif key.startswith("$"):
            raise ConfigError(f"--where operator {key!r} is not known; use $and or $or at the top level")
        else:
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            if key not in meta:
                return False
            ok = True
            for op, value in ops.items():
                if op not in _COMPARE:
                    raise ConfigError(f"--where operator {op!r} is not known; use one of {', '.join(_COMPARE)}")
                if op in ("$in", "$nin") and not isinstance(value, list):
                    raise ConfigError(f'--where {op} takes a list, e.g. {{"{key}": {{"{op}": [1, 2]}}}}')
                try:
                    ok = ok and _COMPARE[op](meta[key], value)
                except TypeError:
                    raise ConfigError(
                        f"--where {key} {op} {value!r}: cannot compare with the stored "
                        f"{type(meta[key]).__name__} value"
                    ) from None
        if not ok:
            return False
    return True


def where_mask(metadatas: list, where: dict | None) -> np.ndarray:
    return np.fromiter((matches(m, where) for m in metadatas), dtype=bool, count=len(metadatas))


# ---------------------------------------------------------------- folders


def folder_store(path) -> str | None:
    """Which store wrote a --persist folder: its marker, Chroma's sqlite file, or None (new/empty)."""
    path = Path(path).expanduser()
    if (path / MARKER).is_file():
        try:
            return json.loads((path / MARKER).read_text()).get("store")
        except (OSError, ValueError):
            raise DataError(f"{path / MARKER} is damaged; restore it, or use another --persist folder") from None
    if (path / "chroma.sqlite3").exists():
        return "chroma"
    return None


def mark_folder(path, store: str) -> Path:
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    if not (path / MARKER).exists():
        write_json(path / MARKER, {"store": store, "format": 1})
    return path


def write_json(path: Path, value) -> None:
    """Written to a temporary file, then renamed over: a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(tmp, path)


def swap_in(tmp: Path, final: Path) -> None:
    """Replace the folder `final` by the finished folder `tmp` (old one removed after the rename)."""
    old = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.old")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- a collection held in numpy


def checked_write(name: str, dim: int, ids, embeddings):
    """(ids as strings, float32 vectors) of an upsert, or a DataError: a wrong dimension (another
    embedder), an id twice, a nan or inf. Every table store checks its writes here."""
    ids = [str(i) for i in ids]
    vecs = np.asarray(embeddings, dtype=np.float32)
    if len(ids) and (vecs.ndim != 2 or vecs.shape != (len(ids), dim)):
        raise DataError(
            f"collection '{name}' holds {dim}-d vectors; got {vecs.shape[-1]}-d ones "
            f"(another embedder?); use a new --collection for them"
        )
    if len(set(ids)) != len(ids):
        raise DataError("the same id appears twice in one write; give every chunk its own id")
    if len(ids) and not np.isfinite(vecs).all():
        raise DataError("an embedding holds nan or inf; check the embedder")
    return ids, vecs


class TableCollection:
    """A collection whose chunk table (ids, documents, metadatas, vectors) lives in numpy; a
    subclass supplies the vector index (_search) and persistence (_save). Every write is one
    transaction: the new table and index are built and saved first, and only then replace the
    old ones, so a failed write leaves the collection as it was."""

    def __init__(self, name: str, metadata: dict, dim: int):
        self.name, self.metadata, self.dim = name, dict(metadata), int(dim)
        self.id = uuid.uuid4().hex
        self.space = self.metadata.get("nbllm_distance", "l2")
        self._ids: list[str] = []
        self._docs: list[str] = []
        self._metas: list[dict] = []
        self._vecs = np.zeros((0, self.dim), dtype=np.float32)
        self._pos: dict[str, int] = {}

    # -- reading
    def count(self) -> int:
        return len(self._ids)

    def _rows(self, ids=None, where=None) -> np.ndarray:
        if ids is not None:
            rows = np.array([self._pos[i] for i in ids if i in self._pos], dtype=int)
        else:
            rows = np.arange(len(self._ids))
        if where:
            rows = rows[where_mask([self._metas[r] for r in rows], where)]
        return rows

    def _pack(self, rows, include) -> dict:
        out = {"ids": [self._ids[r] for r in rows]}
        for key in ("documents", "metadatas", "embeddings"):
            if key in include:
                out[key] = (
                    [self._docs[r] for r in rows]
                    if key == "documents"
                    else [dict(self._metas[r]) for r in rows]
                    if key == "metadatas"
                    else self._vecs[rows]
                )
            else:
                out[key] = None
        return out

    def get(self, ids=None, where=None, limit=None, offset=None, include=INCLUDE, where_document=None) -> dict:
        rows = self._rows(ids, where)
        start = offset or 0
        rows = rows[start : start + limit] if limit is not None else rows[start:]
        return self._pack(rows, include)

    def query(
        self, query_embeddings, n_results: int = 10, where=None, include=INCLUDE + ("distances",), where_document=None
    ) -> dict:
        """Top n_results per query vector, with exact distances (recomputed in float32 from the
        stored vectors, so every store reports the same numbers)."""
        out = {k: [] for k in ("ids", "documents", "metadatas", "embeddings", "distances")}
        subset = self._rows(where=where) if where else None
        for q in np.asarray(query_embeddings, dtype=np.float32).reshape(-1, self.dim):
            if subset is not None:  # exact search over the filtered chunks
                d = distance(self._vecs[subset], q, self.space)
                order = np.argsort(d, kind="stable")[:n_results]
                rows = subset[order]
            else:
                rows = self._search(q, min(n_results, self.count()))
            d = distance(self._vecs[rows], q, self.space) if len(rows) else np.zeros(0, np.float32)
            order = sorted(range(len(rows)), key=lambda i: (float(d[i]), self._ids[rows[i]]))
            packed = self._pack(rows[order], include)
            for k in ("ids", "documents", "metadatas", "embeddings"):
                out[k].append(packed[k])
            out["distances"].append([float(x) for x in d[order]])
        return {k: (v if k == "ids" or k in include else None) for k, v in out.items()}

    # -- writing
    def upsert(self, ids, embeddings, documents=None, metadatas=None) -> None:
        self.write(ids, embeddings, documents, metadatas)

    add = upsert  # same ids replace (Chroma's add would skip them): re-indexing never duplicates

    def delete(self, ids=None, where=None) -> None:
        gone = [self._ids[r] for r in self._rows(ids, where)] if (ids is not None or where) else []
        self.write([], np.zeros((0, self.dim), np.float32), delete=gone)

    def write(self, ids, embeddings, documents=None, metadatas=None, delete=()) -> None:
        """Upsert `ids` and remove `delete` in one transaction."""
        ids, vecs = checked_write(self.name, self.dim, ids, embeddings)
        documents = list(documents) if documents is not None else [""] * len(ids)
        metadatas = [dict(m or {}) for m in metadatas] if metadatas is not None else [{} for _ in ids]
        gone = {i for i in delete if i in self._pos} - set(ids)
        replaced = [i for i in ids if i in self._pos]
        keep = [r for r, i in enumerate(self._ids) if i not in gone]
        new_ids, new_docs = [self._ids[r] for r in keep], [self._docs[r] for r in keep]
        new_metas, new_vecs = [self._metas[r] for r in keep], self._vecs[keep]
        pos = {i: n for n, i in enumerate(new_ids)}
        appended = [n for n, i in enumerate(ids) if i not in pos]
        if replaced:
            new_vecs = new_vecs.copy()
            for n, i in enumerate(ids):
                if i in pos:
                    r = pos[i]
                    new_docs[r], new_metas[r], new_vecs[r] = documents[n], metadatas[n], vecs[n]
        new_ids += [ids[n] for n in appended]
        new_docs += [documents[n] for n in appended]
        new_metas += [metadatas[n] for n in appended]
        new_vecs = np.concatenate([new_vecs, vecs[appended]]) if appended else new_vecs
        only_appended = not gone and not replaced
        state = (new_ids, new_docs, new_metas, np.ascontiguousarray(new_vecs, dtype=np.float32))
        try:
            self._commit(state, vecs[appended] if only_appended else None)
        except BaseException:
            self._index_dropped()  # the index may hold part of the new rows: rebuild it from the old table
            raise
        self._ids, self._docs, self._metas, self._vecs = state
        self._pos = {i: n for n, i in enumerate(self._ids)}

    # -- what a subclass implements
    def _search(self, query: np.ndarray, k: int) -> np.ndarray:
        """Row numbers of (about) the k nearest rows."""
        raise NotImplementedError

    def _commit(self, state: tuple, appended: np.ndarray | None) -> None:
        """Index (and save) the new table; `appended` are the new vectors when nothing else changed."""
        raise NotImplementedError

    def _index_dropped(self) -> None:
        pass
