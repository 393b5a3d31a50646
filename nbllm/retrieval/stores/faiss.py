"""FAISS (faiss-cpu): exact IndexFlatL2/IndexFlatIP, or IndexHNSWFlat, in memory or a folder.

    DIR/nbllm-store.json              {"store": "faiss"}
    DIR/<collection>/manifest.json    store, dimension, distance, embedder, index, count, metadata
    DIR/<collection>/index.faiss      the vectors (cosine: unit vectors under IndexFlatIP / HNSW IP)
    DIR/<collection>/chunks.jsonl     one line per row: id, document, metadata, norm

--index flat is exact; ann is HNSW, approximate (HNSW settings below, measured with benchmarks/rag.py
to keep recall@10 >= 0.98); auto (the default) is flat below AUTO_HNSW chunks and HNSW from there on.
FAISS keeps no ids or metadata, so the chunk table and the --where filter live in nbllm
(base.TableCollection); a filtered query is an exact search over the chunks that pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from .base import TableCollection, folder_store, mark_folder, swap_in, write_json

NAME = "faiss"
AUTO_HNSW = 20_000  # --index auto: exact below this many chunks, HNSW from here on
# Chroma's settings. Measured on benchmarks/rag.py's 100k vectors (tight clusters of near-duplicates):
# efConstruction 40 gave recall@10 0.90 (efSearch 256) to 0.95 (512); 200 gives 0.997 at efSearch 128,
# 0.6 ms a query, built in ~50 s on a busy 2-core machine (Chroma: ~105 s)
HNSW = {"M": 32, "ef_construction": 200, "ef_search": 128}
_STORES: dict = {}


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ConfigError(
            "--store faiss needs the faiss-cpu package: pip install faiss-cpu (or pip install 'nbllm[stores]')"
        ) from None
    return faiss


def connect(persist=None) -> "FaissStore":
    _faiss()  # a missing package is reported before anything else
    key = str(Path(persist).expanduser().resolve()) if persist else None
    if key not in _STORES:
        _STORES[key] = FaissStore(key)
    return _STORES[key]


def kind(mode: str, count: int) -> str:
    """The index --index MODE means at `count` chunks: flat or hnsw (ann)."""
    if mode in ("flat", "ann"):
        return "hnsw" if mode == "ann" else "flat"
    return "hnsw" if count >= AUTO_HNSW else "flat"


def build_index(vecs: np.ndarray, space: str, kind_: str):
    faiss = _faiss()
    dim = vecs.shape[1]
    metric = faiss.METRIC_L2 if space == "l2" else faiss.METRIC_INNER_PRODUCT
    if kind_ == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW["M"], metric)
        index.hnsw.efConstruction = HNSW["ef_construction"]
        index.hnsw.efSearch = HNSW["ef_search"]
    else:
        index = faiss.IndexFlatL2(dim) if space == "l2" else faiss.IndexFlatIP(dim)
    if len(vecs):
        index.add(_prepared(vecs, space))
    return index


def _prepared(vecs: np.ndarray, space: str) -> np.ndarray:
    """What the index holds: unit vectors for cosine (inner product of unit vectors = cos)."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    if space != "cosine":
        return vecs
    return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


