"""The one training loop, for every objective (causal LM, preference, classification).

    each step: the step's examples (a pure function of seed and step) -> this process's share
               -> micro-batches -> loss sum / the step's unit count -> backward -> clip -> AdamW
               -> schedule; every eval_every steps the objective's validation metrics

An objective (objectives.py) says how records become training items, which parameters
train, how a micro-batch gives its loss sum and unit count (loss tokens, pairs, examples)
and what validation reports; nothing else differs between them. Callbacks (callbacks.py)
do everything around the loop: progress, the Stop button, stop_when, save-every.

Step k's examples depend only on (seed, k), so a resumed run sees exactly the data the
uninterrupted run would have, and the RNG state saved in the checkpoint covers dropout.
"""

from __future__ import annotations

import math
import random
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field

import torch

from .. import models
from ..config import SFTConfig


@dataclass
class TrainState:
    step: int = 0
    tokens: int = 0  # the objective's unit: real tokens (LM, DPO) or examples (classification)
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    stopped: str | None = None  # None, "stop-button", "interrupted", "stop_when"


class Callback:
    """Hooks around the loop, as transformers' TrainerCallback. on_step_end may set
    trainer.state.stopped to a reason; the run then ends after that step."""

    def on_train_begin(self, trainer) -> None:
        pass

    def on_step_end(self, trainer, row: dict) -> None:
        pass

    def should_stop(self, trainer) -> bool:
        """Asked after each step, after a Ctrl-C check (the Stop button polls here)."""
        return False

    def on_train_end(self, trainer) -> None:
        pass


# ---------------------------------------------------------------- precision and optimizer


def precision_for(config: SFTConfig, device: str) -> torch.dtype:
    if config.precision != "auto":
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[config.precision]
    return models.pick_dtype(device) if device.startswith("cuda") else torch.float32


def autocast_for(device: str, dtype: torch.dtype):
    if dtype == torch.float32:
        return lambda: torch.autocast(device_type=device.split(":")[0], enabled=False)
    return lambda: torch.autocast(device_type=device.split(":")[0], dtype=dtype)


def adamw(params, config: SFTConfig, device: str) -> torch.optim.AdamW:
    """Fused AdamW on CPU and CUDA: one pass over each parameter instead of several foreach
    passes (smollm2 full fine-tuning on 2 CPU cores: 0.05-0.07 s against 0.2-0.5 s a step)."""
    fused = device.startswith(("cuda", "cpu"))
    return torch.optim.AdamW(
        params,
        lr=config.peak_lr,
        weight_decay=config.weight_decay,
        **({"fused": True} if fused else {"foreach": True}),
    )


