"""Supervised fine-tuning: one plain training loop, readable top to bottom.

    records -> examples (template) -> Encoded (ids, loss mask) -> train/val split
    each step: the step's examples -> packed batch -> loss on response tokens -> AdamW step

Step k's examples are a pure function of (seed, k), so a resumed run sees exactly the data
the uninterrupted run would have, and the RNG state saved in the checkpoint covers dropout.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .. import models
from ..config import SFTConfig
from ..data import TEMPLATE_OF, split, to_examples
from ..errors import ConfigError, DataError
from ..tokenization import IGNORE_INDEX, Encoded, encode
from .attention import packed_forward, pick_kernel, use_packed_attention, varlen_available
from .batches import Batch, make_batch
from .compiling import compile_blocks, uncompile_blocks
from .dropout import cheapen_lora_dropout
from .linear_ce import chunk_rows, linear_cross_entropy
from .methods import apply_method, is_prompt_learning, parameter_counts, unwrap


# ---------------------------------------------------------------- data

@dataclass
class PreparedData:
    train: list[Encoded]
    val: list[Encoded]
    val_examples: list  # the validation examples as dicts (prompts for before/after samples)
    n_records: int
    n_truncated: int
    n_dropped: int  # examples left with no token in the loss (e.g. the response was cut off)


def prepare_data(records: list[dict], tokenizer, config: SFTConfig) -> PreparedData:
    examples = to_examples(records, config.format)
    template = TEMPLATE_OF[config.format]
    encoded = [encode(tokenizer, ex, template, config.max_length, config.train_on_prompt) for ex in examples]
    truncated = sum(e.truncated for e in encoded)
    usable = [(ex, e) for ex, e in zip(examples, encoded) if any(label != IGNORE_INDEX for label in e.labels)]
    if not usable:
        longest_prompt = max(e.loss_mask.index(True) if True in e.loss_mask else len(e) for e in encoded)
        raise DataError(f"all {len(encoded)} examples are longer than --max-length {config.max_length} "
                        f"before their response starts (prompts up to {longest_prompt} tokens seen); "
                        "raise --max-length")
    train, val = split(usable, config.val_fraction, config.seed)
    return PreparedData([e for _, e in train], [e for _, e in val], [ex for ex, _ in val], len(records),
                        truncated, len(encoded) - len(usable))


def step_examples(n_train: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Indices of the training examples for global step `step` (0-based): a seeded
    permutation per epoch, cut into consecutive batches (the last one may be smaller)."""
    per_epoch = math.ceil(n_train / batch_size)
    epoch, index = divmod(step, per_epoch)
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[index * batch_size: (index + 1) * batch_size].tolist()


# ---------------------------------------------------------------- loss

def _plain_head(base) -> bool:
    """True when logits are just head(hidden): then only loss positions need the head."""
    cfg = base.config
    return (hasattr(base, "get_decoder") and base.get_output_embeddings() is not None
            and not getattr(cfg, "final_logit_softcapping", None) and not getattr(cfg, "logit_scale", None))


def loss_sum(model, batch: Batch, compiled: bool = False) -> torch.Tensor:
    """Summed next-token cross-entropy over the batch's loss tokens.

    The vocabulary projection runs only on positions that count in the loss (prompt and
    padding positions never reach the 49k-wide head), fused with the cross-entropy so no
    batch-wide logits are stored (linear_ce.py); `compiled` fuses its elementwise passes."""
    with packed_forward() if batch.segments is not None else contextlib.nullcontext():
        return _loss_sum(model, batch, compiled)


def _loss_sum(model, batch: Batch, compiled: bool) -> torch.Tensor:
    base = unwrap(model)
    keep = batch.labels != IGNORE_INDEX
    if is_prompt_learning(model):  # peft prepends the soft prompt: drop its positions from the logits
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        logits = logits[:, logits.shape[1] - batch.input_ids.shape[1]:]
        return F.cross_entropy(logits[keep].float(), batch.labels[keep], reduction="sum")
    if not _plain_head(base):
        logits = model(**batch.model_inputs()).logits
        return F.cross_entropy(logits[keep].float(), batch.labels[keep], reduction="sum")
    out = base.get_decoder()(**batch.model_inputs())
    hidden, targets = out[0][keep], batch.labels[keep]
    head = base.get_output_embeddings()
    if type(head) is torch.nn.Linear:
        return linear_cross_entropy(hidden, head.weight, head.bias, targets, compiled)
    # a wrapped head (LoRA on lm_head, modules_to_save): its own forward, logits recomputed in backward
    step = chunk_rows(base.get_input_embeddings().num_embeddings)
    return sum(checkpoint(_head_loss, head, hidden[i:i + step], targets[i:i + step], use_reentrant=False)
               for i in range(0, len(targets), step))


