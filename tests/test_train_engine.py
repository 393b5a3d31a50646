"""One loop for every objective: each (objective, option) pair either takes an observable
effect (the LR curve, a checkpoint that resumes exactly, the autocast dtype, the loss
scaler, micro-batches) or is refused with one clear line."""

import math

import pytest
import torch
from IPython.core.error import UsageError

import nbllm
from nbllm.errors import ConfigError
from nbllm.train.trainer import Callback

LM = [{"instruction": f"Add {a} and {b}.", "output": f"{a + b}"} for a in range(5) for b in range(4)]
PREF = [
    {
        "prompt": f"Explain thing {i}",
        "chosen": f"Sure! Thing {i} is simple.",
        "rejected": f"Thing {i} denotes a stochastic operator.",
    }
    for i in range(16)
]
CLS = [{"text": f"win a free prize now, claim code {i}", "label": "spam"} for i in range(12)] + [
    {"text": f"see you at lunch {i}, ok?", "label": "ham"} for i in range(12)
]

OBJECTIVES = {  # name -> (records, format, a method that trains adapters, a method that trains all weights)
    "causal-lm": (LM, "alpaca", "lora", "full"),
    "preference": (PREF, "preference", "dpo", "dpo-full"),
    "classification": (CLS, "classify", "lora", "full"),
}


def train(objective, method=None, **kw):
    records, fmt, adapters, _ = OBJECTIVES[objective]
    opts = dict(
        model="tiny-llama",
        format=fmt,
        method=method or adapters,
        max_steps=4,
        batch_size=4,
        lr=1e-3,
        samples=0,
        progress="none",
        val_fraction=0.25,
        max_length=256,
    )
    return nbllm.sft(records, **{**opts, **kw})


def rows(result):
    return result.run.state.history if hasattr(result, "run") else result._history


def losses(result):
    return [r["loss"] for r in rows(result)]


@pytest.mark.slow
def test_a_classifier_keeps_a_constant_learning_rate_unless_told():
    assert [r["lr"] for r in rows(train("classification"))] == [1e-3] * 4
    assert [r["lr"] for r in rows(train("causal-lm"))][-1] < 1e-3  # the others decay linearly by default


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.slow
def test_schedule_and_warmup_shape_the_learning_rate(objective):
    const = [r["lr"] for r in rows(train(objective, schedule="constant", warmup_ratio=0.0))]
    assert const == [1e-3] * 4
    linear = [r["lr"] for r in rows(train(objective, schedule="linear", warmup_ratio=0.5))]
    assert linear == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3, 5e-4])  # 2 warm-up steps, then linear to 0
    cosine = [r["lr"] for r in rows(train(objective, schedule="cosine", warmup_ratio=0.0))]
    assert cosine == pytest.approx([1e-3 * 0.5 * (1 - math.cos(math.pi * (4 - s) / 4)) for s in range(4)])


