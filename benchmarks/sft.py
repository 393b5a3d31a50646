"""%%sft against HF Trainer + PEFT with the standard dynamic-padding collator, in one process.

Same model (smollm2), same LoRA config (r=8 on q_proj,v_proj), same examples in the same
order per step (Trainer gets them pre-ordered with a sequential sampler; checked: both sides
count the same real tokens each step), same batch size, same learning-rate schedule, same
loss masking. The sides take turns step by step (Trainer step k, then nbllm step k, from a
Trainer callback), so the shared machine's drift slows both alike. Prints:

    bench sft_lora real_tokens_per_s_nbllm / _trainer / _ratio   (target ratio >= 1.5 on 2 CPU cores)
    bench sft_lora peak_mem_ratio        peak RSS growth during training, each in a fresh process (<= 0.8)
    bench sft_lora eval_loss_rel_diff    final validation loss, same evaluation for both (<= 0.02)
    bench sft_lora mfu_nbllm             model FLOPs (4N + attention per token) / machine fp32 matmul peak
    ... and the same for sft_full (6N + attention).

    python benchmarks/sft.py [--steps 10] [--methods lora,full] [--device cpu] [--compile] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch
from _memory import PeakGrowth, in_fresh_process

from nbllm import models
from nbllm.config import SFTConfig
from nbllm.data import load_records
from nbllm.train.sft import Trainer, evaluate_loss, prepare_data, step_examples

ATTN_IMPL = "sdpa"


def matmul_peak_flops(device: str, dtype=torch.float32, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(10):  # the fastest repetition: a busy moment must not lower the peak (it would raise MFU)
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def flops_per_token(model, method: str, context: float) -> float:
    """6N (full) or 4N (LoRA: no weight gradients for the frozen base) plus attention,
    N = parameters that take part in matmuls (the tied head counts once)."""
    cfg = model.config
    n = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    attention = 6 * cfg.num_hidden_layers * context * cfg.hidden_size
    return (4 if method == "lora" else 6) * n + attention


def config_for(method: str, steps: int, batch: int, device: str, max_length: int) -> SFTConfig:
    return SFTConfig(model="smollm2", data="instructions", method=method, max_steps=steps, batch_size=batch,
                     max_length=max_length, seed=0, lora_r=8, lora_alpha=16, lora_dropout=0.05,
                     lora_targets="q_proj,v_proj", device=device, eval_every=10_000)


# ---------------------------------------------------------------- nbllm

def nbllm_trainer(cfg: SFTConfig, device: str):
    dtype = torch.bfloat16 if device.startswith("cuda") and cfg.method == "lora" else torch.float32
    model, tok = models.load_model("smollm2", device=device, dtype=dtype)
    prepared = prepare_data(load_records("instructions"), tok, cfg)
    return Trainer(cfg, prepared, model, tok, device), prepared, tok


def nbllm_step(trainer: Trainer) -> tuple[float, int]:
    """One optimizer step, as Trainer.run takes it: (seconds, real tokens)."""
    out = trainer.timed_step()
    return out["seconds"], out["real_tokens"]


def nbllm_val(trainer: Trainer, prepared, tok, device: str) -> float:
    return evaluate_loss(trainer.model, prepared.val, tok.pad_token_id, device, trainer.config.batch_size,
                         trainer.autocast)


def run_nbllm(cfg: SFTConfig, device: str):
    """nbllm alone (peak memory, --compile): real tokens/s over steps 2..N and the final val loss."""
    trainer, prepared, tok = nbllm_trainer(cfg, device)
    timed = [nbllm_step(trainer) for _ in range(cfg.max_steps)][1:]  # step 1 warms up
    return sum(n for _, n in timed) / sum(t for t, _ in timed), nbllm_val(trainer, prepared, tok, device)


# ---------------------------------------------------------------- HF Trainer + PEFT baseline

def run_trainer(cfg: SFTConfig, device: str, prepared, tok, between_steps=None):
    """Trainer + PEFT on the same examples per step. Returns each step's (seconds, real tokens)
    and the final val loss. between_steps() runs after each step, outside the timed intervals."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer as HFTrainer, TrainerCallback, TrainingArguments

    dtype = torch.bfloat16 if device.startswith("cuda") and cfg.method == "lora" else torch.float32
    model, _ = models.load_model("smollm2", device=device, dtype=dtype)
    model.config.use_cache = False
    if cfg.method == "lora":
        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                                 target_modules=cfg.lora_targets.split(","), task_type="CAUSAL_LM"))
    # HF models shift labels inside: give unshifted labels with the same prompt mask
    rows = []
    for step in range(cfg.max_steps):
        for i in step_examples(len(prepared.train), cfg.batch_size, cfg.seed, step):
            e = prepared.train[i]
            labels = [tok_id if keep else -100 for tok_id, keep in zip(e.input_ids, e.loss_mask)]
            rows.append({"input_ids": e.input_ids, "attention_mask": [1] * len(e), "labels": labels})
    dataset = Dataset.from_list(rows)
    steps, resumed = [], [time.perf_counter()]

    class Clock(TrainerCallback):
        """A step is the time from the end of the previous one (after between_steps) to its own end."""

        def on_step_end(self, args, state, control, **kw):
            sync(device)
            steps.append([time.perf_counter() - resumed[-1], state.num_input_tokens_seen])
            if between_steps:
                between_steps()
            resumed.append(time.perf_counter())

    args = TrainingArguments(output_dir="/tmp/nbllm-bench-trainer", per_device_train_batch_size=cfg.batch_size,
                             max_steps=cfg.max_steps, learning_rate=cfg.peak_lr, lr_scheduler_type="linear",
                             warmup_steps=int(cfg.warmup_ratio * cfg.max_steps), weight_decay=cfg.weight_decay,
                             max_grad_norm=cfg.max_grad_norm, logging_steps=1, report_to=[], save_strategy="no",
                             eval_strategy="no", train_sampling_strategy="sequential", seed=cfg.seed,
                             use_cpu=not device.startswith("cuda"), bf16=device.startswith("cuda"),
                             dataloader_num_workers=0, include_num_input_tokens_seen="non_padding",
                             disable_tqdm=True)
    trainer = HFTrainer(model=model, args=args, train_dataset=dataset,
                        data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100),
                        callbacks=[Clock()])
    trainer.train()
    for i in range(len(steps) - 1, 0, -1):  # tokens seen so far -> tokens of each step
        steps[i][1] -= steps[i - 1][1]
    from nbllm.train.sft import autocast_for, precision_for

    autocast = autocast_for(device, precision_for(cfg, device))
    val = evaluate_loss(model, prepared.val, tok.pad_token_id, device, cfg.batch_size, autocast)
    return [tuple(s) for s in steps], val


