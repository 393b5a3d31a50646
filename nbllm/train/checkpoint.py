"""Checkpoints that resume exactly: weights (or adapter), optimizer, scheduler, RNG, config, state.

    DIR/config.json          the SFTConfig
    DIR/trainer_state.json   step, history, data fingerprint
    DIR/adapter/             LoRA: peft adapter (safetensors, no base weights)
    DIR/model/               full: the whole model (safetensors) and tokenizer
    DIR/trainable.safetensors  last-block / bitfit, and every classifier: only the parameters that train
    DIR/optimizer.pt, scheduler.pt, rng.pt (and scaler.pt with fp16)
    DIR/sharded/             several processes under FSDP2: model and optimizer as a
                             torch.distributed.checkpoint folder (each process writes its shards;
                             it loads on any process count, one included), instead of model/ and
                             optimizer.pt

The folder is written beside DIR and renamed into place, so a crash mid-save leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import uuid
from dataclasses import asdict
from pathlib import Path

import torch

from ..config import SFTConfig
from ..errors import ConfigError
from ..paths import check_destination as check_path
from .adapters import unwrap
from .methods import ADAPTER_METHODS


def data_fingerprint(examples) -> str:
    h = hashlib.sha256()
    for item in examples:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], int):  # classification: (ids, class)
            h.update(json.dumps([list(item[0]), item[1]]).encode())
            continue
        for e in item if isinstance(item, tuple) else (item,):  # preference data holds (chosen, rejected)
            h.update(json.dumps([e.input_ids, e.labels]).encode())
    return h.hexdigest()[:16]


def check_destination(directory) -> Path:
    """Refuse a --save destination before any training: what nbllm.paths refuses, and a folder
    that holds something other than an nbllm checkpoint (it would be replaced)."""
    path = recover(check_path(directory, "--save"))
    if path.is_dir() and any(path.iterdir()) and not (path / "trainer_state.json").exists():
        raise ConfigError(
            f"--save '{directory}' is a folder that is not an nbllm checkpoint; give a new or empty "
            "folder (nothing in it was changed)"
        )
    return path


def _saves_trainable_only(trainer) -> bool:
    return trainer.config.format == "classify" or trainer.config.method not in ADAPTER_METHODS + ("full",)


def save_checkpoint(trainer, directory) -> Path | None:
    """Write the checkpoint: rank 0 alone, or every process its shards when the model is sharded."""
    if trainer.sharded:
        return _save_sharded(trainer, Path(directory).expanduser())
    if trainer.rank != 0:
        return None
    final = Path(directory).expanduser()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    return _publish(trainer, tmp, final)


def _save_sharded(trainer, final: Path) -> Path:
    import torch.distributed as dist

    tmp = final.parent / f".{final.name}.tmp-step{trainer.state.step}"  # the same name on every process
    if trainer.rank == 0:
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    dist.barrier()
    trainer.processes.save_sharded(trainer.engine, trainer.optimizer, tmp / "sharded")
    dist.barrier()
    if trainer.rank == 0:
        _publish(trainer, tmp, final)
    dist.barrier()
    return final


def recover(final) -> Path:
    """Undo what a save killed between its two renames left: the checkpoint folder gone, the
    previous one beside it as .NAME.old-*. That previous checkpoint is put back in place."""
    final = Path(final).expanduser()
    if not final.exists():
        olds = sorted(final.parent.glob(f".{final.name}.old-*"), key=lambda p: p.stat().st_mtime)
        if olds and (olds[-1] / "trainer_state.json").exists():
            os.rename(olds[-1], final)
    return final


def _publish(trainer, tmp: Path, final: Path) -> Path:
    """Write the rest of the checkpoint into tmp, then rename it into place (first clearing what
    an interrupted earlier save of the same folder left beside it)."""
    recover(final)
    for stale in (*final.parent.glob(f".{final.name}.tmp-*"), *final.parent.glob(f".{final.name}.old-*")):
        if stale != tmp:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.mkdir(exist_ok=True)
        _write(trainer, tmp)
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write(trainer, out: Path) -> None:
    cfg, model = trainer.config, trainer.model
    (out / "config.json").write_text(cfg.to_json())
    state = asdict(trainer.state)
    state.update(
        total_steps=trainer.total_steps,
        data=data_fingerprint(trainer.data.train + trainer.data.val),
        processes=trainer.world,
    )
    (out / "trainer_state.json").write_text(json.dumps(state, indent=1, default=float))
    if trainer.sharded:
        pass  # weights and optimizer are in sharded/
    elif _saves_trainable_only(trainer):
        from safetensors.torch import save_file

        save_file(
            {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad},
            out / "trainable.safetensors",
        )
    elif cfg.method in ADAPTER_METHODS:
        model.save_pretrained(out / "adapter")
    else:  # full
        unwrap(model).save_pretrained(out / "model")
        trainer.tokenizer.save_pretrained(out / "model")
    if not trainer.sharded:
        torch.save(trainer.optimizer.state_dict(), out / "optimizer.pt")
    torch.save(trainer.scheduler.state_dict(), out / "scheduler.pt")
    if trainer.scaler is not None:
        torch.save(trainer.scaler.state_dict(), out / "scaler.pt")
    rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        rng["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover
        pass
    torch.save(rng, out / "rng.pt")


def read_config(directory) -> SFTConfig:
    path = recover(directory)
    if not (path / "config.json").exists() or not (path / "trainer_state.json").exists():
        raise ConfigError(
            f"'{directory}' is not an nbllm checkpoint (no config.json / trainer_state.json); "
            "give the folder a --save wrote"
        )
    text = _readable(path / "config.json", directory, lambda f: f.read_text())
    try:
        return SFTConfig.from_json(text)
    except (json.JSONDecodeError, RecursionError):
        raise _incomplete(directory, "config.json", "it is empty or cut short") from None


def _incomplete(directory, name: str, why: str) -> ConfigError:
    return ConfigError(
        f"checkpoint '{directory}' is incomplete or damaged: {name} {why}; resume from an earlier "
        "checkpoint, or train again with --save"
    )


def _readable(file: Path, directory, load):
    """load(file), or one ConfigError naming the checkpoint file that is missing or damaged."""
    name = str(file.relative_to(Path(directory).expanduser()))
    if not file.exists():
        raise _incomplete(directory, name, "is missing")
    try:
        return load(file)
    except Exception as err:  # noqa: BLE001 - torch.load, safetensors and json each fail their own way
        first = str(err).splitlines()[0][:100] if str(err) else type(err).__name__
        raise _incomplete(directory, name, f"cannot be read ({first})") from None


def _json(file: Path):
    return json.loads(file.read_text())


def _torch(file: Path):
    return torch.load(file, weights_only=False)


def _safetensors(file: Path):
    from safetensors.torch import load_file

    return load_file(file)


def load_checkpoint(trainer, directory) -> None:
    """Restore weights, optimizer, scheduler, RNG and state into a freshly built trainer; a
    missing or damaged file is one ConfigError that names it, before anything is restored."""
    path = Path(directory).expanduser()
    state = _readable(path / "trainer_state.json", directory, _json)
    if not isinstance(state, dict) or not {"step", "tokens", "history", "train_seconds"} <= set(state):
        raise _incomplete(directory, "trainer_state.json", "lacks the step, tokens or history")
    files = {"scheduler.pt": _torch, "rng.pt": _torch}
    if not (path / "sharded").is_dir():
        files["optimizer.pt"] = _torch
    loaded = {name: _readable(path / name, directory, load) for name, load in files.items()}
    fingerprint = data_fingerprint(trainer.data.train + trainer.data.val)
    if state.get("data") != fingerprint:
        raise ConfigError(
            f"the data differs from the data checkpoint '{directory}' was trained on; "
            "pass the same --data (and --max-length) to resume"
        )
    cfg, model = trainer.config, trainer.model
    if (path / "sharded").is_dir():
        from torch.distributed.checkpoint.api import CheckpointException  # a BaseException, not an Exception

        try:
            trainer.processes.load_sharded(trainer.engine, trainer.optimizer, path / "sharded")
        except (Exception, CheckpointException) as err:  # noqa: BLE001 - DCP reports a misfit several ways
            reason = next(
                (line.strip() for line in str(err).splitlines() if "mismatch" in line.lower()),
                str(err).splitlines()[0] if str(err) else type(err).__name__,
            )
            raise ConfigError(
                f"sharded checkpoint '{directory}' does not fit this model ({reason[:160]}); "
                "resume with the same --model"
            ) from None
    elif _saves_trainable_only(trainer):
        weights = _readable(path / "trainable.safetensors", directory, _safetensors)
        params = dict(model.named_parameters())
        if set(weights) - set(params):
            raise ConfigError(f"checkpoint '{directory}' does not fit this model; resume with the same --model")
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)
    elif cfg.method in ADAPTER_METHODS:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(
            model, _readable(path / "adapter" / "adapter_model.safetensors", directory, _safetensors)
        )
    else:  # full
        files = sorted((path / "model").glob("*.safetensors"))
        if not files:
            raise _incomplete(directory, "model/", "holds no .safetensors weights")
        weights = {}
        for f in files:
            weights.update(_readable(f, directory, _safetensors))
        missing, unexpected = unwrap(model).load_state_dict(weights, strict=False)
        if unexpected or any(not _is_tied(model, m) for m in missing):
            raise ConfigError(f"checkpoint '{directory}' does not fit this model; resume with the same --model")
    if not (path / "sharded").is_dir():
        trainer.optimizer.load_state_dict(loaded["optimizer.pt"])
    trainer.scheduler.load_state_dict(loaded["scheduler.pt"])
    if trainer.scaler is not None and (path / "scaler.pt").exists():
        trainer.scaler.load_state_dict(_readable(path / "scaler.pt", directory, _torch))
    rng = loaded["rng.pt"]
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    if "numpy" in rng:
        import numpy as np

        np.random.set_state(rng["numpy"])
    trainer.state.step = state["step"]
    trainer.state.tokens = state["tokens"]
    trainer.state.history = state["history"]
    trainer.state.train_seconds = state["train_seconds"]


def _is_tied(model, name: str) -> bool:
    base = unwrap(model)
    head = base.get_output_embeddings()
    return name.endswith("lm_head.weight") and head is not None and head.weight is base.get_input_embeddings().weight
