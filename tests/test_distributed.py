"""`python -m nbllm.train` on one process and on two (torchrun, gloo on CPU): full fine-tuning
is sharded with FSDP2 (each process holds about half the parameters and optimizer state),
the losses equal one process's, and a two-process checkpoint resumes on one process exactly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbllm
from nbllm import models
from nbllm.errors import ConfigError
from nbllm.train.results import ModelResult

CONFIG = {
    "model": "tiny-llama",
    "data": "instructions",
    "method": "full",
    "max_steps": 4,
    "batch_size": 6,
    "lr": 0.001,
    "max_length": 256,
    "val_fraction": 0.05,
    "schedule": "constant",
    "warmup_ratio": 0.0,
}
TORCHRUN = Path(sys.executable).parent / "torchrun"


def launch(tmp_path, name, processes=1, port=29533, **options):
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps({**CONFIG, **options}))
    cmd = [sys.executable, "-m", "nbllm.train", str(config)]
    if processes > 1:
        cmd = [
            str(TORCHRUN),
            "--nproc_per_node",
            str(processes),
            "--master_port",
            str(port),
            "-m",
            "nbllm.train",
            str(config),
        ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads([line for line in out.stdout.splitlines() if line.startswith('{"losses"')][-1])


def close(a, b):
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < 1e-5


@pytest.mark.slow
def test_two_sharded_processes_match_one_and_resume_on_one(tmp_path):
    if not TORCHRUN.exists():
        pytest.skip("torchrun not installed")
    one = launch(tmp_path, "one", save=str(tmp_path / "ck1"))
    two = launch(tmp_path, "two", processes=2, save=str(tmp_path / "ck2"))
    assert len(one["losses"]) == 4 and close(one["losses"], two["losses"])
    assert (tmp_path / "ck2" / "sharded").is_dir() and (tmp_path / "ck1" / "model").is_dir()
    assert one["local_params"] == one["total_params"] and two["processes"] == 2
    assert abs(two["local_params"] / two["total_params"] - 0.5) < 0.05  # FSDP2: each process holds its half
    assert abs(two["local_optimizer"] / one["local_optimizer"] - 0.5) < 0.05
    half = launch(tmp_path, "half", processes=2, port=29534, max_steps=2, save=str(tmp_path / "ck_half"))
    assert close(half["losses"], one["losses"][:2])
    resumed = launch(tmp_path, "resumed", max_steps=4, resume=str(tmp_path / "ck_half"))
    assert close(resumed["losses"], one["losses"])  # steps 1-2 from the checkpoint, 3-4 trained on one process
    other = ModelResult(*models.tiny_llama(hidden=32), "tiny-llama")
    with pytest.raises(ConfigError, match="sharded checkpoint .* does not fit this model"):
        nbllm.sft("instructions", model=other, resume=str(tmp_path / "ck_half"), progress="none", samples=0)
    assert (tmp_path / "ck_half" / "sharded").is_dir()  # nothing saved is lost


@pytest.mark.slow
def test_lora_on_two_processes_replicates_and_matches_one(tmp_path):
    if not TORCHRUN.exists():
        pytest.skip("torchrun not installed")
    # no LoRA dropout: each process draws the dropout masks of its own examples, so with dropout
    # the runs are equal in distribution, not to the digit
    one = launch(tmp_path, "lora1", method="lora", lr=0.01, lora_dropout=0.0)
    two = launch(tmp_path, "lora2", processes=2, port=29535, method="lora", lr=0.01, lora_dropout=0.0)
    assert close(one["losses"], two["losses"]) and two["local_params"] == two["total_params"]  # DDP: replicated


@pytest.mark.slow
def test_cli_usage_and_bad_config(tmp_path):
    usage = subprocess.run([sys.executable, "-m", "nbllm.train"], capture_output=True, text=True)
    assert usage.returncode == 2 and "torchrun" in usage.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**CONFIG, "lr": -1}))
    out = subprocess.run([sys.executable, "-m", "nbllm.train", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip() == "error: lr must be > 0 (got -1)"
