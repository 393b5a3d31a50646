"""Vector stores behind one interface (base.py): chroma (the default), faiss, lancedb.

A store is a module with connect(persist) -> an object with list_collections(),
get_collection(name), create_collection(name, metadata) and delete_collection(name); its
collections answer count/get/query/upsert/delete as Chroma's do. register() adds one (e.g. a
Pinecone adapter) under a new --store name. Importing this package imports no store library.
"""

from __future__ import annotations

import importlib

from ...errors import ConfigError

STORES = {
    "chroma": "nbllm.retrieval.stores.chroma",
    "faiss": "nbllm.retrieval.stores.faiss",
    "lancedb": "nbllm.retrieval.stores.lancedb",
}
DEFAULT = "chroma"


def register(name: str, module: str) -> None:
    """Make `--store NAME` use the module `module` (dotted path; it provides connect(persist))."""
    STORES[name] = module


def check_store(name: str) -> str:
    if name not in STORES:
        raise ConfigError(
            f"unknown store {name!r}; use --store {', '.join(STORES)} (or nbllm.retrieval.stores.register() your own)"
        )
    return name


def backend(name: str):
    return importlib.import_module(STORES[check_store(name)])
