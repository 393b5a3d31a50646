import pytest
import torch
from torch import nn

import nbllm
from nbllm import models
from nbllm.config import SFTConfig
from nbllm.train.dropout import LEVELS, CheapDropout, cheapen_lora_dropout, uniform_lanes
from nbllm.train.methods import apply_method


def test_keeps_each_element_with_probability_one_minus_p_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    out = CheapDropout(0.1).train()(x)
    kept = out != 0
    dropped = round(0.1 * LEVELS)
    assert abs(kept.float().mean().item() - 0.9) < 0.002  # 1e6 draws: sd 3e-4
    assert torch.all(out[kept] == LEVELS / (LEVELS - dropped))
    assert abs(out.mean().item() - 1.0) < 0.003
    # masks are independent elementwise: rows and columns keep about the same share
    assert kept.float().mean(0).std() < 0.02 and kept.float().mean(1).std() < 0.02


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(64, 32, requires_grad=True)
    out = CheapDropout(0.3).train()(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, out.detach() / x.detach())


def test_same_rng_state_same_mask_and_each_call_a_new_mask():
    drop = CheapDropout(0.5).train()
    x = torch.ones(100, 100)
    torch.manual_seed(3)
    a, b = drop(x), drop(x)
    torch.manual_seed(3)
    assert torch.equal(drop(x), a)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("p, training", [(0.0, True), (0.2, False)])
def test_identity_without_dropout_or_in_eval(p, training):
    x = torch.randn(10, 10)
    assert torch.equal(CheapDropout(p).train(training)(x), x)


@pytest.mark.slow
def test_lora_adapters_get_the_cheap_dropout_with_their_p():
    model, _ = models.tiny_llama()
    model = apply_method(model, SFTConfig(model="tiny-llama", method="lora", lora_dropout=0.2))
    assert cheapen_lora_dropout(model) == 2 * model.config.num_hidden_layers  # q_proj and v_proj
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout) and not isinstance(m, CheapDropout)]
    cheap = [m for m in model.modules() if isinstance(m, CheapDropout)]
    assert len(cheap) == 2 * model.config.num_hidden_layers and all(m.p == 0.2 for m in cheap)
    assert all("lora" not in str(type(m)) for m in dropouts)
    assert cheapen_lora_dropout(model) == 0  # already swapped


@pytest.mark.slow
def test_lora_runs_with_dropout_repeat_exactly():
    records = [
        {"instruction": f"Add {a} and {b}.", "input": "", "output": f"{a + b}"} for a in range(6) for b in range(4)
    ]
    kw = dict(
        model="tiny-llama", batch_size=4, samples=0, progress="none", max_steps=4, method="lora", lora_dropout=0.3
    )
    a, b = nbllm.sft(records, **kw), nbllm.sft(records, **kw)
    assert a.history.loss.tolist() == b.history.loss.tolist()
    c = nbllm.sft(records, **{**kw, "lora_dropout": 0.0})
    assert c.history.loss.tolist() != a.history.loss.tolist()  # the dropout did act


def test_each_of_the_four_lanes_of_a_draw_is_uniform_on_15_bits():
    torch.manual_seed(0)  # the bounds below are 3-4 sigma: seeded, they cannot flake
    values = uniform_lanes(4 * 250_000 + 3)
    assert values.shape == (1_000_003,) and values.dtype == torch.int16
    assert int(values.min()) >= 0 and int(values.max()) == LEVELS - 1
    lanes = values[:1_000_000].view(-1, 4).float()
    for lane in lanes.T:  # the top lane lacks the sign bit: masking to 15 bits makes it like the others
        assert abs(float(lane.mean()) - (LEVELS - 1) / 2) < 60
        assert abs(float((lane >= LEVELS // 2).float().mean()) - 0.5) < 0.004
        assert abs(float((lane.long() % 2).float().mean()) - 0.5) < 0.004
