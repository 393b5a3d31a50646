"""The one prepared GPU benchmark must not rot between device sessions: its CPU smoke mode
runs every variant (eager, compiled, full, Trainer baseline, fp16) at tiny shapes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_gpu_benchmark_runs_every_variant_in_cpu_smoke_mode():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "benchmarks/sft_gpu.py", "--cpu-smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 3)[2:] for line in done.stdout.splitlines()
                 if line.startswith("bench sft_gpu ") and len(line.split(" ")) > 3)
    assert not [k for k, v in lines.items() if "failed" in k or v.startswith(("failed", "skipped"))], done.stdout
    for variant in ("lora_b16", "lora_b32", "lora_b16_compiled", "lora_b32_compiled", "lora_b64_compiled",
                    "full_b32_compiled", "full_b16"):
        assert float(lines[f"nbllm_{variant}_tokens_per_s"]) > 0
    assert float(lines["packed_vs_padded_loss_rel_diff"]) < 1e-4
    assert float(lines["trainer_peft_lora_b16_tokens_per_s"]) > 0
    assert lines["fp16_loss_scaled_losses_finite"].startswith("1 ")
