import pytest
import torch
from IPython.core.error import UsageError

import nbllm
from nbllm.data import load_records
from nbllm.train.classify import length_grouped_batches

RECS = [{"text": f"win a free prize now, claim code {i}", "label": "spam"} for i in range(16)] + [
    {"text": f"see you at lunch {i}, ok?", "label": "ham"} for i in range(16)
]


def fit(model="tiny-llama", method="head", **kw):
    opts = dict(format="classify", method=method, epochs=3, batch_size=8, progress="none", val_fraction=0.25, lr=3e-3)
    return nbllm.sft(RECS, model=model, **{**opts, **kw})


@pytest.mark.parametrize("method", ["head", "last-block", "lora", "full"])
@pytest.mark.slow
def test_decoder_classifier_learns_and_predicts(method):
    result = fit(method=method, epochs=6)
    assert result.classes == ["ham", "spam"]
    h = result.history
    assert h.loss.iloc[-3:].mean() < h.loss.iloc[:3].mean()
    if method != "head":  # a random tiny model's frozen features are too weak for the head alone
        assert result.accuracy >= 0.75, h
        assert result.predict(["win a free prize now, claim code 99", "see you at lunch 7, ok?"]) == ["spam", "ham"]
    assert result.confusion.values.sum() == 8
    assert list(h.columns) == ["step", "epoch", "loss", "val_loss", "val_acc"] and h.val_acc.notna().sum() == 6
    trainable = result.summary()["trainable"]
    head = 2 * 64 + 2
    assert (trainable == head) if method == "head" else (trainable > head)
    stats = result.stats
    assert stats["trainable"] == trainable and stats["steps"] == len(h) and stats["n_val"] == 8
    assert result.accuracy * 8 == round(result.accuracy * 8)  # an exact fraction of the 8 examples


@pytest.mark.slow
def test_only_the_head_changes_with_head_method():
    from nbllm import models

    base, _ = models.tiny_llama()
    result = fit(method="head")
    for (name, p), (_, q) in zip(result.model.body.named_parameters(), base.model.named_parameters()):
        assert torch.equal(p, q), name


@pytest.mark.slow
def test_encoder_classifier_on_minilm_is_seeded():
    a = fit(model="minilm", method="head", epochs=2)
    b = fit(model="minilm", method="head", epochs=2)
    assert a.history.loss.tolist() == b.history.loss.tolist()
    assert a.model.pooling == "mean" and a.accuracy >= 0.75


def test_length_grouped_batches_cover_the_epoch_and_group_lengths():
    lengths = [5, 50, 6, 52, 7, 51, 8, 49] * 10
    batches = length_grouped_batches(lengths, 4, seed=0, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(80))
    spread = max(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread <= 3
    assert batches != length_grouped_batches(lengths, 4, seed=0, epoch=1)


def test_shipped_sms_set():
    records = load_records("sms")
    labels = [r["label"] for r in records]
    assert len(records) == 360 and labels.count("spam") == 160 and labels.count("ham") == 200


@pytest.mark.parametrize(
    "line, message",
    [
        ("%sft --model tiny-llama --format classify --data nolabel", "record 1 has no label"),
        ("%sft --model tiny-llama --format classify --data oneclass", "single class"),
        ("%sft --model tiny-llama --format classify --data empty", "data is empty"),
        ("%sft --model tiny-llama --method head --data instructions", "use it with --format classify"),
        ("%sft --model tiny-llama --format classify --method bitfit --data sms", "no bias parameters"),
        ("%sft --model tiny-llama --format classify --method lora --lora-targets nope --data sms", "nope match no"),
    ],
)
def test_bad_input(ip, line, message):
    ip.user_ns.update(
        nolabel=[{"text": "hi"}], oneclass=[{"text": "a", "label": "x"}, {"text": "b", "label": "x"}], empty=[]
    )
    with pytest.raises(UsageError, match=message):
        ip.run_cell(line)


@pytest.mark.slow
def test_magic_binds_a_classifier(ip):
    ip.user_ns["recs"] = RECS
    res = ip.run_cell(
        "%sft --model tiny-llama --format classify --method head --data recs --epochs 1 --progress none --out clf"
    ).result
    assert ip.user_ns["clf"] is res and "ClassifyResult(model='tiny-llama', method='head'" in repr(res)
    assert "confusion matrix" in res._repr_html_()
