"""LanceDB (embedded): one Lance table per collection, in memory ("memory://") or a folder.

    DIR/nbllm-store.json            {"store": "lancedb"}
    DIR/<collection>.lance/         the table: id, document, metadata (JSON text), vector
    DIR/<collection>.nbllm.json     store, dimension, distance, embedder, index, metadata

Search is exact (LanceDB's flat scan) below AUTO_ANN chunks; from there on (or with --index
ann) an IVF_FLAT index over the full vectors is built and probed with NPROBE_SHARE of its
partitions, at least MIN_NPROBES (measured with benchmarks/rag.py to keep recall@10 >= 0.98).
Rows written after the index are scanned exactly by LanceDB until they pass REINDEX_SHARE of the
table; then it is rebuilt. Metadata is free-form JSON, so the --where filter is applied in nbllm:
the chunks that pass are searched exactly. Every write is undone (table.restore) if any step of
it fails.

nbllm speaks LanceDB's async API on one event-loop thread of its own (run): a whole query, all
its vectors, is one hop there. The sync API costs several hops and schema reads per search,
about a fifth of a search's latency at 100k chunks (an A/B of the two paths, 13.5 -> 10.9 ms).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import uuid
from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from .base import INCLUDE, checked_write, distance, folder_store, mark_folder, where_mask, write_json

NAME = "lancedb"
AUTO_ANN = 20_000
NPROBE_SHARE, MIN_NPROBES = 1 / 8, 32
REINDEX_SHARE = 0.1
METRIC = {"l2": "l2", "ip": "dot", "cosine": "cosine"}
_STORES: dict = {}
_LOOP: list = []  # the event loop nbllm's LanceDB calls run on, started at first use
_UNREAD = object()


def run(coro):
    """Run `coro` on nbllm's LanceDB loop thread and wait for it (a notebook's own loop is busy)."""
    if not _LOOP:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="nbllm-lancedb", daemon=True).start()
        _LOOP.append(loop)
    return asyncio.run_coroutine_threadsafe(coro, _LOOP[0]).result()


def _lancedb():
    try:
        import lancedb
    except ImportError:
        raise ConfigError(
            "--store lancedb needs the lancedb package: pip install lancedb (or pip install 'nbllm[stores]')"
        ) from None
    return lancedb


def connect(persist=None) -> "LanceStore":
    _lancedb()
    key = str(Path(persist).expanduser().resolve()) if persist else None
    if key not in _STORES:
        _STORES[key] = LanceStore(key)
    return _STORES[key]


def _quoted(ids) -> str:
    return ", ".join("'" + str(i).replace("'", "''") + "'" for i in ids)


def partitions(count: int) -> int:
    return max(1, int(math.sqrt(count)))


def probes(parts: int) -> int:
    """IVF partitions a search visits: NPROBE_SHARE of them, at least MIN_NPROBES, so a small index
    (--index ann on a few hundred chunks) is searched whole: a partition left out can hold a hit."""
    return min(parts, max(MIN_NPROBES, math.ceil(parts * NPROBE_SHARE)))


class LanceCollection:
    def __init__(self, store: "LanceStore", table, manifest: dict):
        self.store, self.table, self.name = store, table, manifest["name"]  # table: a lancedb AsyncTable
        self.metadata, self.dim, self.space = (
            dict(manifest["metadata"]),
            int(manifest["dimension"]),
            manifest["distance"],
        )
        self.mode = self.metadata.get("nbllm_index", "auto")
        self.id = uuid.uuid4().hex
        self._cache: dict = {}
        self._index = _UNREAD  # the vector index's config (None: no index), read once; every write re-reads it

    # -- reading
    def count(self) -> int:
        return run(self.table.count_rows())

    def version(self) -> int:
        return run(self.table.version())

    def _table(self, vectors: bool = False) -> dict:
        """ids, documents, metadatas (and vectors) of the current table version, read once."""
        version = self.version()
        key = (version, vectors)
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[0] == version}
            cols = ["id", "document", "metadata"] + (["vector"] if vectors else [])
            arrow = run(self.table.to_arrow()).select(cols)
            got = {
                "ids": arrow["id"].to_pylist(),
                "documents": arrow["document"].to_pylist(),
                "metadatas": [json.loads(m) for m in arrow["metadata"].to_pylist()],
            }
            if vectors:
                flat = arrow["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
                got["embeddings"] = np.asarray(flat, dtype=np.float32).reshape(len(got["ids"]), self.dim)
            self._cache[key] = got
        return self._cache[key]

    def get(self, ids=None, where=None, limit=None, offset=None, include=INCLUDE, where_document=None) -> dict:
        data = self._table(vectors="embeddings" in include)
        rows = np.arange(len(data["ids"]))
        if ids is not None:
            wanted = set(map(str, ids))
            rows = np.array([r for r in rows if data["ids"][r] in wanted], dtype=int)
        if where:
            rows = rows[where_mask([data["metadatas"][r] for r in rows], where)]
        start = offset or 0
        rows = rows[start : start + limit] if limit is not None else rows[start:]
        out = {"ids": [data["ids"][r] for r in rows]}
        for k in ("documents", "metadatas", "embeddings"):
            out[k] = None if k not in include else (data[k][rows] if k == "embeddings" else [data[k][r] for r in rows])
        return out

    async def _vector_index(self):
        if self._index is _UNREAD:
            found = list(await self.table.list_indices())
            self._index = found[0] if found else None
        return self._index

    def index_type(self) -> str | None:
        """The vector index LanceDB holds ("IvfFlat"), or None while searches scan every row."""
        index = run(self._vector_index())
        return index.index_type if index is not None else None

    async def _search(self, queries: np.ndarray, k: int, subset) -> list[list[dict]]:
        index = await self._vector_index()
        nprobes = None
        if index is not None and subset is None:
            parts = self.metadata.get("nbllm_partitions") or partitions(await self.table.count_rows())
            nprobes = probes(parts)
        found = []
        for q in queries:
            if subset is not None and not subset:
                found.append([])
                continue
            search = self.table.vector_search(q).distance_type(METRIC[self.space])
            search = search.select(["id", "document", "metadata", "vector", "_distance"]).limit(k)
            if subset is not None:  # exact search over the chunks that pass the filter
                search = search.where(f"id IN ({_quoted(subset)})").bypass_vector_index()
            elif nprobes is not None:
                search = search.nprobes(nprobes)
            found.append((await search.to_arrow()).to_pylist())
        return found

    def query(
        self, query_embeddings, n_results: int = 10, where=None, include=INCLUDE + ("distances",), where_document=None
    ) -> dict:
        out = {k: [] for k in ("ids", "documents", "metadatas", "embeddings", "distances")}
        subset = None
        if where:
            data = self._table()
            mask = where_mask(data["metadatas"], where)
            subset = None if mask.all() else [i for i, m in zip(data["ids"], mask) if m]
        queries = np.asarray(query_embeddings, dtype=np.float32).reshape(-1, self.dim)
        for q, got in zip(queries, run(self._search(queries, n_results, subset))):
            vecs = np.asarray([g["vector"] for g in got], dtype=np.float32).reshape(len(got), self.dim)
            d = distance(vecs, q, self.space) if got else np.zeros(0, np.float32)
            order = sorted(range(len(got)), key=lambda i: (float(d[i]), got[i]["id"]))
            out["ids"].append([got[i]["id"] for i in order])
            out["documents"].append([got[i]["document"] for i in order])
            out["metadatas"].append([json.loads(got[i]["metadata"]) for i in order])
            out["embeddings"].append(vecs[order])
            out["distances"].append([float(d[i]) for i in order])
        return {k: (v if k == "ids" or k in include else None) for k, v in out.items()}

    # -- writing
    def upsert(self, ids, embeddings, documents=None, metadatas=None) -> None:
        self.write(ids, embeddings, documents, metadatas)

    add = upsert

    def delete(self, ids=None, where=None) -> None:
        gone = self.get(ids=ids, where=where, include=())["ids"] if (ids is not None or where) else []
        self.write([], np.zeros((0, self.dim), np.float32), delete=gone)

    def write(self, ids, embeddings, documents=None, metadatas=None, delete=()) -> None:
        """Upsert `ids` (merge_insert on id) and delete `delete`, as one transaction."""
        import pyarrow as pa

        ids, vecs = checked_write(self.name, self.dim, ids, embeddings)
        documents = list(documents) if documents is not None else [""] * len(ids)
        metadatas = list(metadatas) if metadatas is not None else [{}] * len(ids)
        gone = sorted(set(map(str, delete)) - set(ids))
        before = self.version()
        self._index = _UNREAD
        try:
            if ids:
                data = pa.table(
                    {
                        "id": ids,
                        "document": documents,
                        "metadata": [json.dumps(m or {}, sort_keys=True) for m in metadatas],
                        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), self.dim),
                    },
                    schema=run(self.table.schema()),
                )
                merge = self.table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
                run(merge.execute(data))
            for i in range(0, len(gone), 500):
                run(self.table.delete(f"id IN ({_quoted(gone[i : i + 500])})"))
            self._maybe_index()
        except BaseException:
            if self.version() != before:
                run(self.table.restore(before))
            raise
        finally:
            self._index = _UNREAD

    def _maybe_index(self) -> None:
        n = self.count()
        if self.mode == "flat" or (self.mode == "auto" and n < AUTO_ANN) or n < 2:
            return
        index = run(self._vector_index())
        if index is not None:
            stats = run(self.table.index_stats(index.name))
            if stats is not None and stats.num_unindexed_rows <= REINDEX_SHARE * n:
                return
        from lancedb.index import IvfFlat

        parts = partitions(n)
        run(
            self.table.create_index(
                "vector", replace=True, config=IvfFlat(distance_type=METRIC[self.space], num_partitions=parts)
            )
        )
        self.metadata["nbllm_partitions"] = parts
        self.store._save_manifest(self)


class LanceStore:
    def __init__(self, path: str | None):
        self.path = Path(path) if path else None
        self.db = run(_lancedb().connect_async(str(self.path) if self.path else "memory://"))
        self._manifests: dict[str, dict] = {}  # in memory; on disk: DIR/<name>.nbllm.json
        self._collections: dict[str, LanceCollection] = {}

    def _manifest_path(self, name: str) -> Path:
        return self.path / f"{name}.nbllm.json"

    def _save_manifest(self, col: LanceCollection) -> None:
        man = {
            "store": NAME,
            "name": col.name,
            "dimension": col.dim,
            "distance": col.space,
            "index": col.mode,
            "embedder": col.metadata.get("nbllm_embedder"),
            "metadata": col.metadata,
        }
        self._manifests[col.name] = man
        if self.path is not None:
            write_json(self._manifest_path(col.name), man)

    def list_collections(self) -> list[str]:
        found = set(self._manifests)
        if self.path is not None and self.path.is_dir():
            found |= {p.name[: -len(".nbllm.json")] for p in self.path.glob("*.nbllm.json")}
        return sorted(found)

    def get_collection(self, name: str, **_):
        if name not in self._collections:
            man = self._manifests.get(name)
            if man is None and self.path is not None and self._manifest_path(name).is_file():
                man = json.loads(self._manifest_path(name).read_text())
            if man is None:
                raise DataError(f"no LanceDB collection '{name}'")
            self._collections[name] = LanceCollection(self, run(self.db.open_table(name)), man)
        return self._collections[name]

    def create_collection(self, name: str, metadata: dict, **_):
        import pyarrow as pa

        dim = int(metadata["nbllm_dim"])
        if self.path is not None:
            if folder_store(self.path) not in (None, NAME):
                raise ConfigError(f"{self.path} is not a LanceDB folder")
            mark_folder(self.path, NAME)
        schema = pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("document", pa.string()),
                pa.field("metadata", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), dim)),
            ]
        )
        run(self.db.drop_table(name, ignore_missing=True))  # a table left without its manifest
        table = run(self.db.create_table(name, schema=schema))  # (mode="overwrite" logs a WARN line)
        man = {
            "name": name,
            "metadata": dict(metadata),
            "dimension": dim,
            "distance": metadata.get("nbllm_distance", "l2"),
        }
        col = LanceCollection(self, table, man)
        self._save_manifest(col)
        self._collections[name] = col
        return col

    def delete_collection(self, name: str) -> None:
        self._collections.pop(name, None)
        self._manifests.pop(name, None)
        if self.path is not None and self._manifest_path(name).exists():
            self._manifest_path(name).unlink()
        run(self.db.drop_table(name, ignore_missing=True))
