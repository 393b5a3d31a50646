"""Sentence embeddings with a cache keyed by model and text hash.

`minilm` loads the packaged all-MiniLM-L6-v2 through sentence-transformers (no download);
a local folder or a hub id loads through sentence-transformers too (a hub id offline ends in
OfflineError); a registered encoder (tests) is mean-pooled from its transformers model.
Re-indexing embeds only texts the cache has not seen for that model.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np

from .. import models
from ..errors import ConfigError, ModelError
from .split import text_hash

_EMBEDDERS: dict[tuple, "Embedder"] = {}


class EmbeddingCache:
    """Vectors by (model, text hash): in memory, and in a SQLite file under $NBLLM_CACHE so a
    new kernel re-indexes an unchanged corpus without embedding it again."""

    def __init__(self, model: str, path: Path | None = None):
        self.model, self.memory, self.lock = model, {}, threading.Lock()
        self.path = path if path is not None else models.cache_dir() / "embeddings.sqlite"
        self.db = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), check_same_thread=False)
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vec BLOB, PRIMARY KEY (model, hash))"
            )
        except sqlite3.Error:  # a read-only cache folder: memory only
            self.db = None

    def get(self, hashes: list[str]) -> dict[str, np.ndarray]:
        found = {h: self.memory[h] for h in hashes if h in self.memory}
        missing = [h for h in hashes if h not in found]
        if self.db is not None and missing:
            with self.lock:
                for i in range(0, len(missing), 500):
                    part = missing[i : i + 500]
                    rows = self.db.execute(
                        f"SELECT hash, vec FROM vectors WHERE model = ? AND hash IN ({','.join('?' * len(part))})",
                        [self.model, *part],
                    ).fetchall()
                    for h, blob in rows:
                        found[h] = self.memory[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, items: dict[str, np.ndarray]) -> None:
        self.memory.update(items)
        if self.db is not None and items:
            with self.lock:
                self.db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(self.model, h, v.astype(np.float32).tobytes()) for h, v in items.items()],
                )
                self.db.commit()


class Embedder:
    """embed(texts) -> float32 array (n, dim); tokens(text) counts the encoder's tokens."""

    def __init__(self, name: str = "minilm", batch_size: int = 64, device: str | None = None, cache: bool = True):
        self.name, self.batch_size = name, batch_size
        self.device = device or models.pick_device()
        self._st, self._hf = None, None
        self._load()
        self.cache = EmbeddingCache(f"{name}:{self.dim}") if cache else None
        self.stats = {"embedded": 0, "cached": 0}

    @property
    def module(self):
        """The torch module that embeds (its weights are what nbllm.provenance fingerprints)."""
        return self._st if self._st is not None else self._hf[0]

    def _load(self) -> None:
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self._load_model()
        finally:
            if bars:
                hf_logging.enable_progress_bar()

    def _load_model(self) -> None:
        name = self.name
        if name == "minilm":
            self._st = _sentence_transformer(str(models.minilm_dir()), self.device)
        elif name in models.registered():
            spec = models.resolve(name)
            if spec.kind != models.ENCODER:
                raise ConfigError(
                    f"'{name}' is a causal language model, not a sentence encoder; "
                    "use --embedder minilm, an encoder folder or a sentence-transformers hub id"
                )
            model, tokenizer = models.load_model(name, device=self.device)
            self._hf = (model.float().eval(), tokenizer)
        elif Path(name).expanduser().is_dir():
            self._st = _sentence_transformer(str(Path(name).expanduser()), self.device)
        elif models._is_hub_id(name):
            models.require_hub(name, "embedder")
            try:
                self._st = _sentence_transformer(name, self.device)
            except (OSError, ValueError) as err:
                raise models._hub_error(name, err) from None
        else:
            raise ModelError(
                f"unknown embedder '{name}'; use minilm, an encoder folder, or a hub id like "
                "sentence-transformers/all-MiniLM-L6-v2"
            )
        self.tokenizer = self._st.tokenizer if self._st is not None else self._hf[1]
        if self._st is not None:
            dim = getattr(self._st, "get_embedding_dimension", None) or self._st.get_sentence_embedding_dimension
            self.dim = int(dim())
            self.max_tokens = int(self._st.max_seq_length)
        else:
            self.dim = int(self._hf[0].config.hidden_size)
            self.max_tokens = int(min(getattr(self._hf[0].config, "max_position_embeddings", 512), 512))

    def tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed without the cache (what a plain sentence-transformers call does)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._st is not None:
            return self._st.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
            ).astype(np.float32)
        return self._mean_pool(texts)

    def _mean_pool(self, texts: list[str]) -> np.ndarray:
        import torch

        from ..lm import mean_pool

        model, tok = self._hf
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                enc = tok(
                    texts[i : i + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(model.device)
                vec = mean_pool(model(**enc).last_hidden_state, enc["attention_mask"])
                out.append(torch.nn.functional.normalize(vec, dim=-1).float().cpu().numpy())
        return np.concatenate(out)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed through the cache: only texts this model has not embedded before are encoded."""
        if self.cache is None:
            self.stats["embedded"] += len(texts)
            return self.encode(list(texts))
        hashes = [text_hash(t) for t in texts]
        found = self.cache.get(sorted(set(hashes)))
        todo = {}
        for h, t in zip(hashes, texts):
            if h not in found:
                todo.setdefault(h, t)
        if todo:
            vecs = self.encode(list(todo.values()))
            new = dict(zip(todo, vecs))
            self.cache.put(new)
            found.update(new)
        self.stats["embedded"] += len(todo)
        self.stats["cached"] += len(texts) - len(todo)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, h in enumerate(hashes):
            out[i] = found[h]
        return out


def _sentence_transformer(name_or_path: str, device: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(name_or_path, device=device)


def get_embedder(name: str = "minilm", device: str | None = None) -> Embedder:
    """One Embedder per (name, device) in this process: the model loads once."""
    key = (name, device)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(name, device=device)
    return _EMBEDDERS[key]