class FaissCollection(TableCollection):
    def __init__(self, name: str, metadata: dict, dim: int, folder: Path | None = None):
        super().__init__(name, metadata, dim)
        self.folder = folder
        self.mode = self.metadata.get("nbllm_index", "auto")
        self._index = None

    @property
    def kind(self) -> str:
        return kind(self.mode, self.count())

    def _search(self, query, k):
        if k <= 0:
            return np.zeros(0, dtype=int)
        if self._index is None:
            self._index = build_index(self._vecs, self.space, self.kind)
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = max(HNSW["ef_search"], 2 * k)
        faiss, threads = _faiss(), None
        try:  # one query is too small to share: OpenMP threads cost 5-10x when other processes hold the cores
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            _, rows = self._index.search(_prepared(query[None, :], self.space), k)
        finally:
            if threads:
                faiss.omp_set_num_threads(threads)
        return rows[0][rows[0] >= 0]

    def _commit(self, state, appended):
        ids, docs, metas, vecs = state
        new_kind = kind(self.mode, len(ids))
        if appended is not None and self._index is not None and new_kind == self.kind:
            if len(appended):
                self._index.add(_prepared(appended, self.space))  # undone by _index_dropped on failure
            index = self._index
        else:
            index = build_index(vecs, self.space, new_kind)
        if self.folder is not None:
            self._save(index, ids, docs, metas, vecs, new_kind)
        self._index = index

    def _index_dropped(self):
        self._index = None

    def _save(self, index, ids, docs, metas, vecs, kind_) -> None:
        faiss = _faiss()
        tmp = self.folder.with_name(f".{self.folder.name}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        faiss.write_index(index, str(tmp / "index.faiss"))
        norms = np.linalg.norm(vecs, axis=1) if self.space == "cosine" else None
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
            for n, (i, d, m) in enumerate(zip(ids, docs, metas)):
                row = {"id": i, "document": d, "metadata": m}
                if norms is not None:
                    row["norm"] = float(norms[n])
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        write_json(tmp / "manifest.json", manifest(self.name, self.metadata, self.dim, self.space, kind_, len(ids)))
        swap_in(tmp, self.folder)

    @classmethod
    def load(cls, folder: Path) -> "FaissCollection":
        faiss = _faiss()
        man = json.loads((folder / "manifest.json").read_text())
        col = cls(man["name"], man["metadata"], man["dimension"], folder)
        rows = [json.loads(line) for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
        index = faiss.read_index(str(folder / "index.faiss"))
        if index.ntotal != len(rows) or index.d != col.dim:
            raise DataError(
                f"the FAISS collection in {folder} is damaged ({index.ntotal} vectors, {len(rows)} "
                "chunks); index it again into a new --persist folder"
            )
        vecs = index.reconstruct_n(0, index.ntotal) if len(rows) else np.zeros((0, col.dim), np.float32)
        if col.space == "cosine" and len(rows):
            vecs = vecs * np.array([r.get("norm", 1.0) for r in rows], dtype=np.float32)[:, None]
        col._ids, col._docs = [r["id"] for r in rows], [r["document"] for r in rows]
        col._metas, col._vecs = [r["metadata"] for r in rows], np.ascontiguousarray(vecs, dtype=np.float32)
        col._pos = {i: n for n, i in enumerate(col._ids)}
        col._index = index
        if man.get("index") == "hnsw":
            index.hnsw.efSearch = HNSW["ef_search"]
        return col


def manifest(name, metadata, dim, space, kind_, count) -> dict:
    return {
        "store": NAME,
        "name": name,
        "dimension": dim,
        "distance": space,
        "index": kind_,
        "count": count,
        "embedder": metadata.get("nbllm_embedder"),
        "metadata": metadata,
    }


class FaissStore:
    """Collections in memory (path None) or one sub-folder each under `path`."""

    def __init__(self, path: str | None):
        self.path = Path(path) if path else None
        self._collections: dict[str, FaissCollection] = {}

    def _folder(self, name: str) -> Path:
        return self.path / name

    def list_collections(self) -> list[str]:
        found = set(self._collections)
        if self.path is not None and self.path.is_dir():
            found |= {p.name for p in self.path.iterdir() if (p / "manifest.json").is_file()}
        return sorted(found)

    def get_collection(self, name: str, **_):
        if name not in self._collections:
            if self.path is None or not (self._folder(name) / "manifest.json").is_file():
                raise DataError(f"no FAISS collection '{name}'")
            self._collections[name] = FaissCollection.load(self._folder(name))
        return self._collections[name]

    def create_collection(self, name: str, metadata: dict, **_):
        dim = int(metadata["nbllm_dim"])
        folder = None
        if self.path is not None:
            if folder_store(self.path) not in (None, NAME):
                raise ConfigError(f"{self.path} is not a FAISS folder")
            mark_folder(self.path, NAME)
            folder = self._folder(name)
        col = FaissCollection(name, metadata, dim, folder)
        if folder is not None:
            col._save(build_index(col._vecs, col.space, col.kind), [], [], [], col._vecs, col.kind)
        self._collections[name] = col
        return col

    def delete_collection(self, name: str) -> None:
        import shutil

        self._collections.pop(name, None)
        if self.path is not None and self._folder(name).exists():
            shutil.rmtree(self._folder(name))
