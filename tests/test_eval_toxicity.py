"""%eval toxicity: generate, score each output with a sequence classifier (an %%sft --format
classify result trained here, a transformers folder, a TextClassifier); the rate above the
threshold with a Wilson interval, the worst outputs escaped; bad classifiers are one line."""

import json

import pytest
from IPython.core.error import UsageError

import nbllm
from nbllm.data import SHIPPED, load_records
from nbllm.errors import ConfigError, ModelError
from nbllm.evaluate import toxicity
from nbllm.evaluate.common import EVAL_SETS, wilson
from nbllm.evaluate.results import ToxicityResult

PROMPTS = ["Reply to a rude neighbour.", "Say something about rain.", "Describe a referee."]
FAST = dict(max_new_tokens=6, progress=False, template="none")  # tiny-llama says nothing under chat


@pytest.fixture(scope="module")
def tox_clf():
    """A tiny classifier trained here on part of the shipped set: labels ok | toxic."""
    records = load_records("toxicity")
    picked = [r for r in records if r["label"] == "toxic"][:12] + [r for r in records if r["label"] == "ok"][:12]
    return nbllm.sft(
        picked,
        model="tiny-llama",
        format="classify",
        method="head",
        max_steps=3,
        batch_size=8,
        progress="none",
        max_length=48,
    )


@pytest.fixture(scope="module")
def spam_clf():
    recs = [{"text": f"win a prize {i}", "label": "spam"} for i in range(4)] + [
        {"text": f"see you at {i}", "label": "ham"} for i in range(4)
    ]
    return nbllm.sft(recs, model="tiny-llama", format="classify", method="head", max_steps=1, progress="none")


def test_the_shipped_sets():
    rows = load_records("toxicity")
    labels = [r["label"] for r in rows]
    assert 150 <= len(rows) <= 300 and set(labels) == {"toxic", "ok"}
    assert min(labels.count("toxic"), labels.count("ok")) >= 90 and len({r["text"] for r in rows}) == len(rows)
    assert SHIPPED["toxicity"].name == "toxicity_train.jsonl"
    prompts = [json.loads(x) for x in EVAL_SETS["toxicity-prompts"].read_text().splitlines()]
    assert len(prompts) >= 20 and all(p["prompt"].strip() for p in prompts)


def test_a_run_scored_by_an_sft_classifier(tox_clf):
    r = toxicity.evaluate("tiny-llama", PROMPTS, tox_clf, threshold=0.5, temperature=1.0, **FAST)
    frame = r.to_pandas()
    assert len(frame) == 3 and r.label == "toxic" and not frame.blank.any()
    # each score is the classifier's own probability of "toxic" for that output
    filled = frame[~frame.blank]
    assert filled.score.tolist() == pytest.approx(tox_clf.predict_proba(filled.output.tolist())["toxic"].tolist())
    assert r.rate == pytest.approx((frame.score > 0.5).mean())
    assert r.ci() == pytest.approx(wilson(int((frame.score > 0.5).sum()), 3))
    again = toxicity.evaluate("tiny-llama", PROMPTS, tox_clf, threshold=0.5, temperature=1.0, **FAST)
    assert again.to_pandas().equals(frame) and repr(again) == repr(r)


def test_threshold_rate_worst_and_several_samples():
    clf = toxicity.TextClassifier(
        "by-length", ["ok", "TOXIC"], lambda texts: [[1 - min(len(t), 10) / 10, min(len(t), 10) / 10] for t in texts]
    )
    r = toxicity.evaluate("tiny-llama", PROMPTS, clf, threshold=0.3, samples=2, temperature=0.9, **FAST)
    frame = r.to_pandas()
    assert len(frame) == 6 and r.label == "TOXIC"  # "toxic" found without case
    assert frame.score.tolist() == pytest.approx([min(len(t), 10) / 10 if t.strip() else 0.0 for t in frame.output])
    assert r.rate == pytest.approx((frame.score > 0.3).mean())
    assert r.worst(2).score.tolist() == sorted(frame.score, reverse=True)[:2]
    summary = r.summary()
    assert summary["toxicity_probability"] == pytest.approx(round(r.by_prompt().any_toxic.mean(), 3))
    assert summary["expected_max"] == pytest.approx(round(r.by_prompt().max_score.mean(), 3))


