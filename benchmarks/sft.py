"""%%sft against HF Trainer + PEFT with the standard dynamic-padding collator, and against
TRL's SFTTrainer (padding-free, and bfd packing), in one process.

Same model (smollm2), same LoRA config (r=8, alpha 16, dropout 0.05 on q_proj,v_proj), same
examples in the same order per step (the baselines get them pre-ordered with a sequential
sampler; checked: both sides count the same real tokens each step), same batch size, same
learning-rate schedule, same loss masking (response tokens only; TRL: pre-tokenized
input_ids + completion_mask with completion_only_loss=True), same precision (fp32 on CPU,
bf16 on CUDA: TRL's own defaults, bf16=True and gradient_checkpointing=True, are turned
off as nbllm has them). Each baseline is paired with its own fresh nbllm run and the two
take turns step by step (baseline step k, then nbllm step k, from a Trainer callback), so
the shared machine's drift slows both alike. Eval loss: nbllm's evaluate_loss on the
validation split, for every side. Prints:

    bench sft_lora real_tokens_per_s_nbllm / _trainer / _ratio   (target ratio >= 1.5 on 2 CPU cores)
    bench sft_lora peak_mem_ratio        peak RSS growth during training, each in a fresh process (<= 0.8)
    bench sft_lora eval_loss_rel_diff    final validation loss, same evaluation for both (<= 0.02)
    bench sft_lora mfu_nbllm             model FLOPs (4N + attention per token) / machine fp32 matmul peak
    bench sft_lora real_tokens_per_s_trl_padding_free / ratio_vs_trl_padding_free   (target >= 1.75)
    bench sft_lora real_tokens_per_s_trl_packing / ratio_vs_trl_packing
    bench sft_lora peak_mem_growth_mb_trl_* / peak_mem_ratio_vs_trl_*               (target <= 0.7)
    bench sft_lora eval_loss_rel_diff_vs_trl   nbllm against TRL padding-free      (<= 0.02)
    ... and the same for sft_full (6N + attention).

    python benchmarks/sft.py [--steps 10] [--methods lora,full] [--device cpu] [--compile] [--repeat 1]
                             [--baselines trainer,trl-padding-free,trl-packing]

The TRL baselines need trl (pip install -e '.[bench]'); without it they are skipped with a
one-line notice and the Trainer baseline runs alone.

TRL's two settings. padding-free: each step's examples are concatenated into one row, with
position_ids restarting per example; the per-step token check holds exactly. packing (bfd):
TRL packs the whole example stream (the same steps x batch examples, in nbllm's order) into
rows of at most max_length tokens, best-fit-decreasing, so a row holds examples of several
nbllm steps: example-per-step identity cannot hold. The bin size is the smallest at which bfd
makes exactly one row per step (about one nbllm step's tokens; one row a step, because
packing implies padding-free, whose collator flattens a step's rows into one anyway, so r
rows of L/r tokens cost what one row of L does); each example is seen once, the totals are
checked equal, and the per-step token ratio is its own line.

What TRL (1.16) computes that nbllm does not, on CPU:
  - the LM head over every position: its fused head (trainer/utils.py add_fused_lm_head)
    scores only label positions on Triton devices; elsewhere "every position is scored
    instead", prompt tokens included, and the backward recomputes each [4096 x 32768]
    logits tile (nbllm: the head runs on loss positions only, fused with the cross-entropy);
  - per-token entropy and top-1 agreement in that head, over the full vocabulary, every step
    (the entropy and mean_token_accuracy it logs), plus .item() reads of them and of the
    token count each step;
  - attention over the whole flattened row: without a varlen kernel (flash-attention on
    CUDA) transformers' sdpa gets a dense [T x T] block-diagonal mask built from
    position_ids, T = all the step's tokens, so the cost is T^2 rather than the sum of each
    example's length squared (nbllm attends within each example);
  - its data pipeline (datasets.map for labels and packing) runs before training, outside
    the timed steps; the Trainer loop itself (accelerate, callbacks, logging) is inside.
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
from nbllm.train.sft import evaluate_loss, prepare_data, step_examples
from nbllm.train.trainer import Trainer

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
    return SFTConfig(
        model="smollm2",
        data="instructions",
        method=method,
        max_steps=steps,
        batch_size=batch,
        max_length=max_length,
        seed=0,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        lora_targets="q_proj,v_proj",
        device=device,
        eval_every=10_000,
    )


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
    return evaluate_loss(
        trainer.model, prepared.val, tok.pad_token_id, device, trainer.config.batch_size, trainer.autocast
    )


def run_nbllm(cfg: SFTConfig, device: str):
    """nbllm alone (peak memory, --compile): real tokens/s over steps 2..N and the final val loss."""
    trainer, prepared, tok = nbllm_trainer(cfg, device)
    timed = [nbllm_step(trainer) for _ in range(cfg.max_steps)][1:]  # step 1 warms up
    return sum(n for _, n in timed) / sum(t for t, _ in timed), nbllm_val(trainer, prepared, tok, device)


# ---------------------------------------------------------------- HF Trainer + PEFT baseline


def baseline_model(cfg: SFTConfig, device: str):
    """SmolLM2 for a baseline: with cfg's LoRA adapter through PEFT, or whole for full fine-tuning."""
    from peft import LoraConfig, get_peft_model

    dtype = torch.bfloat16 if device.startswith("cuda") and cfg.method == "lora" else torch.float32
    model, _ = models.load_model("smollm2", device=device, dtype=dtype)
    model.config.use_cache = False
    if cfg.method == "lora":
        model = get_peft_model(
            model,
            LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules=cfg.lora_targets.split(","),
                task_type="CAUSAL_LM",
            ),
        )
    return model


