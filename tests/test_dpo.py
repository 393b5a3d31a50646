import math

import pytest
import torch
from IPython.core.error import UsageError

import nbllm
from nbllm import models
from nbllm.config import SFTConfig
from nbllm.data import load_records
from nbllm.train.attention import use_packed_attention
from nbllm.train.dpo import Preference, prepare_preferences, sequence_logps
from nbllm.train.trainer import Trainer

RECS = [
    {
        "prompt": f"Explain thing {i}",
        "chosen": f"Sure! Thing {i} is simple.",
        "rejected": f"Thing {i} denotes a stochastic operator.",
    }
    for i in range(16)
]


def dpo(method="dpo", **kw):
    opts = dict(
        model="tiny-llama",
        format="preference",
        method=method,
        max_steps=6,
        batch_size=4,
        lr=5e-3,
        progress="none",
        samples=0,
        val_fraction=0.25,
    )
    return nbllm.sft(RECS, **{**opts, **kw})


@pytest.mark.parametrize("method", ["dpo", "dpo-full"])
@pytest.mark.slow
def test_dpo_starts_at_log2_and_learns_the_preference(method):
    result = dpo(method)
    h = result.history
    assert abs(h.loss.iloc[0] - math.log(2)) < 1e-5  # policy == reference at step 0
    assert h.reward_margin.iloc[-1] > h.reward_margin.iloc[1] > 0 and h.pref_acc.iloc[-1] == 1.0
    assert h.loss.iloc[-1] < 0.6 and h.val_pref_acc.dropna().iloc[-1] >= 0.75


def test_lora_dpo_keeps_no_reference_copy():
    model, tok = models.tiny_llama()
    cfg = SFTConfig(model="tiny-llama", format="preference", method="dpo")
    trainer = Trainer(cfg, prepare_preferences(RECS, tok, cfg), model, tok, "cpu")
    assert isinstance(trainer.objective, Preference)
    assert trainer.objective.reference is None and hasattr(trainer.model, "disable_adapter")
    full_cfg = SFTConfig(model="tiny-llama", format="preference", method="dpo-full")
    model, tok = models.tiny_llama()
    full = Trainer(full_cfg, prepare_preferences(RECS, tok, full_cfg), model, tok, "cpu").objective
    assert full.reference is not None and not any(p.requires_grad for p in full.reference.parameters())


@pytest.mark.slow
def test_sequence_logps_equal_a_naive_pass_per_sequence():
    model, tok = models.tiny_llama()
    cfg = SFTConfig(model="tiny-llama", format="preference", method="dpo")
    examples = [e for pair in prepare_preferences(RECS[:3], tok, cfg).train for e in pair]
    use_packed_attention(model)
    with torch.no_grad():
        fast = sequence_logps(model, examples)
        for e, value in zip(examples, fast):
            logits = model(input_ids=torch.tensor([e.input_ids])).logits[0].log_softmax(-1)
            naive = sum(logits[i, t] for i, t in enumerate(e.labels) if t != -100)
            assert abs(float(naive) - float(value)) < 1e-4


def test_shipped_preferences():
    records = load_records("preferences")
    assert len(records) == 120 and all({"prompt", "chosen", "rejected"} <= set(r) for r in records)


@pytest.mark.parametrize(
    "line, message",
    [
        ("%sft --model tiny-llama --format preference --method dpo --data nochosen", "record 1 has no chosen"),
        ("%sft --model tiny-llama --format preference --method lora --data prefs", "--method dpo"),
        ("%sft --model tiny-llama --method dpo --data instructions", "--format preference"),
        ("%sft --model tiny-llama --format preference --method dpo --beta 0 --data prefs", "beta must be > 0"),
    ],
)
def test_bad_input(ip, line, message):
    ip.user_ns.update(nochosen=[{"prompt": "p", "rejected": "r"}], prefs=RECS)
    with pytest.raises(UsageError, match=message):
        ip.run_cell(line)


def test_history_keeps_columns_that_only_evaluation_rows_have():
    from nbllm.train.results import SFTResult

    rows = [
        {"step": 1, "epoch": 0.5, "loss": 0.69, "val_loss": float("nan"), "tokens": 10, "lr": 1e-4},
        {
            "step": 2,
            "epoch": 1.0,
            "loss": 0.60,
            "val_loss": 0.65,
            "tokens": 20,
            "lr": 1e-4,
            "val_reward_margin": 0.3,
            "val_pref_acc": 0.75,
        },
    ]
    hist = SFTResult(None, None, None, rows, {}, [], "chat").history
    assert list(hist.columns[-2:]) == ["val_reward_margin", "val_pref_acc"]
    assert hist.val_pref_acc.iloc[1] == 0.75 and hist.val_pref_acc.isna().iloc[0]
