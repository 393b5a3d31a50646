"""The fused head + cross-entropy gives autograd's loss and gradients, chunk boundaries included."""

import pytest
import torch
import torch.nn.functional as F

from nbllm.train import linear_ce
from nbllm.train.linear_ce import linear_cross_entropy


def inputs(n=300, d=16, vocab=50, bias=False, weight_grad=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=g, requires_grad=True)
    weight = torch.randn(vocab, d, generator=g).requires_grad_(weight_grad)
    b = torch.randn(vocab, generator=g, requires_grad=True) if bias else None
    targets = torch.randint(0, vocab, (n,), generator=g)
    return hidden, weight, b, targets


def grads_of(loss, *tensors):
    wanted = [t for t in tensors if t is not None and t.requires_grad]
    return [g.clone() for g in torch.autograd.grad(loss, wanted)]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 128 rows: 300 rows cross two chunk boundaries."""
    monkeypatch.setattr(linear_ce, "CHUNK_BYTES", 128 * 4 * 50)
    assert linear_ce.chunk_rows(50) == 128


@pytest.mark.parametrize("bias", [False, True])
def test_loss_and_gradients_equal_autograds_across_chunks(small_chunks, bias):
    hidden, weight, b, targets = inputs(bias=bias)
    reference = F.cross_entropy(F.linear(hidden, weight, b), targets, reduction="sum")
    fused = linear_cross_entropy(hidden, weight, b, targets)
    torch.testing.assert_close(fused, reference, rtol=1e-6, atol=1e-4)
    for ours, theirs in zip(grads_of(fused * 0.37, hidden, weight, b), grads_of(reference * 0.37, hidden, weight, b)):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)  # the incoming gradient scales them


def test_a_frozen_head_gets_no_gradient_and_the_hidden_rows_do(small_chunks):
    hidden, weight, _, targets = inputs(weight_grad=False)
    fused = linear_cross_entropy(hidden, weight, None, targets)
    fused.backward()
    assert weight.grad is None
    again = hidden.detach().requires_grad_()
    F.cross_entropy(again @ weight.T, targets, reduction="sum").backward()
    torch.testing.assert_close(hidden.grad, again.grad, rtol=1e-5, atol=1e-6)


def test_without_gradients_it_only_computes_the_loss(small_chunks):
    hidden, weight, _, targets = inputs()
    with torch.no_grad():
        fused = linear_cross_entropy(hidden, weight, None, targets)
    assert fused.grad_fn is None
    torch.testing.assert_close(
        fused, F.cross_entropy(hidden @ weight.T, targets, reduction="sum").detach(), rtol=1e-6, atol=1e-4
    )


def test_under_bf16_autocast_it_matches_the_autocast_head_within_bf16_rounding(small_chunks):
    hidden, weight, _, targets = inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = linear_cross_entropy(hidden, weight, None, targets)
        reference = F.cross_entropy(F.linear(hidden, weight).float(), targets, reduction="sum")
    assert fused.dtype == torch.float32
    torch.testing.assert_close(fused, reference, rtol=1e-3, atol=1e-2)
    for ours, theirs in zip(grads_of(fused, hidden, weight), grads_of(reference, hidden, weight)):
        assert ours.dtype == theirs.dtype == torch.float32
        torch.testing.assert_close(ours, theirs, rtol=2e-2, atol=2e-2)


@pytest.mark.slow
def test_the_compiled_elementwise_part_gives_the_same_gradients(small_chunks):
    torch._dynamo.reset()
    hidden, weight, _, targets = inputs()
    eager = grads_of(linear_cross_entropy(hidden, weight, None, targets), hidden, weight)
    compiled = grads_of(linear_cross_entropy(hidden, weight, None, targets, compiled=True), hidden, weight)
    for a, b in zip(compiled, eager):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