def side_by_side(cfg: SFTConfig, device: str):
    """Both sides in one process, interleaved: Trainer step k, then nbllm step k, so a busy
    moment of the machine slows both alike. Step 1 of each warms up and is not timed.
    Returns each side's timed steps as (seconds, real tokens), both val losses and the model
    FLOPs per token."""
    ours_trainer, prepared, tok = nbllm_trainer(cfg, device)
    ours = []
    theirs, their_val = run_trainer(cfg, device, prepared, tok,
                                    between_steps=lambda: ours.append(nbllm_step(ours_trainer)))
    if [n for _, n in ours] != [n for _, n in theirs]:
        raise AssertionError(f"the sides saw different tokens per step: {ours} vs {theirs}")
    our_val = nbllm_val(ours_trainer, prepared, tok, device)
    context = sum(len(e) for e in prepared.train) / len(prepared.train)
    flops = flops_per_token(ours_trainer.model, cfg.method, context)
    return ours[1:], theirs[1:], our_val, their_val, flops


def tokens_per_s(steps) -> float:
    return sum(n for _, n in steps) / sum(t for t, _ in steps)


# ---------------------------------------------------------------- peak memory, one fresh process per side

def memory_child(side: str, method: str, steps: int, batch: int, max_length: int) -> None:
    """Peak RSS growth during training (model already loaded), printed as JSON."""
    cfg = config_for(method, steps, batch, "cpu", max_length)
    tok = models.load_tokenizer("smollm2")
    prepared = prepare_data(load_records("instructions"), tok, cfg)
    models.load_model("smollm2")  # warm the page cache and imports outside the measured window
    with PeakGrowth() as peak:
        if side == "nbllm":
            run_nbllm(cfg, "cpu")
        else:
            run_trainer(cfg, "cpu", prepared, tok)
    print(json.dumps({"peak_growth": peak.bytes}))


