import os
import signal

import pytest
import torch
from IPython.core.error import UsageError

import nbllm
from nbllm import models
from nbllm.config import SFTConfig
from nbllm.errors import ConfigError, DataError
from nbllm.tokenization import encode
from nbllm.train.attention import use_packed_attention
from nbllm.train.batches import best_rows, make_batch, packed_batch, segments_batch
from nbllm.train.checkpoint import save_checkpoint
from nbllm.train.methods import parameter_counts
from nbllm.train.sft import loss_sum, prepare_data, step_examples
from nbllm.train.trainer import Callback, Trainer

RECORDS = [{"instruction": f"Add {a} and {b}.", "input": "", "output": f"{a + b}"} for a in range(6) for b in range(4)]
FAST = dict(model="tiny-llama", batch_size=4, samples=0, progress="none", max_length=256)


def run(records=RECORDS, **kw):
    return nbllm.sft(records, **{**FAST, **kw})


# ---------------------------------------------------------------- packing


@pytest.mark.slow
def test_packed_rows_give_the_same_logits_as_each_example_alone():
    model, tok = models.tiny_llama()
    examples = [encode(tok, r, "alpaca") for r in RECORDS[:5]] + [encode(tok, "short text", "none")]
    batch = packed_batch(examples, tok.pad_token_id, capacity=10_000)  # everything in one row
    assert batch.input_ids.shape[0] == 1
    with torch.no_grad():
        packed = model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids
        ).logits[0]
        start = 0
        for e in examples:
            alone = model(input_ids=torch.tensor([e.input_ids])).logits[0]
            torch.testing.assert_close(packed[start : start + len(e)], alone, atol=1e-5, rtol=0)
            start += len(e)


