"""`python -m nbllm.train` on one process and on two (torchrun, gloo on CPU) gives the same losses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = {"model": "tiny-llama", "data": "instructions", "method": "full", "max_steps": 4, "batch_size": 6,
          "lr": 0.001, "max_length": 256, "val_fraction": 0.05}


def losses(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads([line for line in out.stdout.splitlines() if line.startswith('{"losses"')][-1])["losses"]


def test_two_processes_match_one(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({**CONFIG, "save": str(tmp_path / "ck")}))
    one = losses([sys.executable, "-m", "nbllm.train", str(config)])
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    two = losses([str(torchrun), "--nproc_per_node", "2", "--master_port", "29533", "-m", "nbllm.train",
                  str(config)], env)
    assert len(one) == 4 and max(abs(a - b) for a, b in zip(one, two)) < 1e-5
    assert (tmp_path / "ck" / "trainer_state.json").exists()


def test_cli_usage_and_bad_config(tmp_path):
    usage = subprocess.run([sys.executable, "-m", "nbllm.train"], capture_output=True, text=True)
    assert usage.returncode == 2 and "torchrun" in usage.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**CONFIG, "lr": -1}))
    out = subprocess.run([sys.executable, "-m", "nbllm.train", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip() == "error: lr must be > 0 (got -1)"