def peak_memory(side: str, method: str, steps: int, batch: int, max_length: int) -> int:
    call = f"memory_child({side!r}, {method!r}, {steps}, {batch}, {max_length})"
    return in_fresh_process("sft", call)["peak_growth"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--methods", default="lora,full")
    parser.add_argument("--device", default=models.pick_device())
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also time nbllm with compile=True")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the pair N times; each step's fastest time per side counts")
    args = parser.parse_args()
    torch.manual_seed(0)
    peak = matmul_peak_flops(args.device, torch.bfloat16 if args.device.startswith("cuda") else torch.float32)
    print(f"bench sft machine_matmul_peak_tflops {peak / 1e12:.3f}")
    for method in args.methods.split(","):
        name = f"sft_{method}"
        cfg = config_for(method, args.steps, args.batch_size, args.device, args.max_length)
        ours = theirs = None
        for _ in range(args.repeat):  # noise only ever slows a step down: keep each step's fastest run
            our_steps, their_steps, our_val, their_val, flops = side_by_side(cfg, args.device)
            ours = our_steps if ours is None else [min(a, b) for a, b in zip(ours, our_steps)]
            theirs = their_steps if theirs is None else [min(a, b) for a, b in zip(theirs, their_steps)]
        ours_tps, theirs_tps = tokens_per_s(ours), tokens_per_s(theirs)
        per_step = sorted(t / o for (o, _), (t, _) in zip(ours, theirs))
        print(f"bench {name} real_tokens_per_s_nbllm {ours_tps:.1f}")
        print(f"bench {name} real_tokens_per_s_trainer {theirs_tps:.1f}")
        print(f"bench {name} real_tokens_per_s_ratio {ours_tps / theirs_tps:.2f}")
        print(f"bench {name} step_ratio_min_median_max {per_step[0]:.2f} {per_step[len(per_step) // 2]:.2f} "
              f"{per_step[-1]:.2f}")
        print(f"bench {name} eval_loss_nbllm {our_val:.4f}")
        print(f"bench {name} eval_loss_trainer {their_val:.4f}")
        print(f"bench {name} eval_loss_rel_diff {abs(our_val - their_val) / their_val:.4f}")
        print(f"bench {name} mfu_nbllm {ours_tps * flops / peak:.3f}")
        print(f"bench {name} mfu_trainer {theirs_tps * flops / peak:.3f}")
        if args.compile:  # the first step (compiling) is outside the timed window
            compiled, compiled_val = run_nbllm(replace(cfg, compile=True), args.device)
            print(f"bench {name} real_tokens_per_s_nbllm_compiled {compiled:.1f}")
            print(f"bench {name} real_tokens_per_s_ratio_compiled {compiled / theirs_tps:.2f}")
            print(f"bench {name} eval_loss_rel_diff_compiled {abs(compiled_val - their_val) / their_val:.4f}")
        if not args.no_memory and not args.device.startswith("cuda"):
            mem = {side: peak_memory(side, method, 3, args.batch_size, args.max_length) for side in ("nbllm", "trainer")}
            print(f"bench {name} peak_mem_growth_mb_nbllm {mem['nbllm'] / 2**20:.0f}")
            print(f"bench {name} peak_mem_growth_mb_trainer {mem['trainer'] / 2**20:.0f}")
            print(f"bench {name} peak_mem_ratio {mem['nbllm'] / mem['trainer']:.2f}")


if __name__ == "__main__":
    main()