@pytest.mark.slow
def test_segment_packing_gives_the_same_logits_as_each_example_alone():
    model, tok = models.tiny_llama()
    use_packed_attention(model)
    examples = [encode(tok, r, "alpaca") for r in RECORDS[:5]] + [encode(tok, "short text", "none")]
    batch = segments_batch(examples)
    assert batch.input_ids.shape == (1, sum(len(e) for e in examples)) and batch.attention_mask is None
    with torch.no_grad():
        packed = model(**batch.model_inputs()).logits[0]
        for e, start, end in zip(examples, batch.segments, batch.segments[1:]):
            alone = model(input_ids=torch.tensor([e.input_ids])).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_all_layouts_give_the_same_loss_and_packing_pads_less():
    model, tok = models.tiny_llama()
    use_packed_attention(model)
    examples = [
        encode(tok, {"instruction": "Repeat " + "x" * n, "output": "y" * n}, "alpaca")
        for n in (1, 30, 5, 60, 12, 3, 44, 9)
    ]
    layouts = {name: make_batch(examples, tok.pad_token_id, name) for name in ("segments", "rows", "padded")}
    assert len({b.n_loss_tokens for b in layouts.values()}) == 1
    assert len({b.n_real_tokens for b in layouts.values()}) == 1
    sizes = {name: b.input_ids.numel() for name, b in layouts.items()}
    assert sizes["segments"] == layouts["segments"].n_real_tokens < sizes["rows"] < sizes["padded"]
    with torch.no_grad():
        losses = {name: loss_sum(model, b) for name, b in layouts.items()}
    torch.testing.assert_close(losses["segments"], losses["padded"], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(losses["rows"], losses["padded"], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("head", ["plain", "lora-on-lm_head"])
@pytest.mark.slow
def test_loss_sum_gives_the_full_logits_loss_and_gradients(head, monkeypatch):
    """The fused head + cross-entropy (a plain head, tied to the embeddings) and the
    checkpointed chunks of a wrapped head both equal the loss of the model's own logits."""
    from peft import LoraConfig, get_peft_model

    from nbllm.train import linear_ce

    monkeypatch.setattr(linear_ce, "CHUNK_BYTES", 64 * 4 * 300)  # several chunks on the byte vocab
    model, tok = models.tiny_llama()
    if head != "plain":
        model = get_peft_model(model, LoraConfig(r=4, target_modules=["lm_head", "q_proj"], init_lora_weights=False))
    examples = [encode(tok, r, "alpaca", train_on_prompt=True) for r in RECORDS[:8]]
    batch = make_batch(examples, tok.pad_token_id, "padded")
    keep = batch.labels != -100
    assert keep.sum() > 2 * linear_ce.chunk_rows(model.get_input_embeddings().num_embeddings)
    trained = [p for p in model.parameters() if p.requires_grad]

    def loss_and_grads(fn):
        model.zero_grad()
        loss = fn()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in trained]

    ours = loss_and_grads(lambda: loss_sum(model, batch))
    logits = lambda: model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits  # noqa: E731
    theirs = loss_and_grads(
        lambda: torch.nn.functional.cross_entropy(logits()[keep], batch.labels[keep], reduction="sum")
    )
    torch.testing.assert_close(ours[0], theirs[0], rtol=1e-6, atol=1e-4)
    for a, b in zip(ours[1], theirs[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_trained_model_saves_and_reloads_as_a_plain_model(tmp_path):
    result = run(max_steps=2, method="full")
    result.model.save_pretrained(tmp_path / "m")
    result.tokenizer.save_pretrained(tmp_path / "m")
    assert "nbllm" not in (tmp_path / "m" / "config.json").read_text()
    reloaded, _ = models.load_model(str(tmp_path / "m"))
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, result.model(ids).logits, atol=1e-5, rtol=0)


def test_best_rows_balances_and_keeps_every_example_once():
    lengths = [99, 103, 55, 83, 115, 112, 101, 88]
    rows = best_rows(lengths)
    assert sorted(i for row in rows for i in row) == list(range(8))
    width = max(sum(lengths[i] for i in row) for row in rows)
    assert len(rows) * width < 0.9 * len(lengths) * max(lengths)  # less padding than one row per example


def test_step_examples_cover_each_epoch_once():
    seen = [i for step in range(3) for i in step_examples(10, 4, seed=0, step=step)]
    assert sorted(seen) == list(range(10))
    assert step_examples(10, 4, 0, 3) != step_examples(10, 4, 1, 3)


# ---------------------------------------------------------------- training


@pytest.mark.slow
def test_same_seed_same_losses_and_loss_goes_down():
    a = run(max_steps=12, lr=3e-3, method="full")
    b = run(max_steps=12, lr=3e-3, method="full")
    assert a.history.loss.tolist() == b.history.loss.tolist()
    assert a.history.loss.iloc[-3:].mean() < 0.8 * a.history.loss.iloc[:3].mean()
    assert list(a.history.columns) == ["step", "epoch", "loss", "val_loss", "tokens", "lr"]
    c = run(max_steps=3, lr=3e-3, method="full", seed=1)
    assert c.history.loss.tolist() != a.history.loss.tolist()[:3]


@pytest.mark.parametrize("method", ["lora", "full", "last-block"])
@pytest.mark.slow
def test_resume_continues_exactly(tmp_path, method):
    straight = run(max_steps=10, method=method, lr=1e-3)
    first = run(max_steps=10, method=method, lr=1e-3, save=str(tmp_path / "ck"), stop_when=lambda r: r["step"] == 5)
    assert first.stats["steps"] == 5 and first.stats["stopped"] == "stop_when"
    resumed = run(max_steps=10, method=method, lr=1e-3, resume=str(tmp_path / "ck"))
    assert len(resumed.history) == 10
    torch.testing.assert_close(
        torch.tensor(resumed.history.loss.tolist()), torch.tensor(straight.history.loss.tolist()), atol=1e-6, rtol=0
    )


def test_methods_choose_the_right_parameters():
    model, tok = models.tiny_llama()
    full = Trainer(SFTConfig(model="tiny-llama", method="full"), _prepared(tok), model, tok, "cpu")
    assert full.trainable == full.total_params
    model, tok = models.tiny_llama()
    last = Trainer(SFTConfig(model="tiny-llama", method="last-block"), _prepared(tok), model, tok, "cpu")
    names = {n for n, p in last.model.named_parameters() if p.requires_grad}
    assert any(n.startswith("model.layers.1.") for n in names) and "model.norm.weight" in names
    assert not any(n.startswith("model.layers.0.") for n in names)
    model, tok = models.tiny_llama()
    lora = Trainer(SFTConfig(model="tiny-llama", method="lora"), _prepared(tok), model, tok, "cpu")
    assert 0 < lora.trainable < lora.total_params / 10
    assert parameter_counts(lora.model)[1] == lora.total_params


def test_lora_starts_equal_to_the_base_model():
    base, tok = models.tiny_llama()
    ids = torch.tensor([encode(tok, "hello there", "none").input_ids])
    with torch.no_grad():
        before = base(ids).logits.clone()
    trainer = Trainer(SFTConfig(model="tiny-llama", method="lora"), _prepared(tok), base, tok, "cpu")
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(trainer.model(input_ids=ids).logits, before, atol=0, rtol=0)


@pytest.mark.slow
def test_grad_accumulation_matches_one_big_batch():
    a = run(max_steps=3, method="full", lr=1e-3, batch_size=4)
    b = run(max_steps=3, method="full", lr=1e-3, batch_size=4, grad_accum=2)
    torch.testing.assert_close(
        torch.tensor(a.history.loss.tolist()), torch.tensor(b.history.loss.tolist()), atol=1e-5, rtol=0
    )


@pytest.mark.slow
def test_chat_lima_and_text_formats_train():
    lima = [{"messages": ["Hi, who are you?", "A small model.", "Nice.", "Thanks!"]}] * 6
    chat = [{"messages": [{"role": "user", "content": "Ping"}, {"role": "assistant", "content": "Pong"}]}] * 6
    text = [{"text": "the quick brown fox jumps over the lazy dog"}] * 6
    for records, fmt in ((lima, "lima"), (chat, "chat"), (text, "text")):
        result = run(records, format=fmt, max_steps=2)
        assert result.stats["steps"] == 2 and result.history.loss.notna().all()


@pytest.mark.slow
def test_generate_and_samples():
    result = nbllm.sft(RECORDS, model="tiny-llama", max_steps=2, batch_size=4, samples=1, progress="none")
    assert len(result.samples) == 1 and set(result.samples.columns) == {"prompt", "before", "after"}
    assert isinstance(result.generate("Add 1 and 2.", max_new_tokens=5), str)
    assert "trainable" in repr(result) and "<svg" in result._repr_html_()


@pytest.mark.slow
def test_interrupt_keeps_the_last_completed_step():
    model, tok = models.tiny_llama()
    trainer = Trainer(SFTConfig(model="tiny-llama", method="full", max_steps=20), _prepared(tok), model, tok, "cpu")

    class InterruptAtThree(Callback):
        def on_step_end(self, tr, row):
            if row["step"] == 3:
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the tests run as a background job
    state = trainer.run([InterruptAtThree()])
    assert state.step == 3 and state.stopped == "interrupted"
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.slow
def test_save_replaces_a_checkpoint_atomically(tmp_path):
    model, tok = models.tiny_llama()
    trainer = Trainer(SFTConfig(model="tiny-llama", method="full", max_steps=2), _prepared(tok), model, tok, "cpu")
    trainer.run()
    save_checkpoint(trainer, tmp_path / "ck")
    save_checkpoint(trainer, tmp_path / "ck")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    assert {"config.json", "trainer_state.json", "optimizer.pt", "rng.pt", "model"} <= {
        p.name for p in (tmp_path / "ck").iterdir()
    }


def _prepared(tok):
    return prepare_data(RECORDS, tok, SFTConfig(model="tiny-llama"))


# ---------------------------------------------------------------- the magic and bad input


@pytest.mark.slow
def test_sft_magic_inline_jsonl(ip):
    cell = "\n".join('{"instruction": "Say %d", "output": "%d"}' % (i, i) for i in range(8))
    res = ip.run_cell(
        f"%%sft --model tiny-llama --max-steps 2 --batch-size 4 --samples 0 --progress none --out tuned\n{cell}"
    ).result
    assert ip.user_ns["tuned"] is res and res.stats["steps"] == 2
    ip.user_ns["recs"] = RECORDS
    res2 = ip.run_cell("%sft --model tuned --data recs --max-steps 1 --samples 0 --progress none").result
    assert res2.stats["steps"] == 1
    res3 = ip.run_cell(
        "%sft --model tiny-llama --data instructions --max-steps 1 --batch-size 2 "
        "--samples 0 --progress text --method full"
    ).result
    assert res3.stats["n_train"] > 250


@pytest.mark.slow
def test_schedule_flags_shape_the_learning_rate(ip):
    """Warm-up over the first 2 of 10 steps, then linear decay, half a cosine, or constant."""
    import math

    ip.user_ns["recs"] = RECORDS
    run_with = (
        "%sft --model tiny-llama --data recs --max-steps 10 --lr 0.01 --warmup-ratio 0.2 --samples 0 "
        "--progress none --weight-decay 0.1 "
    )
    lrs = {
        name: ip.run_cell(run_with + f"--schedule {name}").result.history.lr.tolist()
        for name in ("linear", "cosine", "constant")
    }
    warm = [0.01 / 3, 0.02 / 3]  # (step + 1) / (warmup + 1) of the peak
    left = [(10 - step) / 8 for step in range(2, 10)]  # 1 when warm-up ends, 1/8 at the last step
    assert lrs["linear"] == pytest.approx(warm + [0.01 * x for x in left])
    assert lrs["cosine"] == pytest.approx(warm + [0.01 * 0.5 * (1 - math.cos(math.pi * x)) for x in left])
    assert lrs["constant"] == pytest.approx(warm + [0.01] * 8)
    tuned = ip.run_cell(run_with + "--schedule cosine --method full").result
    assert tuned.config.weight_decay == 0.1 and tuned.config.schedule == "cosine"


@pytest.mark.parametrize(
    "cell, message",
    [
        ("%%sft --model tiny-llama --format nope\n{}", "invalid choice"),
        ('%%sft --model tiny-llama\n{"instruction": "x"}', "record 1 has no output"),
        ('%%sft --model tiny-llama --format chat\n{"text": "x"}', "no messages"),
        ("%%sft --model tiny-llama\n\n", "no data"),
        ("%%sft --model tiny-llama", "Did you mean the line magic %sft"),
        ("%sft --model tiny-llama", "no data"),
        ("%sft --model tiny-llama --data missing.jsonl", "not found"),
        ("%sft --model tiny-llama --data empty_recs", "data is empty"),
        ('%%sft --model tiny-llama --lr 0\n{"instruction": "x", "output": "y"}', "lr must be > 0"),
        ("%sft --model tiny-llama --lr -1 --data recs", "lr must be > 0"),
        ("%sft --model no-such-model --data recs", "unknown model"),
        ("%sft --model tiny-llama --max-length 20 --data recs", "longer than --max-length 20"),
        ("%sft --model tiny-llama --resume /no/such/ckpt --data recs", "not an nbllm checkpoint"),
        ("%sft --model tiny-llama --method bitfit --data recs", "no bias parameters"),
        ("%sft --model tiny-llama --lora-targets q_prj --data recs", "q_prj match no module"),
        ('%%sft --model tiny-llama --data recs\n{"instruction": "x", "output": "y"}', "not both"),
        ('%%sft --model tiny-llama\n{"instruction": "x", "output": "y"', "line 1 is not valid JSON"),
        ("%sft --model tiny-llama --grad-accum 9 --batch-size 2 --data recs", "grad_accum=9"),
        ("%sft --model tiny-llama --schedule steep --data recs", "invalid choice"),
        ("%sft --model tiny-llama --warmup-ratio 1.5 --data recs", r"warmup_ratio must be in \[0, 1\)"),
        ("%sft --model tiny-llama --weight-decay -0.1 --data recs", "weight_decay must be >= 0"),
    ],
)
def test_bad_input_is_one_usage_error(ip, cell, message):
    ip.user_ns["recs"] = RECORDS
    ip.user_ns["empty_recs"] = []
    with pytest.raises(UsageError, match=message):
        ip.run_cell(cell)


@pytest.mark.slow
def test_resume_with_another_method_is_refused(ip, tmp_path):
    ip.user_ns["recs"] = RECORDS
    ip.run_cell(f"%sft --model tiny-llama --data recs --max-steps 1 --samples 0 --progress none --save {tmp_path}/ck")
    with pytest.raises(UsageError, match="trained with --method lora, not full"):
        ip.run_cell(f"%sft --model tiny-llama --data recs --method full --resume {tmp_path}/ck")
    other = [{"instruction": "Other", "output": "data"}] * 10
    ip.user_ns["other"] = other
    with pytest.raises(UsageError, match="data differs"):
        ip.run_cell(f"%sft --data other --resume {tmp_path}/ck --samples 0 --progress none")


def test_config_round_trips_to_json():
    cfg = SFTConfig(model="tiny-llama", method="full", lr=1e-3)
    assert SFTConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="unknown SFTConfig field"):
        SFTConfig.from_dict({"nope": 1})
    with pytest.raises(DataError):
        prepare_data([], models.byte_tokenizer(), cfg)


@pytest.mark.slow
def test_gradient_checkpointing_gives_the_same_losses():
    a = run(max_steps=3, method="full", lr=1e-3)
    b = run(max_steps=3, method="full", lr=1e-3, grad_checkpointing=True)
    torch.testing.assert_close(
        torch.tensor(a.history.loss.tolist()), torch.tensor(b.history.loss.tolist()), atol=1e-5, rtol=0
    )


@pytest.mark.slow
def test_widget_monitor_updates_and_stop_button():
    from nbllm.train.callbacks import TextProgress
    from nbllm.widgets.training import WidgetMonitor, make_monitor

    model, tok = models.tiny_llama()
    trainer = Trainer(SFTConfig(model="tiny-llama", method="full", max_steps=3), _prepared(tok), model, tok, "cpu")
    monitor = WidgetMonitor("test run")
    state = trainer.run([monitor])
    assert monitor.bar.value == 3 and "<svg" in monitor.plot.value and "tokens/s" in monitor.stats.value
    assert monitor.button.description == "Done"
    model, tok = models.tiny_llama()
    trainer = Trainer(SFTConfig(model="tiny-llama", method="full", max_steps=5), _prepared(tok), model, tok, "cpu")
    monitor = WidgetMonitor("stopped run")
    monitor.button.click()  # what a user's click does
    state = trainer.run([monitor])
    assert state.step == 1 and state.stopped == "stop-button" and monitor.button.description == "Stopped"
    assert isinstance(make_monitor("x", "text"), TextProgress) and make_monitor("x", "none") is None


@pytest.mark.slow
def test_text_progress_and_truncation_notice(capsys):
    long = [{"instruction": "Echo " + "word " * 80, "output": "ok"}] + RECORDS
    result = nbllm.sft(
        long,
        model="tiny-llama",
        max_steps=2,
        batch_size=4,
        samples=0,
        progress="text",
        max_length=200,
        val_fraction=0.2,
    )
    out = capsys.readouterr().out
    assert "step 2/2" in out and "loss" in out
    assert result.stats["truncated"] == 1 and result.stats["dropped"] == 1
    assert "1 example(s) longer than --max-length 200" in out


@pytest.mark.slow
def test_prompt_tuning_trains_only_the_soft_prompt_and_resumes(tmp_path):
    result = run(max_steps=6, method="prompt-tuning", virtual_tokens=8, lr=0.05)
    assert result.stats["trainable"] == 8 * 64  # 8 virtual tokens x hidden size
    h = result.history.loss
    assert h.iloc[-2:].mean() < h.iloc[:2].mean()
    assert isinstance(result.generate("Add 1 and 2.", max_new_tokens=4), str)
    straight = run(max_steps=4, method="prompt-tuning", virtual_tokens=8, lr=0.05)
    run(
        max_steps=4,
        method="prompt-tuning",
        virtual_tokens=8,
        lr=0.05,
        save=str(tmp_path / "pt"),
        stop_when=lambda r: r["step"] == 2,
    )
    resumed = run(max_steps=4, method="prompt-tuning", virtual_tokens=8, lr=0.05, resume=str(tmp_path / "pt"))
    torch.testing.assert_close(
        torch.tensor(resumed.history.loss.tolist()), torch.tensor(straight.history.loss.tolist()), atol=1e-6, rtol=0
    )


# ---------------------------------------------------------------- 16-bit (the CUDA code path, run on the CPU)


@pytest.mark.slow
def test_bf16_autocast_trains_close_to_fp32():
    fp32 = run(max_steps=6, lr=3e-3, method="full")
    half = run(max_steps=6, lr=3e-3, method="full", precision="bf16")
    torch.testing.assert_close(
        torch.tensor(half.history.loss.tolist()), torch.tensor(fp32.history.loss.tolist()), atol=0.05, rtol=0.02
    )
    assert half.history.loss.tolist() != fp32.history.loss.tolist()  # autocast did run in 16-bit


@pytest.mark.slow
def test_fp16_scales_the_loss_and_resumes_with_the_scaler_state(tmp_path):
    model, tok = models.tiny_llama()
    trainer = Trainer(
        SFTConfig(model="tiny-llama", method="full", precision="fp16", max_steps=3), _prepared(tok), model, tok, "cpu"
    )
    assert trainer.scaler is not None and trainer.scaler.is_enabled()
    for _ in range(3):
        trainer.train_step()
    state = trainer.scaler.state_dict()  # scale, unscale, step and update ran each step
    assert state["scale"] * 2 ** state["_growth_tracker"] == 2.0**16 * 2**3 or state["scale"] < 2.0**16
    straight = run(max_steps=8, method="lora", lr=1e-3, precision="fp16")
    run(
        max_steps=8,
        method="lora",
        lr=1e-3,
        precision="fp16",
        save=str(tmp_path / "ck"),
        stop_when=lambda r: r["step"] == 4,
    )
    assert (tmp_path / "ck" / "scaler.pt").exists()
    resumed = run(max_steps=8, method="lora", lr=1e-3, precision="fp16", resume=str(tmp_path / "ck"))
    assert resumed.history.loss.tolist() == straight.history.loss.tolist()