class MicroBatches(Callback):
    """Counts the loss calls of the objective (one per micro-batch)."""

    def on_train_begin(self, trainer):
        self.calls, loss = [], trainer.objective.loss

        def counted(model, batch):
            self.calls.append(batch.n_units)
            return loss(model, batch)

        trainer.objective.loss = counted


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.slow
def test_grad_accumulation_splits_the_step_and_keeps_its_losses(objective):
    one = train(objective, method=OBJECTIVES[objective][3], batch_size=4)
    counter = MicroBatches()
    two = train(objective, method=OBJECTIVES[objective][3], batch_size=4, grad_accum=2, callbacks=[counter])
    assert len(counter.calls) == 8  # 4 steps of 2 micro-batches
    torch.testing.assert_close(torch.tensor(losses(two)), torch.tensor(losses(one)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.slow
def test_bf16_autocast_runs_and_fp16_scales_the_loss(objective):
    fp32 = train(objective, method=OBJECTIVES[objective][3])
    bf16 = train(objective, method=OBJECTIVES[objective][3], precision="bf16")
    assert losses(bf16) != losses(fp32)  # autocast did run in 16-bit
    torch.testing.assert_close(torch.tensor(losses(bf16)), torch.tensor(losses(fp32)), atol=0.05, rtol=0.05)

    class Scaler(Callback):
        def on_train_end(self, trainer):
            self.dtype, self.state = trainer.dtype, trainer.scaler.state_dict()

    seen = Scaler()
    train(objective, precision="fp16", callbacks=[seen])
    assert seen.dtype == torch.float16  # scale, unscale, step and update ran every step (or an inf step halved it):
    assert seen.state["_growth_tracker"] == 4 or seen.state["scale"] < 2.0**16


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("which", ["adapters", "all weights"])
@pytest.mark.slow
def test_save_and_resume_continue_exactly(tmp_path, objective, which):
    method = OBJECTIVES[objective][2 if which == "adapters" else 3]
    straight = train(objective, method=method, max_steps=6)
    first = train(
        objective, method=method, max_steps=6, save=str(tmp_path / "ck"), stop_when=lambda row: row["step"] == 3
    )
    assert (tmp_path / "ck" / "trainer_state.json").exists() and len(losses(first)) == 3
    resumed = train(objective, method=method, max_steps=6, resume=str(tmp_path / "ck"))
    torch.testing.assert_close(torch.tensor(losses(resumed)), torch.tensor(losses(straight)), atol=1e-6, rtol=0)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.slow
def test_eval_every_sets_the_validation_cadence(objective):
    result = train(objective, eval_every=2)
    assert [r["step"] for r in rows(result) if not math.isnan(r["val_loss"])] == [2, 4]


@pytest.mark.parametrize(
    "objective, option, value, message",
    [
        ("causal-lm", "beta", 0.2, "--beta does not apply to --format alpaca"),
        ("classification", "beta", 0.2, "--beta does not apply to --format classify"),
        ("preference", "train_on_prompt", True, "--train-on-prompt does not apply to --format preference"),
        ("classification", "train_on_prompt", True, "--train-on-prompt does not apply"),
        ("preference", "packing", False, "--no-packing does not apply"),
        ("classification", "packing", False, "--no-packing does not apply"),
        ("classification", "attention", "sdpa", "--attention does not apply"),
        ("preference", "compile", True, "--compile speeds up SFT runs"),
        ("classification", "compile", True, "--compile speeds up SFT runs"),
        ("causal-lm", "virtual_tokens", 4, "--virtual-tokens sets the soft prompt"),
    ],
)
def test_an_option_an_objective_cannot_honour_is_refused(objective, option, value, message):
    with pytest.raises(ConfigError, match=message):
        train(objective, **{option: value})


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_lora_options_with_a_method_that_trains_no_adapters_are_refused(objective):
    with pytest.raises(ConfigError, match="--lora-r sets up LoRA adapters"):
        train(objective, method=OBJECTIVES[objective][3], lora_r=4)


def test_an_option_that_does_not_exist_is_one_error():
    with pytest.raises(ConfigError, match="unknown SFTConfig field.s.: learning_rate"):
        train("causal-lm", learning_rate=0.1)


def test_the_magic_refuses_in_one_line(ip):
    ip.user_ns["cls_records"] = CLS
    with pytest.raises(UsageError, match="ConfigError: --beta does not apply to --format classify"):
        ip.run_cell("%sft --model tiny-llama --format classify --data cls_records --beta 0.3 --progress none")


# ---------------------------------------------------------------- nothing lost at --save


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: (d / "notes.txt").write_text("mine") and d / "notes.txt", "is an existing file"),
        (lambda d: (d / "f").write_text("x") and d / "f" / "ck", "lies under .* which is a file"),
        (
            lambda d: (d / "other").mkdir() or (d / "other" / "a.txt").write_text("x") and d / "other",
            "not an nbllm checkpoint",
        ),
        (lambda d: d / ("x" * 240), "pick a shorter name"),
    ],
)
def test_a_bad_save_destination_is_refused_before_training(tmp_path, make, message):
    dest = make(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=message):
        train("causal-lm", save=str(dest))
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # the user's files unchanged


@pytest.mark.slow
def test_a_save_that_fails_after_training_keeps_the_result(tmp_path, monkeypatch, capsys):
    def broken(trainer, directory):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("nbllm.train.checkpoint.save_checkpoint", broken)
    result = train("causal-lm", save=str(tmp_path / "ck"))
    assert len(result.history) == 4 and "failed (Permission denied)" in result.save_error
    assert "warning: the run finished but --save" in capsys.readouterr().out


@pytest.mark.slow
def test_leftovers_of_an_interrupted_save_are_cleared(tmp_path):
    (tmp_path / ".ck.tmp-dead").mkdir()
    (tmp_path / ".ck.old-dead").mkdir()
    train("causal-lm", save=str(tmp_path / "ck"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


class Seen(Callback):
    """Keeps the trainer, to look at what an option did."""

    def on_train_end(self, trainer):
        self.trainer = trainer


def seen(objective, **kw):
    cb = Seen()
    result = train(objective, callbacks=[cb], **kw)
    return result, cb.trainer


def lengths(trainer):
    items = trainer.data.train
    if trainer.objective.name == "classification":
        return [len(ids) for ids, _ in items]
    return [len(e) for item in items for e in (item if isinstance(item, tuple) else (item,))]


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.slow
def test_every_general_option_takes_effect(objective):
    base, t0 = seen(objective)
    assert t0.device == "cpu" and seen(objective, device="cpu")[1].device == "cpu"
    assert losses(seen(objective, seed=1)[0]) != losses(base)  # data order, init and dropout move with the seed
    assert [r["lr"] for r in rows(seen(objective, lr=3e-3, schedule="constant")[0])] == [3e-3] * 4
    assert seen(objective, weight_decay=0.1)[1].optimizer.param_groups[0]["weight_decay"] == 0.1
    assert losses(seen(objective, max_grad_norm=1e-9)[0])[1:] != losses(base)[1:]  # clipped to almost nothing
    _, two = seen(objective, batch_size=2)
    assert two.steps_per_epoch == math.ceil(len(two.data.train) / 2)
    _, epochs = seen(objective, max_steps=None, epochs=2)
    assert epochs.state.step == 2 * epochs.steps_per_epoch
    _, held_out = seen(objective, val_fraction=0.5)
    assert len(held_out.data.val) > len(t0.data.val)
    longest = max(lengths(t0))
    _, short = seen(objective, max_length=longest - 1)
    assert max(lengths(short)) == longest - 1  # the longest items were cut to --max-length
    checkpointed, _ = seen(objective, method=OBJECTIVES[objective][3], grad_checkpointing=True)
    plain, _ = seen(objective, method=OBJECTIVES[objective][3])
    torch.testing.assert_close(torch.tensor(losses(checkpointed)), torch.tensor(losses(plain)), atol=1e-5, rtol=0)