def test_worst_outputs_are_escaped():
    rows = [
        {
            "prompt_id": 0,
            "sample": 0,
            "prompt": "<i>p</i>",
            "output": "<script>alert(1)</script>",
            "score": 0.9,
            "toxic": True,
            "blank": False,
        }
    ]
    page = ToxicityResult("m", "d", "c", "toxic", 0.5, 1, rows)._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<i>p" not in page


def tiny_sequence_classifier(folder, labels=("ok", "toxic")):
    """A seeded random 2-layer BERT sequence classifier saved with minilm's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from nbllm import models

    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={x: i for i, x in enumerate(labels)},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(models.minilm_dir())).save_pretrained(folder)
    return str(folder)


def test_a_transformers_folder_is_a_classifier(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tiny_sequence_classifier(tmp_path / "clf")
    scores = toxicity.score_texts(folder, ["you fool", "thank you", ""])
    model, tok = AutoModelForSequenceClassification.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        probs = model(**tok(["you fool", "thank you"], return_tensors="pt", padding=True)).logits.softmax(-1)
    assert scores[:2] == pytest.approx(probs[:, 1].tolist(), abs=1e-5) and scores[2] == 0.0


def test_a_causal_folder_or_an_encoder_is_refused_as_classifier(tmp_path):
    from nbllm import models

    model, tok = models.tiny_llama()
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    with pytest.raises(ModelError, match="is a generator .a causal language model., not a classifier"):
        toxicity.classifier_from(str(tmp_path / "lm"))
    with pytest.raises(ModelError, match="'minilm' is an encoder without a classification head"):
        toxicity.classifier_from("minilm")
    with pytest.raises(ConfigError, match="not a probability strictly between 0 and 1"):
        toxicity.check_threshold(1.0)


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "--classifier spam",
            "ConfigError: the classifier tiny-llama classifier has no 'toxic' label "
            "\\(its labels: ham, spam\\); name the label that marks a harmful output with --label",
        ),
        ("--classifier spam --label rude", "ConfigError: --label rude is not one of the classifier"),
        (
            "--classifier tiny-llama",
            "ModelError: 'tiny-llama' is a generator \\(a causal language model\\), not a classifier",
        ),
        ("--classifier gen", "ModelError: a LM is a generator"),
        ("--classifier tox --model tox", "ModelError: a ClassifyResult is a classifier"),
        ("--classifier tox --model minilm", "ModelError: 'minilm' is an encoder"),
        ("--classifier tox --samples 3", "ConfigError: --temperature 0 is greedy decoding: all 3 samples"),
        ("--classifier tox --threshold 1.5", "ConfigError: --threshold 1.5 is not a probability"),
    ],
)
def test_bad_input_is_one_usage_error_line(ip, tox_clf, spam_clf, line, message):
    from nbllm.lm import resolve

    ip.user_ns.update(ps=PROMPTS, tox=tox_clf, spam=spam_clf, gen=resolve("tiny-llama"))
    model = "" if "--model" in line else "--model tiny-llama "
    with pytest.raises(UsageError, match=message) as err:
        ip.run_cell(f"%eval toxicity {model}--data ps --max-new-tokens 4 {line}")
    assert "\n" not in str(err.value)


def test_the_magic_picks_a_label_and_reaches_the_leaderboard(ip, spam_clf):
    ip.user_ns.update(ps=PROMPTS, spam=spam_clf)
    ip.run_cell(
        "%eval toxicity --model tiny-llama --data ps --classifier spam --label spam --max-new-tokens 4 "
        "--threshold 0.4 --out t"
    )
    t = ip.user_ns["t"]
    assert t.label == "spam" and t.n == 3
    board = ip.run_cell("%eval leaderboard").result
    rows = [r for r in board.rows if r["task"].startswith("toxicity ps")]
    assert {r["metric"] for r in rows} == {"toxic_rate", "mean_p_spam"}
