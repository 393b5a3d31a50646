"""The two-activation gated MLP: the same outputs and gradients as transformers' own forward,
one [tokens x intermediate] activation fewer kept for backward."""

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from nbllm.train.swiglu import fuse_swiglu


def tiny_llama(act: str = "silu"):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_act=act,
    )
    return LlamaForCausalLM(config)


def loss_and_grads(model, ids):
    model.zero_grad(set_to_none=True)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def saved_bytes(model, ids) -> int:
    seen = {}

    def pack(t):
        seen.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        return t

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids).loss
    return sum(n for ptr, n in seen.items() if ptr not in params)


def test_fused_mlp_gives_the_same_loss_and_gradients():
    ids = torch.randint(0, 64, (2, 24), generator=torch.Generator().manual_seed(1))
    plain, fused = tiny_llama(), tiny_llama()
    assert fuse_swiglu(fused) == 2
    loss_a, grads_a = loss_and_grads(plain, ids)
    loss_b, grads_b = loss_and_grads(fused, ids)
    torch.testing.assert_close(loss_b, loss_a, rtol=0, atol=1e-6)
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-5, atol=1e-7, msg=name)


def test_fused_mlp_keeps_one_intermediate_activation_fewer_per_block():
    ids = torch.randint(0, 64, (1, 40), generator=torch.Generator().manual_seed(2))
    plain, fused = tiny_llama(), tiny_llama()
    fuse_swiglu(fused)
    one_activation = 40 * 48 * 4  # tokens x intermediate, fp32
    assert saved_bytes(plain, ids) - saved_bytes(fused, ids) == 2 * one_activation  # two blocks


def test_no_grad_and_a_copy_use_the_copy_and_plain_math():
    fused = tiny_llama()
    fuse_swiglu(fused)
    twin = copy.deepcopy(fused)  # DPO's frozen reference is a deep copy
    mlp = twin.model.layers[0].mlp
    assert mlp.forward.__self__ is mlp
    ids = torch.randint(0, 64, (1, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(twin(input_ids=ids).logits, fused(input_ids=ids).logits)


@pytest.mark.parametrize("act", ["gelu", "relu"])
def test_other_activations_are_left_alone(act):
    assert fuse_swiglu(tiny_llama(act)) == 0
