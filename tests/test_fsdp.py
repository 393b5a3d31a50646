"""nbllm.train.distributed: FSDP2 (full fine-tuning) and DDP (LoRA) on two processes (torchrun,
gloo on CPU) give the losses of one process; DCP checkpoints resume on 1 or 2 processes.

One torchrun launch and one plain-python launch of tests/fsdp_worker.py do all the training;
the tests below only compare their JSON."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nbllm.train.distributed import Processes

WORKER = Path(__file__).with_name("fsdp_worker.py")
ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads([line for line in out.stdout.splitlines() if line.startswith('{"worker"')][-1])["worker"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(one process, two processes, checkpoint directory): the 2-process run goes first, since
    the 1-process one resumes from its checkpoints."""
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed")
    ck = tmp_path_factory.mktemp("fsdp_ck")
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    two = launch(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", str(free_port()), str(WORKER), str(ck)], env
    )
    one = launch([sys.executable, str(WORKER), str(ck)], env)
    assert one["world"] == 1 and two["world"] == 2
    return one, two, ck


def close(a, b, tol=TOL):
    assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < tol, (a, b)


def close_norms(a, b):
    """Pre-clip gradient norms: equal only if gradients are summed (not averaged) over processes
    and the clipping norm is the global one."""
    close([x / y for x, y in zip(a, b)], [1.0] * len(b))


@pytest.mark.slow
def test_fsdp_full_fine_tuning_matches_one_process(runs):
    one, two, _ = runs
    assert len(one["full"]["losses"]) == 4
    close(two["full"]["losses"], one["full"]["losses"])
    close_norms(two["full"]["norms"], one["full"]["norms"])
    assert max(one["full"]["norms"]) > 0.5  # clipping (MAX_NORM 0.5) really scaled gradients
    assert one["full"]["losses"] != one["lora"]["losses"]  # training changed the losses


@pytest.mark.slow
def test_fsdp_tied_head_used_directly_and_accumulation(runs):
    # decoder + get_output_embeddings().weight (tied to the input embedding), 2 micro-batches
    one, two, _ = runs
    assert two["full_decoder_accum"]["tied"] and one["full_decoder"]["tied"]
    close(two["full_decoder_accum"]["losses"], one["full_decoder"]["losses"])
    close_norms(two["full_decoder_accum"]["norms"], one["full_decoder"]["norms"])


@pytest.mark.slow
def test_ddp_lora_matches_one_process_with_and_without_accumulation(runs):
    one, two, _ = runs
    for name in ("lora", "lora_accum"):
        close(two[name]["losses"], one["lora"]["losses"])
        close_norms(two[name]["norms"], one["lora"]["norms"])


@pytest.mark.slow
def test_fsdp_holds_half_the_parameters_and_optimizer_state(runs):
    one, two, _ = runs
    for key in ("params", "optimizer"):
        local, total, over_ranks = two["full"][key]
        assert abs(local / (total / 2) - 1) < 0.03, (key, local, total)
        assert over_ranks == total  # the shards partition the whole
        assert one["full"][key][0] == one["full"][key][1] == total
    local, total, _ = two["lora"]["params"]  # DDP: every process holds everything
    assert local == total


@pytest.mark.slow
def test_dcp_checkpoint_resumes_on_one_and_two_processes(runs):
    one, two, ck = runs
    assert len(list((ck / "full").glob("*.distcp"))) == 2  # each rank wrote its shards
    for name in ("full", "lora"):
        close(one[f"resume_{name}"]["losses"], one[name]["losses"][2:])
        close(two[f"resume_{name}"]["losses"], one[name]["losses"][2:])
    # FSDP2 resumed on 2 processes re-shards: still half each
    assert abs(two["resume_full"]["params"][0] / (two["full"]["params"][1] / 2) - 1) < 0.03


def test_one_process_without_a_process_group():
    procs = Processes.current()
    assert (procs.rank, procs.world, procs.main) == (0, 1, True)
    assert procs.sum(2.5) == 2.5
    lin = torch.nn.Linear(4, 3)
    assert procs.wrap(lin, shard=True, blocks=[]) is lin and procs.wrap(lin, shard=False) is lin
    with procs.gradient_sync(lin, enabled=False):
        (lin(torch.ones(2, 4)).sum() * 10).backward()
    grads = [p.grad.clone() for p in lin.parameters()]
    expected = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    norm = procs.clip_grad_norm(lin.parameters(), 1.0)
    assert abs(norm - expected.item()) < 1e-5
    clipped = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in lin.parameters()]))
    assert abs(clipped.item() - 1.0) < 1e-5
    opt = torch.optim.AdamW(lin.parameters(), fused=True)
    opt.step()
    assert procs.local_numel(lin.parameters()) == 15 and procs.local_numel(opt) == 2 * 15 + 2
