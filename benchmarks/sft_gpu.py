"""SFT throughput on one GPU: nbllm against HF Trainer + PEFT, sequence length up to 1024.

The model has SmolLM2-135M's exact shape with seeded random weights (the GPU machine has no
copy of the packaged weights; speed does not depend on the values). Examples are 128-1024
tokens, the first quarter of each is prompt (not in the loss). Prints `bench sft_gpu ...`:
real (non-padding) tokens/s of nbllm LoRA and full fine-tuning, eager and with `compile=True`
(torch.compile'd blocks, flash varlen attention), at batch 16-64; Trainer + PEFT LoRA (batch
16, dynamic padding, bf16 autocast); MFU (4N or 6N plus attention FLOPs) against the measured
bf16 matmul peak and the card's spec peak; checks that packed attention equals padded
attention and that the fp16 (loss-scaled) path trains. A variant that fails prints why and
the rest go on; variants past --budget seconds are skipped, so one device call always comes
back with figures. Skips on a machine without CUDA.

    python benchmarks/sft_gpu.py [--steps 30] [--budget 420] [--cpu-smoke]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from sft import flops_per_token, matmul_peak_flops  # noqa: E402

from nbllm import models  # noqa: E402
from nbllm.config import SFTConfig  # noqa: E402
from nbllm.tokenization import Encoded  # noqa: E402
from nbllm.train.sft import PreparedData, loss_sum  # noqa: E402
from nbllm.train.trainer import Callback, Trainer  # noqa: E402

SMOLLM2_SHAPE = dict(
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
)


def make_model(device, dtype, small=False):
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = (
        dict(
            SMOLLM2_SHAPE,
            num_hidden_layers=2,
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
        if small
        else SMOLLM2_SHAPE
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**shape, attn_implementation="sdpa")).to(device=device, dtype=dtype)
    model.config.name_or_path = "smollm2-shape"
    return model


def make_examples(n, low, high, vocab, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(low, high)
        ids = [rng.randrange(3, vocab) for _ in range(length)]
        prompt = length // 4
        out.append(Encoded(ids, [False] * prompt + [True] * (length - prompt), "none"))
    return out


def attention_context(examples) -> float:
    """The mean context a token attends over (causal, within its example): E[len^2] / E[len]."""
    lengths = [len(e) for e in examples]
    return sum(n * n for n in lengths) / sum(lengths)


def nbllm_tokens_per_s(method, batch, steps, examples, device, precision, small=False, compile=False):
    lora_bf16 = method == "lora" and precision == "bf16"
    model = make_model(device, torch.bfloat16 if lora_bf16 else torch.float32, small)
    cfg = SFTConfig(
        model="smollm2-shape",
        method=method,
        batch_size=batch,
        max_steps=steps,
        val_fraction=0,
        precision=precision,
        device=device,
        eval_every=10**6,
        max_length=1024,
        compile=compile,
    )
    data = PreparedData(examples, [], [], len(examples), 0, 0)
    trainer = Trainer(cfg, data, model, models.byte_tokenizer(), device)
    marks = []

    class Marks(Callback):
        def on_step_end(self, tr, row):
            marks.append((tr.state.train_seconds, tr.state.tokens, row["loss"]))

    started = time.perf_counter()
    trainer.run([Marks()])
    warm = min(5, steps - 2)
    (t0, n0, _), (t1, n1, _) = marks[warm], marks[-1]
    losses = [m[2] for m in marks]
    flops = flops_per_token(trainer.model, method, attention_context(examples))
    first_steps = marks[warm][0]  # includes compiling
    del trainer, model
    return (n1 - n0) / (t1 - t0), flops, losses, first_steps, time.perf_counter() - started


def trainer_tokens_per_s(batch, steps, examples, device, small=False):
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer as HFTrainer, TrainerCallback, TrainingArguments

    model = get_peft_model(
        make_model(device, torch.float32, small),
        LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    rows = [
        {
            "input_ids": e.input_ids,
            "attention_mask": [1] * len(e),
            "labels": [t if keep else -100 for t, keep in zip(e.input_ids, e.loss_mask)],
        }
        for e in examples[: batch * steps]
    ]
    marks = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            marks.append((time.perf_counter(), state.num_input_tokens_seen))

    args = TrainingArguments(
        output_dir="/tmp/nbllm-gpu-bench",
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=2e-4,
        report_to=[],
        save_strategy="no",
        logging_steps=10**6,
        bf16=device.startswith("cuda"),
        use_cpu=not device.startswith("cuda"),
        include_num_input_tokens_seen="non_padding",
        train_sampling_strategy="sequential",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    HFTrainer(
        model=model,
        args=args,
        train_dataset=rows,
        callbacks=[Clock()],
        data_collator=DataCollatorForSeq2Seq(models.byte_tokenizer(), padding=True),
    ).train()
    warm = min(3, steps - 2)
    (t0, n0), (t1, n1) = marks[warm], marks[-1]
    return (n1 - n0) / (t1 - t0)


def packed_equals_padded(device, dtype, small):
    from nbllm.train.attention import use_packed_attention
    from nbllm.train.batches import make_batch

    model = make_model(device, dtype, small)
    use_packed_attention(model)
    examples = make_examples(8, 64, 512, model.config.vocab_size, seed=1)
    with torch.no_grad():
        a = loss_sum(model, make_batch(examples, 0, "segments").to(device)).float()
        b = loss_sum(model, make_batch(examples, 0, "padded").to(device)).float()
    return abs(a - b).item() / abs(b).item()


SPEC_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "T4": 65.0}  # dense


def spec_peak(name: str) -> float | None:
    return next((v * 1e12 for k, v in SPEC_BF16_TFLOPS.items() if k in name), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--budget", type=float, default=420, help="seconds; later variants are skipped after it")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU: checks the script runs")
    args = parser.parse_args()
    small = args.cpu_smoke
    if not torch.cuda.is_available() and not small:
        print("bench sft_gpu skipped no_cuda")
        return
    begun = time.perf_counter()
    device = "cpu" if small else "cuda"
    precision = "fp32" if small else "bf16"
    steps = 4 if small else args.steps
    name = "cpu-smoke" if small else torch.cuda.get_device_name()
    say = lambda *words: print("bench sft_gpu", *words, flush=True)  # noqa: E731
    import transformers

    say("device", name.replace(" ", "_"), "torch", torch.__version__, "transformers", transformers.__version__)
    peak = matmul_peak_flops(device, torch.float32 if small else torch.bfloat16, 512 if small else 8192)
    spec = spec_peak(name)
    say("bf16_matmul_peak_tflops", f"{peak / 1e12:.1f}", "spec", f"{spec / 1e12:.0f}" if spec else "unknown")
    low, high = (16, 64) if small else (128, 1024)
    examples = make_examples(64 * steps, low, high, 49152)
    say("attention_context_tokens", f"{attention_context(examples):.0f}")
    say(
        "packed_vs_padded_loss_rel_diff",
        f"{packed_equals_padded(device, torch.float32 if small else torch.bfloat16, small):.5f}",
    )
    results = {}
    variants = [
        ("lora_b16", "lora", 16, False),
        ("lora_b32", "lora", 32, False),
        ("lora_b16_compiled", "lora", 16, True),
        ("lora_b32_compiled", "lora", 32, True),
        ("lora_b64_compiled", "lora", 64, True),
        ("full_b32_compiled", "full", 32, True),
        ("full_b16", "full", 16, False),
    ]
    for label, method, batch, compiled in variants:
        if time.perf_counter() - begun > args.budget:
            say(label, "skipped over_budget")
            continue
        try:
            tps, flops, losses, warmup_s, total_s = nbllm_tokens_per_s(
                method, batch, steps, examples, device, precision, small, compiled
            )
        except Exception as err:  # noqa: BLE001 - report and go on to the next variant
            say(label, "failed", type(err).__name__, str(err).splitlines()[0][:200] if str(err) else "")
            continue
        results[label] = tps
        say(f"nbllm_{label}_tokens_per_s", f"{tps:.0f}")
        say(f"nbllm_{label}_mfu", f"{tps * flops / peak:.3f}", "spec", f"{tps * flops / spec:.3f}" if spec else "-")
        say(f"nbllm_{label}_loss_first_last", f"{losses[0]:.4f} {losses[-1]:.4f}")
        say(f"nbllm_{label}_seconds_warmup_total", f"{warmup_s:.1f} {total_s:.1f}")
    try:
        base = trainer_tokens_per_s(16, max(6, steps // 3), examples, device, small)
    except Exception as err:  # noqa: BLE001
        say("trainer_peft_lora_b16 failed", type(err).__name__, str(err)[:200])
        return
    say("trainer_peft_lora_b16_tokens_per_s", f"{base:.0f}")
    for label, tps in results.items():
        if label.startswith("lora"):
            say(f"{label}_ratio", f"{tps / base:.2f}")
    if time.perf_counter() - begun < args.budget + 60:
        _, _, losses, _, _ = nbllm_tokens_per_s("lora", 8, 6, examples, device, "fp16", small)
        ok = all(math.isfinite(x) for x in losses)
        say("fp16_loss_scaled_losses_finite", int(ok), f"{losses[0]:.3f} {losses[-1]:.3f}")
    if not small:
        say("max_memory_gb", f"{torch.cuda.max_memory_allocated() / 2**30:.1f}")
    say("seconds", f"{time.perf_counter() - begun:.0f}")


if __name__ == "__main__":
    main()
