"""Adapters over peft, in one place: attach, name, inspect, merge/unmerge, save/load/switch.

LoRA freezes W0 and learns h = W0 x + (alpha / r) B A x with A (r x in) random and B (out x r)
zero, so at step 0 the adapted model is exactly the base. Adapters are saved alone
(safetensors, kilobytes to megabytes), with a small nbllm_adapter.json naming the base and the
shapes of the layers they adapt, so loading one onto another base is refused. Every LoRA
nbllm attaches goes through attach() and its one target check, lora_targets().
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path

import torch

from ..errors import ConfigError, ModelError


@contextlib.contextmanager
def quiet_peft():
    """Hide transformers' FutureWarning about peft's own call to is_gradient_checkpointing
    (noise in every notebook cell that attaches or loads an adapter)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def peft_wrap(model, peft_config, **kwargs):
    from peft import get_peft_model

    with quiet_peft():
        return get_peft_model(model, peft_config, **kwargs)


def unwrap(model):
    """The transformers model under a peft wrapper (LoRA layers stay in place inside it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def is_prompt_learning(model) -> bool:
    """True for peft soft-prompt models (their forward prepends trained virtual tokens)."""
    config = getattr(model, "peft_config", {}).get(getattr(model, "active_adapter", None))
    return bool(getattr(config, "is_prompt_learning", False))


def linear_module_names(model) -> list[str]:
    """Short names of the linear layers a LoRA target can name (q_proj, v_proj, ...), head excluded."""
    head = unwrap(model).get_output_embeddings()
    names = set()
    for name, mod in unwrap(model).named_modules():
        short = name.rsplit(".", 1)[-1]
        if ".lora_" in name or short == "base_layer" or mod is head:
            continue  # peft's own sub-layers; an adapted layer counts under its own name
        if isinstance(mod, torch.nn.Linear) or hasattr(mod, "base_layer"):
            names.add(short)
    return sorted(names)


def lora_targets(model, targets: str):
    """'all-linear' or a comma list, checked against the model: a typo is an error, not a no-op."""
    if targets.strip() == "all-linear":
        return "all-linear"
    wanted = [t.strip() for t in targets.split(",") if t.strip()]
    if not wanted:
        raise ConfigError("--targets is empty; name modules like q_proj,v_proj or use all-linear")
    existing = linear_module_names(model)
    missing = [t for t in wanted if t not in existing]
    if missing:
        raise ConfigError(
            f"LoRA target(s) {', '.join(missing)} match no module of this model; "
            f"its linear modules are {', '.join(existing)}"
        )
    return wanted


META = "nbllm_adapter.json"


def has_adapters(model) -> bool:
    return hasattr(model, "peft_config")


def require_adapters(model, action: str):
    if not has_adapters(model):
        raise ConfigError(
            f"cannot {action}: this model has no LoRA adapters; attach one first with "
            "%lora VAR --r 8 (or train with %%sft --method lora)"
        )


def attach(
    model,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.05,
    targets: str = "q_proj,v_proj",
    name: str = "default",
    seed: int | None = 0,
    task_type: str | None = "CAUSAL_LM",
):
    """Wrap `model` with a new LoRA adapter (or add a named one beside existing adapters): the
    one way nbllm attaches LoRA (%lora, %%sft --method lora/dpo, classifiers). seed fixes A's
    random init (None: draw from the global generator, which the run's seed has set)."""
    from peft import LoraConfig

    if r <= 0:
        raise ConfigError(f"--r must be > 0 (got {r})")
    if alpha <= 0:
        raise ConfigError(f"--alpha must be > 0 (got {alpha})")
    if not 0 <= dropout < 1:
        raise ConfigError(f"--dropout must be in [0, 1) (got {dropout})")
    if has_adapters(model) and name in model.peft_config:
        raise ConfigError(f"an adapter named '{name}' is already attached; pick another --name")
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_targets(model, targets),
        bias="none",
        task_type=task_type,
    )
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        if has_adapters(model):
            model.add_adapter(name, config)
            model.set_adapter(name)
            return model
        return peft_wrap(model, config, adapter_name=name)


def lora_layers(model):
    """(module name, peft LoRA layer) for every adapted linear layer."""
    from peft.tuners.lora import LoraLayer

    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoraLayer)]


def inspect(model, adapter: str | None = None) -> list[dict]:
    """One row per adapted module: shape, rank, alpha, trainable params, and what full
    fine-tuning of that module would train."""
    require_adapters(model, "inspect adapters")
    adapter = adapter or model.active_adapter
    rows = []
    for name, layer in lora_layers(model):
        if adapter not in layer.lora_A:
            continue
        a, b = layer.lora_A[adapter].weight, layer.lora_B[adapter].weight
        out_f, in_f = b.shape[0], a.shape[1]
        rows.append(
            {
                "module": name.removeprefix("base_model.model."),
                "shape": f"{out_f}x{in_f}",
                "r": a.shape[0],
                "alpha": layer.lora_alpha[adapter],
                "scaling": layer.scaling[adapter],
                "lora_params": a.numel() + b.numel(),
                "full_params": out_f * in_f,
            }
        )
    return rows