def run_trainer(cfg: SFTConfig, device: str, prepared, tok, between_steps=None):
    """Trainer + PEFT on the same examples per step. Returns each step's (seconds, real tokens)
    and the final val loss. between_steps() runs after each step, outside the timed intervals."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer as HFTrainer, TrainerCallback, TrainingArguments

    model = baseline_model(cfg, device)
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

    args = TrainingArguments(
        output_dir="/tmp/nbllm-bench-trainer",
        per_device_train_batch_size=cfg.batch_size,
        max_steps=cfg.max_steps,
        learning_rate=cfg.peak_lr,
        lr_scheduler_type="linear",
        warmup_steps=int(cfg.warmup_ratio * cfg.max_steps),
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        train_sampling_strategy="sequential",
        seed=cfg.seed,
        use_cpu=not device.startswith("cuda"),
        bf16=device.startswith("cuda"),
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
    )
    trainer = HFTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100),
        callbacks=[Clock()],
    )
    trainer.train()
    for i in range(len(steps) - 1, 0, -1):  # tokens seen so far -> tokens of each step
        steps[i][1] -= steps[i - 1][1]
    return [tuple(s) for s in steps], baseline_val(model, cfg, device, prepared, tok)


# ---------------------------------------------------------------- TRL SFTTrainer baselines

BASELINES = ("trainer", "trl-padding-free", "trl-packing")


def trl_missing() -> str | None:
    """None when trl imports, else why not."""
    try:
        import trl  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - not installed, or an install that does not import
        return f"{type(exc).__name__}: {exc}"
    return None


def step_stream(cfg: SFTConfig, prepared) -> list:
    """The examples of steps 1..max_steps, in nbllm's order."""
    return [
        prepared.train[i]
        for step in range(cfg.max_steps)
        for i in step_examples(len(prepared.train), cfg.batch_size, cfg.seed, step)
    ]


