"""Where a result came from: versions, device and dtype, seed, fingerprints of the weights and
the data, and the options of the call. Every result carries one as `.provenance`; the HTML view
shows it, the leaderboard keeps it in its columns and exports, and `__repr__` never shows it
(labs compare reprs: no versions or hashes there).

    for_model(model_or_lm) -> dict     name, device, dtype, model_fingerprint, adapter
    for_data(records)      -> str      short sha256 of the records as canonical JSON
    fingerprint(model)     -> str      short sha256 of every parameter's and buffer's bytes
    collect(model=..., data=..., seed=..., flags=..., **extra) -> Provenance

The weights' fingerprint is cached per model object, keyed on each tensor's storage and its
`_version` counter (every in-place optimizer step, `load_state_dict` and `copy_` bumps it), so
evaluating the same model again does not rehash it. Writes through `.data` (`p.data.copy_`)
bypass the counter: call `fingerprint(model, cache=False)` after such surgery.

Backend module: no IPython, torch imported only when a model is fingerprinted.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import platform
import weakref
from dataclasses import asdict, dataclass, field

SHORT = 12  # hex digits kept of a sha256
LIBRARIES = ("torch", "transformers", "peft", "datasets", "chromadb")
COLUMNS = (
    "model_fingerprint",
    "adapter",
    "data_fingerprint",
    "seed",
    "device",
    "dtype",
    "nbllm",
    "python",
    *LIBRARIES,
    "flags",
)  # the leaderboard's provenance columns, in order


@functools.lru_cache(maxsize=1)
def versions() -> dict:
    """nbllm, python and the libraries' installed versions (None where not installed); no imports."""
    from importlib import metadata

    from . import __version__

    out = {"nbllm": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@dataclass(frozen=True)
class Provenance:
    """What made a result. `flags` are the call's options; `extra` holds what one kind of result
    adds (an embedder and its weights, a collection, a store)."""

    nbllm: str
    python: str
    libraries: dict
    model: str | None = None
    device: str | None = None
    dtype: str | None = None
    seed: int | None = None
    model_fingerprint: str | None = None
    adapter: tuple = ()
    data_fingerprint: str | None = None
    flags: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["adapter"] = list(self.adapter)
        return out

    def columns(self) -> dict:
        """The leaderboard's provenance columns (flat; flags as canonical JSON)."""
        return {
            "model_fingerprint": self.model_fingerprint,
            "adapter": ",".join(self.adapter) or None,
            "data_fingerprint": self.data_fingerprint,
            "seed": self.seed,
            "device": self.device,
            "dtype": self.dtype,
            "nbllm": self.nbllm,
            "python": self.python,
            **{name: self.libraries.get(name) for name in LIBRARIES},
            "flags": _canonical(self.flags),
        }

    def html(self) -> str:
        """A collapsed <details> block, every value escaped."""
        items = [
            ("model", self.model),
            ("weights", self.model_fingerprint),
            ("adapter", ", ".join(self.adapter) or None),
            ("data", self.data_fingerprint),
            ("seed", self.seed),
            ("device", self.device),
            ("dtype", self.dtype),
            *((k, v if isinstance(v, str) else _canonical(v)) for k, v in self.extra.items()),
            ("flags", _canonical(self.flags) if self.flags else None),
            (
                "versions",
                ", ".join(
                    f"{k} {v}" for k, v in {"nbllm": self.nbllm, "python": self.python, **self.libraries}.items() if v
                ),
            ),
        ]
        # a definition list, not a table: the result's own table stays the only one in its view
        rows = "".join(
            f"<dt>{html.escape(str(k))}</dt><dd style='font-family:monospace'>{html.escape(str(v))}</dd>"
            for k, v in items
            if v not in (None, "")
        )
        return (
            f"<details class='nbllm-provenance'><summary>provenance</summary>"
            f"<dl style='display:grid;grid-template-columns:max-content auto;gap:0 1em'>{rows}</dl></details>"
        )


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _plain(value):
    """A JSON-able view of records: DataFrames and Datasets as lists of dicts, tuples as lists."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # pandas DataFrame
        return value.to_dict("records")
    if hasattr(value, "to_list") and hasattr(value, "features"):  # datasets.Dataset
        return value.to_list()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def for_data(records) -> str | None:
    """Short sha256 of the records (dicts, strings, a DataFrame, a Dataset) as canonical JSON:
    the same records give the same fingerprint, one changed record another. None for no data."""
    if records is None:
        return None
    text = _canonical(_plain(records))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:SHORT]


# ---------------------------------------------------------------- weights

_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _tensors(model) -> list:
    """(name, tensor) of every parameter and buffer, tied weights once, in a stable order."""
    seen, out = set(), []
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if id(t) not in seen:
            seen.add(id(t))
            out.append((name, t))
    return sorted(out, key=lambda item: item[0])


def _state_key(model, tensors) -> tuple:
    merged = tuple(tuple(m.merged_adapters) for m in model.modules() if hasattr(m, "merged_adapters"))
    return (
        tuple(
            (n, id(t), t.data_ptr() if t.device.type != "meta" else 0, t._version, tuple(t.shape), str(t.dtype))
            for n, t in tensors
        ),
        merged,
        tuple(adapters(model)),
    )


def fingerprint(model, cache: bool = True) -> str:
    """Short sha256 of every parameter's and buffer's name, dtype, shape and bytes (adapters
    included: a LoRA-wrapped model differs from its base). Cached per model object until any
    tensor changes. A model sharded over processes (FSDP2) hashes each process's own shards."""
    import torch

    model = _module(model)
    tensors = _tensors(model)
    key = _state_key(model, tensors)
    if cache:
        hit = _CACHE.get(model)
        if hit is not None and hit[0] == key:
            return hit[1]
    h = hashlib.sha256()
    with torch.no_grad():
        for name, t in tensors:
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            if t.device.type == "meta":
                continue
            t = t.detach()
            if hasattr(t, "to_local"):  # an FSDP2 shard (DTensor): this process's part, no gathering
                t = t.to_local()
            flat = t.reshape(-1)
            if flat.device.type != "cpu":
                flat = flat.cpu()
            flat = flat.contiguous()
            if flat.numel():
                h.update(flat.view(torch.uint8).numpy().data)
    fp = h.hexdigest()[:SHORT]
    try:
        _CACHE[model] = (key, fp)
    except TypeError:  # an object that takes no weak reference: no cache
        pass
    return fp


def adapters(model) -> list[str]:
    """The active adapter names of a PEFT model (empty without adapters)."""
    if not hasattr(model, "peft_config"):
        return []
    try:
        active = model.active_adapters
    except (AttributeError, ValueError):
        active = getattr(model, "active_adapter", None)
    if isinstance(active, str):
        active = [active]
    return [str(a) for a in (active or [])]


def _module(model_or_lm):
    """The torch module behind an LM, an Encoder, a result with .model/.lm, or a module."""
    obj = model_or_lm
    for _ in range(3):
        if hasattr(obj, "named_parameters") and hasattr(obj, "modules"):
            return obj
        inner = getattr(obj, "model", None)
        if inner is None or isinstance(inner, str):
            inner = getattr(obj, "module", None)  # an Embedder
        if inner is None:
            return None
        obj = inner
    return None


def for_model(model_or_lm) -> dict:
    """name, device, dtype, model_fingerprint and adapter of a model, an LM handle, an Encoder
    or a result holding one; a plain name (not loaded here) gives only the name."""
    if model_or_lm is None:
        return {}
    if isinstance(model_or_lm, str):
        return {"model": model_or_lm}
    module = _module(model_or_lm)
    name = getattr(model_or_lm, "name", None)
    if module is None:
        return {"model": str(name)} if name else {}
    first = next(iter(module.parameters()), None)
    return {
        "model": str(name) if name else type(module).__name__,
        "device": str(first.device) if first is not None else None,
        "dtype": str(first.dtype).replace("torch.", "") if first is not None else None,
        "model_fingerprint": fingerprint(module),
        "adapter": tuple(adapters(module)),
    }


# ---------------------------------------------------------------- the flags and the whole record

_NOT_FLAGS = {
    "model",
    "models",
    "data",
    "name",
    "label",
    "progress",
    "on_group",
    "callbacks",
    "tokenizer",
    "stop_when",
    "train",
    "test",
    "votes",
    "rag",
    "prompts",
    "classifier",
    "encoder",
    "embed",
}


def flags_of(options: dict, drop=()) -> dict:
    """The plain options of a call (its locals() at the top): numbers, strings, booleans and
    lists of them; the model and data (fingerprinted separately) and objects are left out."""

    def plain(v):
        return (
            v is None
            or isinstance(v, (bool, int, float, str))
            or (isinstance(v, (list, tuple)) and all(x is None or isinstance(x, (bool, int, float, str)) for x in v))
        )

    skip = _NOT_FLAGS | set(drop)
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in options.items()
        if not k.startswith("_") and k not in skip and plain(v)
    }


def collect(
    *,
    model=None,
    data=None,
    seed=None,
    flags=None,
    data_fingerprint: str | None = None,
    name: str | None = None,
    **extra,
) -> Provenance:
    """One Provenance: `model` (anything for_model takes), `data` (records, fingerprinted, or give
    data_fingerprint), the seed, the call's flags, and extra facts (embedder, store, ...);
    `name` overrides the model's name."""
    v = versions()
    m = for_model(model)
    return Provenance(
        nbllm=v["nbllm"],
        python=v["python"],
        libraries={k: v[k] for k in LIBRARIES},
        model=name or m.get("model"),
        device=m.get("device"),
        dtype=m.get("dtype"),
        seed=None if seed is None else int(seed),
        model_fingerprint=m.get("model_fingerprint"),
        adapter=tuple(m.get("adapter", ())),
        data_fingerprint=data_fingerprint if data_fingerprint is not None else for_data(data),
        flags=dict(flags or {}),
        extra={k: val for k, val in extra.items() if val is not None},
    )


def attach(result, **kwargs):
    """Set result.provenance = collect(**kwargs) and return the result."""
    result.provenance = collect(**kwargs)
    return result
