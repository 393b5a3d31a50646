"""The GPU speed path, checked on CPU: packed-attention kernels, torch.compile'd blocks."""

import pytest
import torch
from torch._dynamo.utils import counters

import nbllm
from nbllm import models
from nbllm.config import SFTConfig
from nbllm.errors import ConfigError
from nbllm.tokenization import encode
from nbllm.train import attention
from nbllm.train.attention import use_packed_attention
from nbllm.train.batches import segments_batch
from nbllm.train.compiling import blocks
from nbllm.train.sft import loss_sum

RECORDS = [{"instruction": f"Add {a} and {b}.", "input": "", "output": f"{a + b}"} for a in range(6) for b in range(4)]
FAST = dict(model="tiny-llama", batch_size=4, samples=0, progress="none", max_length=256)


def packed_model_and_examples():
    model, tok = models.tiny_llama()
    use_packed_attention(model)
    examples = [encode(tok, r, "alpaca") for r in RECORDS[:5]] + [encode(tok, "short text", "none")]
    return model, examples


@pytest.mark.parametrize("kernel", ["sdpa", "mask"])
@pytest.mark.slow
def test_each_kernel_gives_the_logits_of_each_example_alone(kernel):
    model, examples = packed_model_and_examples()
    batch = segments_batch(examples).to("cpu", kernel)
    with torch.no_grad(), attention.packed_forward():
        packed = model(**batch.model_inputs()).logits[0]
    with torch.no_grad():
        for e, start, end in zip(examples, batch.segments, batch.segments[1:]):
            alone = model(input_ids=torch.tensor([e.input_ids])).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_a_packed_row_builds_no_full_attention_mask(monkeypatch):
    """transformers would derive an L x L mask from the restarting position_ids; packed
    attention isolates the examples itself, so the mask function must not run."""
    import transformers.masking_utils as masking

    model, examples = packed_model_and_examples()
    calls = []
    original = masking.sdpa_mask
    monkeypatch.setattr(masking, "sdpa_mask", lambda *a, **k: calls.append(1) or original(*a, **k))
    with torch.no_grad():
        loss_sum(model, segments_batch(examples))
        assert calls == []
        model(input_ids=torch.tensor([examples[0].input_ids] * 2), attention_mask=torch.ones(2, len(examples[0])))
    assert calls, "outside packed training the usual mask function still runs (generation, padded batches)"


@pytest.mark.slow  # about a minute of compiling on 2 cores
def test_compiled_training_gives_the_eager_losses_and_never_recompiles_per_step():
    common = {**FAST, "method": "lora", "lora_dropout": 0.0, "eval_every": 2}
    eager = nbllm.sft(RECORDS, max_steps=3, **common)
    torch._dynamo.reset()
    counters.clear()
    compiled = nbllm.sft(RECORDS, max_steps=3, compile=True, **common)
    assert counters["stats"]["unique_graphs"] > 0  # it did compile
    a, b = (r.history[["loss", "val_loss"]].to_numpy() for r in (eager, compiled))
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), atol=1e-5, rtol=1e-5, equal_nan=True)
    assert all(block._compiled_call_impl is None for block in blocks(compiled.model))  # plain again
    assert isinstance(compiled.generate("Add 1 and 2.", max_new_tokens=3), str)
    counters.clear()  # a longer run with other examples per step: same graphs, no new compile
    nbllm.sft(RECORDS, max_steps=5, seed=3, compile=True, **common)
    assert counters["stats"]["unique_graphs"] == 0


def test_compile_and_kernel_misuse_is_a_clear_error():
    with pytest.raises(ConfigError, match="--compile speeds up SFT runs"):
        SFTConfig(format="classify", method="head", compile=True)
    with pytest.raises(ConfigError, match="attention=.flash9. is not valid"):
        SFTConfig(attention="flash9")
    with pytest.raises(ConfigError, match="needs an Ampere or newer CUDA GPU"):
        nbllm.sft(RECORDS, max_steps=1, attention="varlen", device="cpu", **FAST)
    with pytest.raises(ConfigError, match="applies to packed rows"):
        nbllm.sft(RECORDS, max_steps=1, attention="mask", packing=False, **FAST)


def reference_varlen(q, k, v, cu_q, cu_k, max_q, max_k, scale=None, window_size=(-1, -1), enable_gqa=False):
    """A CPU stand-in for torch's flash varlen kernel, same signature and (T, H, D) layout."""
    n = q.shape[0]
    doc = torch.searchsorted(cu_q, torch.arange(n, dtype=cu_q.dtype), right=True) - 1
    mask = doc[:, None] == doc[None, :]
    if tuple(window_size) == (-1, 0):
        mask = mask & torch.ones(n, n, dtype=torch.bool).tril()
    q, k, v = (t.transpose(0, 1)[None] for t in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=enable_gqa)
    return out[0].transpose(0, 1)


@pytest.mark.slow
def test_the_compiled_varlen_path_traces_and_matches_per_example_attention(monkeypatch):
    """The GPU path (compiled blocks + varlen kernel) with the kernel swapped for a CPU
    reference: checks the plumbing (kwargs, layouts, causal window, GQA) under torch.compile,
    gradients included, and that a batch of other lengths does not recompile."""
    from nbllm.train.compiling import compile_blocks, uncompile_blocks

    monkeypatch.setattr(attention, "_VARLEN", [(reference_varlen, True, True)])
    monkeypatch.setattr(attention, "_half", lambda query: query.dtype)
    model, examples = packed_model_and_examples()
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA is exercised
    batches = [segments_batch(examples), segments_batch(examples[1:4])]

    def loss_and_grads(batch, kernel, compiled):
        model.zero_grad()
        loss = loss_sum(model, batch.to("cpu", kernel, max_len=256), compiled)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    eager = [loss_and_grads(b, "sdpa", False) for b in batches]
    torch._dynamo.reset()
    compile_blocks(model)
    try:
        counters.clear()
        compiled = [loss_and_grads(batches[0], "varlen", True)]
        graphs = counters["stats"]["unique_graphs"]
        compiled.append(loss_and_grads(batches[1], "varlen", True))
        assert graphs > 0 and counters["stats"]["unique_graphs"] == graphs  # the second batch reused them
    finally:
        uncompile_blocks(model)
    for (loss_a, grads_a), (loss_b, grads_b) in zip(eager, compiled):
        torch.testing.assert_close(loss_b, loss_a, atol=1e-4, rtol=1e-5)
        for a, b in zip(grads_a, grads_b):
            torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