def _head_loss(head, hidden, targets):
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


@torch.no_grad()
def evaluate_loss(model, examples: list[Encoded], pad_id: int, device, batch_size: int, autocast,
                  layout: str = "rows", to_device=None, compiled: bool = False) -> float:
    """Mean next-token loss per loss token over `examples`."""
    if not examples:
        return float("nan")
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        batch = make_batch(examples[i:i + batch_size], pad_id, layout)
        batch = to_device(batch) if to_device else batch.to(device)
        with autocast():
            total += float(loss_sum(model, batch, compiled))
        count += batch.n_loss_tokens
    model.train(was_training)
    return total / max(count, 1)


# ---------------------------------------------------------------- precision

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
    return torch.optim.AdamW(params, lr=config.peak_lr, weight_decay=config.weight_decay,
                             **({"fused": True} if fused else {"foreach": True}))


# ---------------------------------------------------------------- the run

@dataclass
class TrainState:
    step: int = 0
    tokens: int = 0
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    stopped: str | None = None  # None, "stop-button", "interrupted", "stop_when"


class Trainer:
    """Holds what a run needs (model, optimizer, data, state) so it can be saved and resumed."""

    def __init__(self, config: SFTConfig, data: PreparedData, model, tokenizer, device: str | None = None):
        self.config, self.data, self.tokenizer = config, data, tokenizer
        self.rank, self.world = process_rank_and_count()
        self.device = device or config.device or models.pick_device()
        self.dtype = precision_for(config, self.device)
        self.autocast = autocast_for(self.device, self.dtype)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        set_seed(config.seed)  # fixes LoRA init and dropout
        model = apply_method(model, config).to(self.device)
        cheapen_lora_dropout(model)
        if config.grad_checkpointing:
            base = unwrap(model)
            enable = getattr(base, "activation_checkpointing_enable", None)  # transformers >= 5.2x
            if enable is not None:
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.layout = "padded"
        if config.packing and not is_prompt_learning(model):
            try:
                use_packed_attention(model)
                self.layout = "segments"
            except Exception:  # noqa: BLE001 - a model without the attention interface: masked rows
                self.layout = "rows"
        self.kernel = self._attention_kernel(model)
        if config.compile:
            compile_blocks(model)
        self.model = model.train()
        self.trainable, self.total_params = parameter_counts(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = adamw(self.params, config, self.device)
        self.steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
        self.total_steps = config.max_steps or max(1, math.ceil(config.epochs * self.steps_per_epoch))
        warmup = int(config.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           lr_factor(config.schedule, warmup, self.total_steps))
        self.scaler = torch.amp.GradScaler(self.device.split(":")[0]) if self.dtype == torch.float16 else None
        self.eval_every = config.eval_every or max(1, self.total_steps // 4)
        self.state = TrainState()
        self.val_metrics: dict = {}  # extra validation figures a subclass reports (DPO: margin, accuracy)

    def _attention_kernel(self, model) -> str:
        cfg = self.config
        if self.layout != "segments":
            if cfg.attention != "auto":
                raise ConfigError(f"--attention {cfg.attention} applies to packed rows; drop --no-packing or "
                                  "--attention")
            return "auto"
        weights = next(model.parameters()).dtype
        kernel = pick_kernel(cfg.attention, self.device, self.dtype if self.dtype != torch.float32 else weights,
                             cfg.compile)
        if kernel == "varlen" and not (self.device.startswith("cuda") and varlen_available()):
            raise ConfigError("--attention varlen needs an Ampere or newer CUDA GPU (not a T4) and torch >= "
                              "2.10; use --attention auto")
        if kernel == "varlen" and torch.float32 == self.dtype == weights:
            raise ConfigError("--attention varlen runs in bf16/fp16; add --precision bf16 or use --attention auto")
        return kernel

    def batch_to_device(self, batch: Batch) -> Batch:
        return batch.to(self.device, self.kernel, self.config.max_length)

    # one optimizer step ------------------------------------------------
    def train_step(self) -> dict:
        """Forward/backward the step's examples (this process's share of them under
        torchrun / accelerate launch), then one optimizer step. The loss is a mean over the
        step's loss tokens on all processes, so N processes compute what one would."""
        cfg = self.config
        ids = step_examples(len(self.data.train), cfg.batch_size, cfg.seed, self.state.step)
        ids = ids[self.rank::self.world]
        micro = [ids[i::cfg.grad_accum] for i in range(cfg.grad_accum) if ids[i::cfg.grad_accum]]
        batches = [make_batch([self.data.train[i] for i in m], self.pad_id, self.layout) for m in micro]
        n_loss = self._sum_over_processes(sum(b.n_loss_tokens for b in batches))
        total = 0.0
        for batch in batches:
            batch = self.batch_to_device(batch)
            with self.autocast():
                loss = loss_sum(self.model, batch, self.config.compile) / max(n_loss, 1)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            total += float(loss.detach())
        if self.world > 1:
            self._all_reduce_gradients()
            total = self._sum_over_processes(total)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
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
        return {"loss": total, "lr": lr,
                "real_tokens": int(self._sum_over_processes(sum(b.n_real_tokens for b in batches)))}

    # several processes (torchrun / accelerate launch) ---------------------
    def _sum_over_processes(self, value):
        if self.world == 1:
            return value
        import torch.distributed as dist

        t = torch.tensor(float(value), dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.item()

    def _all_reduce_gradients(self) -> None:
        """Sum gradients over processes in one flat buffer (each process already divided
        by the global token count)."""
        import torch.distributed as dist

        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in self.params])
        dist.all_reduce(flat)
        offset = 0
        for p in self.params:
            p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()

    def val_loss(self) -> float:
        return evaluate_loss(self.model, self.data.val, self.pad_id, self.device, self.config.batch_size,
                             self.autocast, self.layout, self.batch_to_device, self.config.compile)

    def timed_step(self) -> dict:
        """train_step, timed (out["seconds"]), and counted in the state's step, tokens and time."""
        started = time.perf_counter()
        out = self.train_step()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        out["seconds"] = time.perf_counter() - started
        self.state.train_seconds += out["seconds"]
        self.state.step += 1
        self.state.tokens += out["real_tokens"]
        return out

    # the loop ------------------------------------------------------------
    def run(self, on_step=None, should_stop=None, on_checkpoint=None) -> TrainState:
        """Train until total_steps. on_step(row) after each step; should_stop() ends the run
        after the current step. Ctrl-C (a kernel interrupt) does the same: the last
        completed step is kept."""
        try:
            return self._run(on_step, should_stop, on_checkpoint)
        finally:
            if self.config.compile:
                uncompile_blocks(self.model)

    def _run(self, on_step, should_stop, on_checkpoint) -> TrainState:
        state = self.state
        with _graceful_interrupt() as interrupted:
            while state.step < self.total_steps:
                out = self.timed_step()
                evaluate = state.step % self.eval_every == 0 or state.step == self.total_steps
                row = {"step": state.step, "epoch": round(state.step / self.steps_per_epoch, 4),
                       "loss": out["loss"], "val_loss": self.val_loss() if evaluate else float("nan"),
                       "tokens": state.tokens, "lr": out["lr"], **out.get("metrics", {}),
                       **(self.val_metrics if evaluate else {})}
                state.history.append(row)
                if on_step:
                    on_step(row, self)
                if on_checkpoint:
                    on_checkpoint(self)
                if stop_requested(state, interrupted, should_stop):
                    break
        if state.history and math.isnan(state.history[-1]["val_loss"]):
            state.history[-1]["val_loss"] = self.val_loss()
        self.after_run()
        self.model.eval()
        return state

    def after_run(self) -> None:
        """Hook for subclasses (DPO adds its validation metrics)."""


def process_rank_and_count() -> tuple[int, int]:
    """(rank, world size) when torch.distributed is initialised (torchrun, accelerate launch)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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


def stop_requested(state: TrainState, interrupted, should_stop) -> bool:
    """After a step: record why the run ends (on_step may already have set a reason),
    a kernel interrupt first, then the Stop button; True when it should end."""
    if not state.stopped:
        if interrupted():
            state.stopped = "interrupted"
        elif should_stop and should_stop():
            state.stopped = "stop-button"
    return state.stopped is not None


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