def lr_factor(schedule: str, warmup: int, total: int):
    """The share of the peak learning rate at each step: a linear warm-up over `warmup` steps,
    then linear decay to 0 at `total`, half a cosine down to 0, or constant."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        left = max(0.0, (total - step) / max(1, total - warmup))  # 1 at the end of warm-up, 0 at the end
        if schedule == "cosine":
            return 0.5 * (1 - math.cos(math.pi * left))
        return 1.0 if schedule == "constant" else left

    return factor


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass


# ---------------------------------------------------------------- the trainer


def objective_for(config):
    """The objective a config trains with: --format classify, preference, or the causal LM."""
    if config.format == "classify":
        from .classify import Classification

        return Classification()
    if config.format == "preference":
        from .dpo import Preference

        return Preference()
    from .sft import CausalLM

    return CausalLM()


class Trainer:
    """Holds what a run needs (model, optimizer, data, state) so it can be saved and resumed."""

    def __init__(
        self, config: SFTConfig, data, model, tokenizer, device: str | None = None, objective=None, callbacks=()
    ):
        from .distributed import Processes

        self.config, self.data, self.tokenizer = config, data, tokenizer
        self.objective = objective or objective_for(config)
        self.processes = Processes.current()
        self.rank, self.world = self.processes.rank, self.processes.world
        self.device = device or config.device or models.pick_device()
        self.dtype = precision_for(config, self.device)
        self.autocast = autocast_for(self.device, self.dtype)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.layout, self.kernel = "padded", "auto"  # how causal-LM batches are laid out (sft.py sets them)
        set_seed(config.seed)  # fixes LoRA init and dropout
        self.model = self.objective.setup(self, model).train()
        self.trainable, self.total_params = self.objective.parameter_counts(self.model)
        # one process: the loss module as it is; several: DDP (adapters) or FSDP2 (every weight trains),
        # which swaps in sharded parameters, so the optimizer is built on the wrapped module's
        self.sharded = self.world > 1 and self.objective.shards(self)
        self.engine = self.processes.wrap(
            self.objective.loss_module(self),
            shard=self.sharded,
            blocks=self.objective.blocks(self) if self.sharded else (),
        )
        self.params = [p for p in self.engine.parameters() if p.requires_grad]
        self.optimizer = adamw(self.params, config, self.device)
        self.steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
        self.total_steps = config.max_steps or max(1, math.ceil(config.epochs * self.steps_per_epoch))
        warmup = int(config.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(config.schedule, warmup, self.total_steps)
        )
        self.scaler = torch.amp.GradScaler(self.device.split(":")[0]) if self.dtype == torch.float16 else None
        self.eval_every = config.eval_every or self.objective.default_eval_every(self)
        self.state = TrainState()
        self.callbacks = list(callbacks)

    def batch_to_device(self, batch):
        return batch.to(self.device, self.kernel, self.config.max_length)

    # one optimizer step ------------------------------------------------
    def train_step(self) -> dict:
        """Forward/backward the step's examples (this process's share of them under
        torchrun / accelerate launch), then one optimizer step. The loss is a sum over the
        step's units (loss tokens, pairs, examples) on all processes divided by their count,
        so N processes compute what one would."""
        cfg, objective = self.config, self.objective
        ids = objective.step_examples(self, self.state.step)[self.rank :: self.world]
        micro = [ids[i :: cfg.grad_accum] for i in range(cfg.grad_accum) if ids[i :: cfg.grad_accum]]
        batches = [objective.batch(self, [self.data.train[i] for i in m]) for m in micro]
        n_units = max(self.processes.sum(sum(b.n_units for b in batches)), 1)
        total, sums = 0.0, {}
        for k, batch in enumerate(batches):
            with self.processes.gradient_sync(self.engine, k == len(batches) - 1):
                with self.autocast():
                    loss, stats = self.engine(batch)
                loss = loss / n_units
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            total += float(loss.detach())
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + float(value)
        total = self.processes.sum(total)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        self.processes.clip_grad_norm(self.params, cfg.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        # fp16: a step the scaler skipped (inf gradients) still advances the schedule, without torch's warning
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        metrics = {key: self.processes.sum(value) / n_units for key, value in sums.items()}
        return {
            "loss": total,
            "lr": lr,
            "metrics": metrics,
            "examples": int(self.processes.sum(len(ids))),
            "real_tokens": int(self.processes.sum(sum(b.n_real_tokens for b in batches))),
        }

    def timed_step(self) -> dict:
        """train_step, timed (out["seconds"]), and counted in the state's step, tokens and time."""
        started = time.perf_counter()
        out = self.train_step()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        out["seconds"] = time.perf_counter() - started
        self.state.train_seconds += out["seconds"]
        self.state.step += 1
        self.state.tokens += out["real_tokens"] if self.objective.unit == "tokens" else out["examples"]
        return out

    def validate(self) -> dict:
        """The objective's validation metrics ({"val_loss": ..., ...}); NaN without validation data.
        Under FSDP2 the root's own parameters (embeddings, head) are gathered for it: validation
        calls the model directly, not through the root module's hooks."""
        if not self.sharded:
            return self.objective.validate(self)
        self.engine.unshard()
        try:
            return self.objective.validate(self)
        finally:
            self.engine.reshard()

    # the loop ------------------------------------------------------------
    def run(self, callbacks=()) -> TrainState:
        """Train until total_steps, or until a callback, the Stop button or Ctrl-C (a kernel
        interrupt) ends the run after the current step: the last completed step is kept."""
        callbacks = self.callbacks + list(callbacks)
        state = self.state
        for cb in callbacks:
            cb.on_train_begin(self)
        try:
            with _graceful_interrupt() as interrupted:
                while state.step < self.total_steps:
                    out = self.timed_step()
                    evaluate = state.step % self.eval_every == 0 or state.step == self.total_steps
                    row = {
                        "step": state.step,
                        "epoch": round(state.step / self.steps_per_epoch, 4),
                        "loss": out["loss"],
                        "val_loss": float("nan"),
                        "tokens": state.tokens,
                        "lr": out["lr"],
                        **out["metrics"],
                        **(self.validate() if evaluate else {}),
                    }
                    state.history.append(row)
                    for cb in callbacks:
                        cb.on_step_end(self, row)
                    if not state.stopped and interrupted():
                        state.stopped = "interrupted"
                    if not state.stopped and any(cb.should_stop(self) for cb in callbacks):
                        state.stopped = "stop-button"
                    if state.stopped:
                        break
            if state.history and math.isnan(state.history[-1]["val_loss"]):
                state.history[-1].update(self.validate())
        finally:
            self.objective.after_run(self)
            self.model.eval()
            for cb in callbacks:
                cb.on_train_end(self)
        return state


class _graceful_interrupt:
    """During training, the first Ctrl-C / kernel interrupt asks to stop after the current
    step; a second one raises KeyboardInterrupt as usual."""

    def __enter__(self):
        self.flag = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return lambda: self.flag

    def _handle(self, signum, frame):
        if self.flag:
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
