"""The benchmarks behind the issue figures must not rot: the prepared GPU one runs every
variant in its CPU smoke mode; the CPU SFT one runs its side-by-side loop for a few steps."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def bench_lines(stdout: str, prefix: str) -> dict:
    return dict(
        line.split(" ", 3)[2:] for line in stdout.splitlines() if line.startswith(prefix) and len(line.split(" ")) > 3
    )


@pytest.mark.slow
def test_sft_benchmark_interleaves_both_sides_on_the_same_tokens():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/sft.py",
            "--steps",
            "3",
            "--methods",
            "lora",
            "--no-memory",
            "--baselines",
            "trainer",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]  # it raises if the sides counted different tokens per step
    lines = bench_lines(done.stdout, "bench sft_lora ")
    assert float(lines["real_tokens_per_s_nbllm"]) > 0 and float(lines["real_tokens_per_s_trainer"]) > 0
    assert len(lines["step_ratio_min_median_max"].split()) == 3
    assert float(lines["eval_loss_rel_diff"]) < 0.02  # same data, same schedule: the same model, nearly


@pytest.mark.slow
def test_sft_benchmark_pairs_nbllm_with_trl_padding_free_and_packing():
    pytest.importorskip("trl")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/sft.py",
            "--steps",
            "3",
            "--methods",
            "lora",
            "--no-memory",
            "--baselines",
            "trl-padding-free,trl-packing",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    # it raises if padding-free counted other tokens than nbllm in a step, or packing in all
    assert done.returncode == 0, done.stderr[-2000:]
    lines = bench_lines(done.stdout, "bench sft_lora ")
    for side in ("trl_padding_free", "trl_packing"):
        assert float(lines[f"real_tokens_per_s_{side}"]) > 0 and float(lines[f"ratio_vs_{side}"]) > 0
        assert len(lines[f"step_rate_ratio_min_median_max_vs_{side}"].split()) == 3
    assert float(lines["trl_packing_step_tokens_vs_nbllm_min_median_max"].split()[0]) > 0
    assert float(lines["eval_loss_rel_diff_vs_trl"]) < 0.02  # same examples per step, same schedule
    assert float(lines["eval_loss_rel_diff_vs_trl_packing"]) < 0.02  # the same examples, regrouped


@pytest.mark.slow
def test_sft_benchmark_skips_the_trl_baselines_in_one_line_without_trl():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    hide_trl = (
        "import runpy, sys; sys.modules['trl'] = None; sys.argv = ['benchmarks/sft.py', *sys.argv[1:]]; "
        "sys.path.insert(0, 'benchmarks'); runpy.run_path('benchmarks/sft.py', run_name='__main__')"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            hide_trl,
            "--steps",
            "1",
            "--methods",
            "lora",
            "--no-memory",
            "--baselines",
            "trl-padding-free,trl-packing",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    skips = [line for line in done.stdout.splitlines() if "skipped" in line]
    assert len(skips) == 1 and "trl-padding-free,trl-packing" in skips[0] and "[bench]" in skips[0], done.stdout
    assert "bench sft_lora" not in done.stdout  # nothing else was asked for


@pytest.mark.slow
def test_gpu_benchmark_runs_every_variant_in_cpu_smoke_mode():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "benchmarks/sft_gpu.py", "--cpu-smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = bench_lines(done.stdout, "bench sft_gpu ")
    assert not [k for k, v in lines.items() if "failed" in k or v.startswith(("failed", "skipped"))], done.stdout
    for variant in (
        "lora_b16",
        "lora_b32",
        "lora_b16_compiled",
        "lora_b32_compiled",
        "lora_b64_compiled",
        "full_b32_compiled",
        "full_b16",
    ):
        assert float(lines[f"nbllm_{variant}_tokens_per_s"]) > 0
    assert float(lines["packed_vs_padded_loss_rel_diff"]) < 1e-4
    assert float(lines["trainer_peft_lora_b16_tokens_per_s"]) > 0
    assert lines["fp16_loss_scaled_losses_finite"].startswith("1 ")