def merge(model) -> None:
    """W <- W0 + (alpha / r) B A in place (outputs unchanged, no adapter overhead at inference)."""
    require_adapters(model, "merge")
    if any(layer.merged for _, layer in lora_layers(model)):
        raise ConfigError("the adapters are already merged; use --unmerge first")
    model.base_model.merge_adapter()


def unmerge(model) -> None:
    """Subtract the adapter again: W <- W0."""
    require_adapters(model, "unmerge")
    if not any(layer.merged for _, layer in lora_layers(model)):
        raise ConfigError("the adapters are not merged; nothing to unmerge")
    model.base_model.unmerge_adapter()


def _base_signature(model, base_name: str) -> dict:
    return {
        "base_model": base_name,
        "layers": {
            n.removeprefix("base_model.model."): list(layer.get_base_layer().weight.shape)
            for n, layer in lora_layers(model)
        },
    }


def save(model, directory, base_name: str, adapter: str | None = None) -> Path:
    """Write the adapter alone (safetensors, never the base weights)."""
    import shutil
    import uuid

    from ..paths import check_destination

    require_adapters(model, "save an adapter")
    adapter = adapter or model.active_adapter
    path = check_destination(directory, "--save")
    if path.is_dir() and any(path.iterdir()) and not any(path.glob("**/adapter_config.json")):
        raise ConfigError(
            f"--save '{directory}' is a folder that holds no adapter; give a new or empty folder "
            "(nothing in it was changed)"
        )
    # written beside, then moved in: an interrupted save never leaves a half adapter at `path`, and
    # the other adapters saved in the same folder (peft's subfolders per name) stay as they are
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path if adapter == "default" else path / adapter  # peft puts named adapters in a subfolder
    try:
        model.save_pretrained(tmp, selected_adapters=[adapter], safe_serialization=True)
        written = tmp if adapter == "default" else tmp / adapter
        (written / META).write_text(json.dumps(_base_signature(model, base_name), indent=1))
        if adapter == "default":  # its files sit at the folder's root, beside any named adapters
            path.mkdir(exist_ok=True)
            for file in written.iterdir():
                if file.is_file():
                    os.replace(file, path / file.name)
        else:
            path.mkdir(exist_ok=True)
            old = path / f".{adapter}.old-{uuid.uuid4().hex[:8]}"
            if target.exists():
                target.rename(old)
            written.rename(target)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load(model, directory, name: str, base_name: str):
    """Load a saved adapter under `name` beside any others; refuses an adapter made for
    another base model. Returns the (possibly newly wrapped) model."""
    path = Path(directory).expanduser()
    if not (path / "adapter_config.json").exists():
        raise ModelError(f"'{directory}' holds no adapter (no adapter_config.json); give a folder %lora --save wrote")
    if not any((path / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ModelError(
            f"adapter '{directory}' is incomplete: adapter_model.safetensors is missing; save it again "
            "with %lora VAR --save DIR"
        )
    meta_file = path / META
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        shapes = {n: list(m.weight.shape) for n, m in unwrap(model).named_modules() if isinstance(m, torch.nn.Linear)}
        shapes.update(
            {
                n.removeprefix("base_model.model."): list(layer.get_base_layer().weight.shape)
                for n, layer in lora_layers(model)
            }
            if has_adapters(model)
            else {}
        )
        wrong = [n for n, shape in meta["layers"].items() if shapes.get(n) != shape]
        if meta["base_model"] != base_name or wrong:
            raise ModelError(
                f"adapter '{directory}' was made for base model '{meta['base_model']}', not "
                f"'{base_name}'"
                + (f" ({len(wrong)} layer shapes differ)" if wrong else "")
                + "; load it onto the model it was trained on"
            )
    if has_adapters(model) and name in model.peft_config:
        raise ConfigError(f"an adapter named '{name}' is already loaded; pick another --name")
    from peft import PeftModel

    wrapped = has_adapters(model)
    try:
        with quiet_peft():
            if wrapped:
                model.load_adapter(str(path), adapter_name=name)
            else:
                model = PeftModel.from_pretrained(model, str(path), adapter_name=name, is_trainable=True)
    except Exception as err:  # noqa: BLE001 - a damaged file surfaces as safetensors', torch's or peft's error
        if wrapped and name in model.peft_config:  # roll back the half-registered adapter
            model.delete_adapter(name)
        first = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise ModelError(
            f"adapter '{directory}' could not be loaded ({first}); it does not fit this model or its files are damaged"
        ) from None
    model.set_adapter(name)
    return model


def use(model, name: str) -> None:
    """Switch the active adapter in place."""
    require_adapters(model, "switch adapters")
    if name not in model.peft_config:
        raise ConfigError(f"no adapter named '{name}'; loaded: {', '.join(sorted(model.peft_config))}")
    model.set_adapter(name)


def adapter_names(model) -> list[str]:
    return sorted(model.peft_config) if has_adapters(model) else []


def counts(model) -> tuple[int, int]:
    """(trainable LoRA parameters of the active adapter, base parameters)."""
    rows = inspect(model)
    lora = sum(r["lora_params"] for r in rows)
    _, total = parameter_counts(model)
    all_lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    return lora, total - all_lora


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters, tied weights counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total