def packing_length(lengths: list[int], rows: int) -> int:
    """The smallest bin size at which TRL's bfd packs sequences of these lengths into exactly
    `rows` rows (TRL's own pack_dataset, so the count is the one its trainer will make)."""
    from datasets import Dataset
    from trl import pack_dataset

    dataset = Dataset.from_dict({"input_ids": [[0] * n for n in lengths]})
    low = max(max(lengths), -(-sum(lengths) // rows))  # below this, more rows by pigeonhole
    for length in range(low, 2 * low + 1):
        made = len(pack_dataset(dataset, length, "bfd"))
        if made == rows:
            return length
        if made < rows:
            break
    raise ValueError(f"no bin size packs these {len(lengths)} examples into exactly {rows} rows with bfd")


def run_trl(cfg: SFTConfig, device: str, prepared, tok, baseline: str, between_steps=None):
    """TRL's SFTTrainer + PEFT, padding-free ("trl-padding-free": each step's examples in one
    flattened row, the same examples per step as nbllm) or bfd-packed ("trl-packing": the same
    examples regrouped into one packed row per step). Returns each step's (seconds, real
    tokens) and the final val loss, as run_trainer does."""
    import datasets
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig as TRLConfig, SFTTrainer

    datasets.disable_progress_bars()
    packing = baseline == "trl-packing"
    model = baseline_model(cfg, device)
    stream = step_stream(cfg, prepared)
    # TRL's pre-tokenized prompt/completion form: completion_mask marks the tokens that count
    # (unshifted, as nbllm's loss_mask); TRL turns it into labels and shifts inside its head
    dataset = Dataset.from_list(
        [{"input_ids": e.input_ids, "completion_mask": [int(k) for k in e.loss_mask]} for e in stream]
    )
    # padding-free without packing refuses a max_length (it would not enforce it): the
    # examples are already cut to cfg.max_length by prepare_data
    max_length = packing_length([len(e) for e in stream], cfg.max_steps) if packing else None
    args = TRLConfig(
        output_dir="/tmp/nbllm-bench-trl",
        per_device_train_batch_size=1 if packing else cfg.batch_size,
        max_steps=cfg.max_steps,
        learning_rate=cfg.peak_lr,
        lr_scheduler_type="linear",
        warmup_steps=int(cfg.warmup_ratio * cfg.max_steps),
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        train_sampling_strategy="sequential",
        seed=cfg.seed,
        use_cpu=not device.startswith("cuda"),
        bf16=device.startswith("cuda"),
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        padding_free=True,
        packing=packing,
        packing_strategy="bfd",
        max_length=max_length,
        completion_only_loss=True,
        shuffle_dataset=False,
    )
    steps, resumed, collated = [], [time.perf_counter()], []

    class Clock(TrainerCallback):
        """A step is the time from the end of the previous one (after between_steps) to its own end."""

        def on_step_end(self, args, state, control, **kw):
            sync(device)
            steps.append((time.perf_counter() - resumed[-1], collated[state.global_step - 1]))
            if between_steps:
                between_steps()
            resumed.append(time.perf_counter())

    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok, callbacks=[Clock()])
    if len(trainer.train_dataset) != (cfg.max_steps if packing else len(stream)):
        raise AssertionError(f"TRL prepared {len(trainer.train_dataset)} rows for {cfg.max_steps} steps")
    collate = trainer.data_collator

    def counting_collator(features):  # real tokens of each batch, in the order the steps take them
        collated.append(sum(len(f["input_ids"]) for f in features))
        return collate(features)

    trainer.data_collator = counting_collator
    trainer.train()
    return steps, baseline_val(trainer.model, cfg, device, prepared, tok)


def baseline_val(model, cfg: SFTConfig, device: str, prepared, tok) -> float:
    """nbllm's evaluate_loss on a baseline's model, under the autocast nbllm's Trainer uses
    (none on CPU, the device's half precision on CUDA), as nbllm_val evaluates nbllm."""
    dtype = models.pick_dtype(device) if device.startswith("cuda") else torch.float32
    autocast = lambda: torch.autocast(  # noqa: E731
        device_type=device.split(":")[0],
        dtype=dtype,  # noqa: E731
        enabled=dtype != torch.float32,
    )
    return evaluate_loss(model, prepared.val, tok.pad_token_id, device, cfg.batch_size, autocast)


def side_by_side(cfg: SFTConfig, device: str, baseline: str = "trainer"):
    """nbllm and one baseline (BASELINES) in one process, interleaved: baseline step k, then
    nbllm step k, so a busy moment of the machine slows both alike. Step 1 of each warms up
    and is not timed. Returns each side's timed steps as (seconds, real tokens), both val
    losses and the model FLOPs per token."""
    ours_trainer, prepared, tok = nbllm_trainer(cfg, device)
    ours = []
    between = lambda: ours.append(nbllm_step(ours_trainer))  # noqa: E731
    if baseline == "trainer":
        theirs, their_val = run_trainer(cfg, device, prepared, tok, between_steps=between)
    else:
        theirs, their_val = run_trl(cfg, device, prepared, tok, baseline, between_steps=between)
    if baseline == "trl-packing":  # regrouped examples: only the totals can agree
        if sum(n for _, n in ours) != sum(n for _, n in theirs) or len(ours) != len(theirs):
            raise AssertionError(f"the sides saw different tokens in all: {ours} vs {theirs}")
    elif [n for _, n in ours] != [n for _, n in theirs]:
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
        elif side == "trainer":
            run_trainer(cfg, "cpu", prepared, tok)
        else:
            run_trl(cfg, "cpu", prepared, tok, side)
    print(json.dumps({"peak_growth": peak.bytes}))


def peak_memory(side: str, method: str, steps: int, batch: int, max_length: int) -> int:
    call = f"memory_child({side!r}, {method!r}, {steps}, {batch}, {max_length})"
    return in_fresh_process("sft", call)["peak_growth"]


def pick_baselines(spec: str) -> list[str]:
    picked = [b.strip() for b in spec.split(",") if b.strip()]
    unknown = [b for b in picked if b not in BASELINES]
    if unknown or not picked:
        raise SystemExit(f"--baselines: unknown {unknown or spec!r}; pick from {','.join(BASELINES)}")
    return picked


def suffix(baseline: str) -> str:
    return baseline.replace("-", "_")


def paired(cfg: SFTConfig, device: str, baseline: str, repeat: int):
    """side_by_side `repeat` times; each step's fastest time per side counts."""
    ours = theirs = None
    for _ in range(repeat):  # noise only ever slows a step down: keep each step's fastest run
        our_steps, their_steps, our_val, their_val, flops = side_by_side(cfg, device, baseline)
        ours = our_steps if ours is None else [min(a, b) for a, b in zip(ours, our_steps)]
        theirs = their_steps if theirs is None else [min(a, b) for a, b in zip(theirs, their_steps)]
    return ours, theirs, our_val, their_val, flops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--methods", default="lora,full")
    parser.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help="which baselines to pair nbllm with (each gets its own interleaved run)",
    )
    parser.add_argument("--device", default=models.pick_device())
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also time nbllm with compile=True")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the pair N times; each step's fastest time per side counts"
    )
    args = parser.parse_args()
    baselines = pick_baselines(args.baselines)
    missing = trl_missing()
    skipped = [b for b in baselines if b.startswith("trl") and missing]
    if skipped:
        print(f"bench sft trl_baselines skipped: {','.join(skipped)} need trl ({missing}; pip install -e '.[bench]')")
        baselines = [b for b in baselines if b not in skipped]
    torch.manual_seed(0)
    peak = matmul_peak_flops(args.device, torch.bfloat16 if args.device.startswith("cuda") else torch.float32)
    print(f"bench sft machine_matmul_peak_tflops {peak / 1e12:.3f}")
    for method in args.methods.split(","):
        name = f"sft_{method}"
        cfg = config_for(method, args.steps, args.batch_size, args.device, args.max_length)
        theirs_tps = trainer_val = None
        for baseline in baselines:
            ours, theirs, our_val, their_val, flops = paired(cfg, args.device, baseline, args.repeat)
            ours_tps = tokens_per_s(ours)
            if baseline == "trainer":
                theirs_tps, trainer_val = tokens_per_s(theirs), their_val
                per_step = sorted(t / o for (o, _), (t, _) in zip(ours, theirs))
                print(f"bench {name} real_tokens_per_s_nbllm {ours_tps:.1f}")
                print(f"bench {name} real_tokens_per_s_trainer {theirs_tps:.1f}")
                print(f"bench {name} real_tokens_per_s_ratio {ours_tps / theirs_tps:.2f}")
                print(
                    f"bench {name} step_ratio_min_median_max {per_step[0]:.2f} {per_step[len(per_step) // 2]:.2f} "
                    f"{per_step[-1]:.2f}"
                )
                print(f"bench {name} eval_loss_nbllm {our_val:.4f}")
                print(f"bench {name} eval_loss_trainer {their_val:.4f}")
                print(f"bench {name} eval_loss_rel_diff {abs(our_val - their_val) / their_val:.4f}")
                print(f"bench {name} mfu_nbllm {ours_tps * flops / peak:.3f}")
                print(f"bench {name} mfu_trainer {theirs_tps * flops / peak:.3f}")
                continue
            s, trl_tps = suffix(baseline), tokens_per_s(theirs)
            # per-step rate ratio: with packing a step's tokens differ between the sides
            per_step = sorted((o_n / o_t) / (t_n / t_t) for (o_t, o_n), (t_t, t_n) in zip(ours, theirs))
            print(f"bench {name} real_tokens_per_s_nbllm_paired_{s} {ours_tps:.1f}")
            print(f"bench {name} real_tokens_per_s_{s} {trl_tps:.1f}")
            print(f"bench {name} ratio_vs_{s} {ours_tps / trl_tps:.2f}")
            print(
                f"bench {name} step_rate_ratio_min_median_max_vs_{s} {per_step[0]:.2f} "
                f"{per_step[len(per_step) // 2]:.2f} {per_step[-1]:.2f}"
            )
            if baseline == "trl-packing":
                tokens = sorted(t_n / o_n for (_, o_n), (_, t_n) in zip(ours, theirs))
                print(
                    f"bench {name} trl_packing_step_tokens_vs_nbllm_min_median_max {tokens[0]:.2f} "
                    f"{tokens[len(tokens) // 2]:.2f} {tokens[-1]:.2f} (caveat: bfd regroups the same examples "
                    "across steps, one packed row a step; total tokens checked equal, per-step not)"
                )
            print(f"bench {name} eval_loss_nbllm_paired_{s} {our_val:.4f}")
            print(f"bench {name} eval_loss_{s} {their_val:.4f}")
            rel = "eval_loss_rel_diff_vs_trl" + ("_packing" if baseline == "trl-packing" else "")
            print(f"bench {name} {rel} {abs(our_val - their_val) / their_val:.4f}")
            print(f"bench {name} mfu_{s} {trl_tps * flops / peak:.3f}")
        if args.compile:  # the first step (compiling) is outside the timed window
            compiled, compiled_val = run_nbllm(replace(cfg, compile=True), args.device)
            print(f"bench {name} real_tokens_per_s_nbllm_compiled {compiled:.1f}")
            if theirs_tps is not None:
                print(f"bench {name} real_tokens_per_s_ratio_compiled {compiled / theirs_tps:.2f}")
                print(f"bench {name} eval_loss_rel_diff_compiled {abs(compiled_val - trainer_val) / trainer_val:.4f}")
        if not args.no_memory and not args.device.startswith("cuda"):
            mem = {
                side: peak_memory(side, method, 3, args.batch_size, args.max_length) for side in ("nbllm", *baselines)
            }
            print(f"bench {name} peak_mem_growth_mb_nbllm {mem['nbllm'] / 2**20:.0f}")
            for side in baselines:
                print(f"bench {name} peak_mem_growth_mb_{suffix(side)} {mem[side] / 2**20:.0f}")
                key = "peak_mem_ratio" if side == "trainer" else f"peak_mem_ratio_vs_{suffix(side)}"
                print(f"bench {name} {key} {mem['nbllm'] / mem[side]:.2f}")


if __name__ == "__main__":
    main()
