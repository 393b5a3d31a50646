"""Chroma: clients in memory, in a persistent folder or on a running server (`chroma run`).

Chroma's default embedding function downloads a model on first use and fails offline, so
every collection gets nbllm's own (NbllmEmbeddingFunction), and nbllm passes vectors itself.
Chroma's collections are the interface (base.py) as they are.
"""

from __future__ import annotations

import math
import os
import sys
from urllib.parse import urlparse

from ...errors import ConfigError, ServerError

NAME = "chroma"
# HNSW settings: measured with benchmarks/rag.py to keep recall@10 >= 0.98 against exact search
HNSW = {"ef_construction": 200, "ef_search": 128, "max_neighbors": 32}

# chromadb 1.5's HttpClient builds its httpx session with timeout=None and has no setting for it
# (chroma_query_request_timeout_seconds is the server's own limit on its query nodes), so a stopped
# or stalled server would hang the cell forever; nbllm sets this limit on every request instead.
# 60 s: one upsert batch of chromadb's maximum (5461 chunks, 384-d) took 6-10 s on a busy 2-core
# machine, so a slow server has ample room, yet a stuck one is reported within a minute.
SERVER_TIMEOUT_ENV = "NBLLM_CHROMA_TIMEOUT"
SERVER_TIMEOUT_S = 60.0

_CLIENTS: dict[tuple, object] = {}


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
            from ..embed import get_embedder

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


def check_server_url(server: str):
    """The parsed --server URL, or one ConfigError naming what is wrong with it."""
    url = urlparse(server if "://" in server else f"http://{server}")
    example = "use e.g. http://127.0.0.1:8000"
    if url.scheme not in ("http", "https"):
        raise ConfigError(f"--server {server!r}: Chroma serves http or https, not {url.scheme}; {example}")
    if not url.hostname:
        raise ConfigError(f"--server {server!r} is not a URL; {example}")
    try:
        url.port
    except ValueError:
        port = url.netloc.rpartition(":")[2]
        raise ConfigError(
            f"--server {server!r}: the port {port!r} is not a number from 1 to 65535; {example}"
        ) from None
    if url.port == 0:
        raise ConfigError(f"--server {server!r}: port 0 is not a server's port; {example}")
    return url


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
        url = check_server_url(server)
        import httpx
        from chromadb.api.fastapi import FastAPI

        seconds = server_timeout()
        host, port, ssl = url.hostname, url.port or 8000, url.scheme == "https"
        api = FastAPI.resolve_url(
            chroma_server_host=host,
            chroma_server_http_port=port,
            chroma_server_ssl_enabled=ssl,
            default_api_path=settings.chroma_server_api_default_path,
        )
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
        raise ConfigError(
            f"{SERVER_TIMEOUT_ENV}={raw!r} is not a number of seconds; set it to a positive number "
            f"(e.g. {SERVER_TIMEOUT_ENV}=120), or unset it for the default {SERVER_TIMEOUT_S:g} s"
        )
    return seconds


def unreachable(server: str, err: BaseException, seconds: float | None = None) -> ServerError:
    url = urlparse(server if "://" in server else f"http://{server}")
    run = f"`chroma run --path DIR --host {url.hostname} --port {url.port or 8000}`"
    httpx = sys.modules.get("httpx")
    if isinstance(err, TimeoutError) or (httpx and isinstance(err, httpx.TimeoutException)):
        waited = f"within {seconds:g} s" if seconds else "in time"
        return ServerError(
            f"the Chroma server at {server} did not answer {waited}; check that it is running and "
            f"not stopped or stuck (restart {run}), or raise {SERVER_TIMEOUT_ENV} (seconds) for "
            "slow requests"
        )
    return ServerError(
        f"cannot reach the Chroma server at {server} ({type(err).__name__}); start it (again) with "
        f"{run}, or fix or drop --server"
    )


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


def connect(persist=None):
    return client(persist)


def create(chroma, name: str, metadata: dict, distance: str, embedder: str):
    return chroma.create_collection(
        name,
        metadata=metadata,
        embedding_function=embedding_function(embedder),
        configuration={"hnsw": {"space": distance, **HNSW}},
    )
