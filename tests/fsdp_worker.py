"""Worker for tests/test_fsdp.py: trains a tiny Llama through nbllm.train.distributed.

    torchrun --nproc_per_node 2 tests/fsdp_worker.py CKDIR   # 2 processes: FSDP2 / DDP runs,
                                                             # writes DCP checkpoints to CKDIR
    python tests/fsdp_worker.py CKDIR                        # 1 process: the reference runs, and
                                                             # resumes from CKDIR's checkpoints

Rank 0 prints one line of JSON: {"worker": {run name: {"losses": [...], "norms": [...], ...}}}.
Each step has 8 fixed examples; each of W processes takes its 8/W, in `accum` micro-batches,
and divides its summed loss by the step's GLOBAL loss-token count.
"""

import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from nbllm import models
from nbllm.train.distributed import Processes

STEPS, EXAMPLES, LENGTH, LR, MAX_NORM = 4, 8, 24, 1e-2, 0.5


def step_batch(step: int):
    """The step's examples: random tokens, a varying prompt (masked) so token counts differ."""
    g = torch.Generator().manual_seed(1000 + step)
    ids = torch.randint(3, 250, (EXAMPLES, LENGTH), generator=g)
    labels = ids.clone()
    prompt = torch.randint(1, LENGTH - 2, (EXAMPLES,), generator=g)
    labels[torch.arange(LENGTH)[None, :] < prompt[:, None]] = -100
    return ids, labels


class LogitsLoss(torch.nn.Module):
    """Summed next-token cross-entropy through model(input_ids=...).logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, labels):
        logits = self.model(input_ids=input_ids).logits[:, :-1]
        return F.cross_entropy(logits.flatten(0, 1), labels[:, 1:].flatten(), reduction="sum")


class DecoderHeadLoss(LogitsLoss):
    """Like nbllm's real loss: the decoder's hidden states times the head weight used directly
    (tied to the input embedding in tiny-llama), only at loss positions."""

    def forward(self, input_ids, labels):
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        hidden = base.get_decoder()(input_ids=input_ids)[0][:, :-1]
        targets = labels[:, 1:]
        keep = targets != -100
        weight = base.get_output_embeddings().weight
        return F.cross_entropy(hidden[keep] @ weight.t(), targets[keep], reduction="sum")


def build(method: str, objective: str, procs: Processes):
    model, _ = models.tiny_llama(seed=0, layers=2, hidden=64)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(0)  # the same LoRA init on every process
        model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    root = (DecoderHeadLoss if objective == "decoder" else LogitsLoss)(model)
    base = model.get_base_model() if method == "lora" else model
    tied = base.lm_head.weight is base.model.embed_tokens.weight
    wrapped = procs.wrap(root, shard=method == "full", blocks=base.model.layers)
    params = [p for p in wrapped.parameters() if p.requires_grad]  # after wrap: FSDP2 swaps them
    optimizer = torch.optim.AdamW(params, lr=LR, fused=True)
    return wrapped, params, optimizer, tied and base.lm_head.weight is base.model.embed_tokens.weight


def train_step(step, wrapped, params, optimizer, procs, accum):
    ids, labels = step_batch(step)
    per = EXAMPLES // procs.world
    ids, labels = ids[procs.rank * per : (procs.rank + 1) * per], labels[procs.rank * per : (procs.rank + 1) * per]
    tokens = procs.sum(int((labels[:, 1:] != -100).sum()))
    loss = 0.0
    micro = per // accum
    for i in range(accum):
        with procs.gradient_sync(wrapped, enabled=i == accum - 1):
            part = wrapped(ids[i * micro : (i + 1) * micro], labels[i * micro : (i + 1) * micro]) / tokens
            part.backward()
        loss += part.item()
    norm = procs.clip_grad_norm(params, MAX_NORM)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return procs.sum(loss), norm


def run(method, objective, procs, accum=1, save=None, resume=None):
    wrapped, params, optimizer, tied = build(method, objective, procs)
    out = {"losses": [], "norms": [], "tied": tied}
    params_total = sum(p.numel() for p in wrapped.parameters())  # a DTensor's numel is the global one
    local = procs.local_numel(wrapped.parameters())
    out["params"] = [local, params_total, int(procs.sum(local))]
    first = 0
    if resume:
        procs.load_sharded(wrapped, optimizer, resume)
        first = 2
    for step in range(first, STEPS):
        loss, norm = train_step(step, wrapped, params, optimizer, procs, accum)
        out["losses"].append(loss)
        out["norms"].append(norm)
        if step == 0:
            # exp_avg / exp_avg_sq (the 0-dim "step" counters are plain tensors on every rank)
            state = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.dim()]
            local = procs.local_numel(state)
            out["optimizer"] = [local, sum(v.numel() for v in state), int(procs.sum(local))]
        if save and step == 1:
            procs.save_sharded(wrapped, optimizer, save)
    return out


def main():
    ck = Path(sys.argv[1])
    if "RANK" in os.environ:
        torch.distributed.init_process_group("gloo")
    procs = Processes.current()
    results = {"world": procs.world}
    if procs.world == 1:
        results["full"] = run("full", "logits", procs)
        results["full_decoder"] = run("full", "decoder", procs)
        results["lora"] = run("lora", "logits", procs)
        for name, method in (("full", "full"), ("lora", "lora")):
            if (ck / name).exists():
                results[f"resume_{name}"] = run(method, "logits", procs, resume=ck / name)
    else:
        results["full"] = run("full", "logits", procs, save=ck / "full")
        results["full_decoder_accum"] = run("full", "decoder", procs, accum=2)
        results["lora"] = run("lora", "logits", procs, save=ck / "lora")
        results["lora_accum"] = run("lora", "logits", procs, accum=2)
        results["resume_full"] = run("full", "logits", procs, resume=ck / "full")
        results["resume_lora"] = run("lora", "logits", procs, resume=ck / "lora")
    if procs.main:
        print(json.dumps({"worker": results}), flush=True)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    # After FSDP2 on gloo (torch 2.13, CPU), about one exit in ten aborts in C++ teardown
    # ("terminate called without an active exception", SIGABRT) once all the work is done;
    # the results are printed and flushed by now, so leave without running the destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
