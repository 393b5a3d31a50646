"""The model handle (nbllm/lm.py): one resolve() for every consumer, the template carried by
the model, scoring equal to the reference passes, and one clear line for a wrong model."""

import pytest
import torch
from IPython.core.error import UsageError

import nbllm
from nbllm import generation, models
from nbllm.errors import ConfigError, DataError, ModelError
from nbllm.evaluate import generative, mc, perplexity
from nbllm.lm import LM, resolve

RECORDS = [{"instruction": f"Add {a} and {b}.", "output": f"{a + b}"} for a in range(4) for b in range(3)]


@pytest.fixture(scope="module")
def tuned():
    return nbllm.sft(
        RECORDS,
        model="tiny-llama",
        format="alpaca",
        max_steps=2,
        batch_size=4,
        samples=0,
        progress="none",
        max_length=256,
    )


@pytest.mark.slow
def test_a_trained_result_carries_its_template(tuned):
    handle = resolve(tuned)
    assert isinstance(handle, LM) and handle.template == "alpaca" and handle.name == "tiny-llama"
    assert handle.model is tuned.model and resolve(handle) is handle
    lima = nbllm.sft(
        [{"messages": ["Hi", "Hello!"]}] * 4,
        model="tiny-llama",
        format="lima",
        max_steps=1,
        batch_size=2,
        samples=0,
        progress="none",
    )
    assert resolve(lima).template == "chat" and resolve("tiny-llama").template == "chat"


@pytest.mark.slow
def test_every_generating_consumer_uses_the_models_template(tuned, monkeypatch):
    seen = []
    real = generation.generate
    monkeypatch.setattr(generation, "generate", lambda *a, **kw: seen.append(kw["template"]) or real(*a, **kw))
    generative.evaluate(tuned, [{"question": "Add 1 and 2.", "answer": "3"}], max_new_tokens=2, progress=False)
    assert seen[-1] == "alpaca"
    generative.evaluate(
        tuned, [{"question": "Add 1 and 2.", "answer": "3"}], max_new_tokens=2, progress=False, template="none"
    )
    assert seen[-1] == "none"  # a named template still wins
    from nbllm.evaluate import arena

    from nbllm.testing import register_tiny_model

    register_tiny_model("tiny-other", seed=5)
    arena.battles(["Say hi."], [tuned, "tiny-other"], max_new_tokens=2)
    assert seen[-2:] == ["alpaca", "chat"]
    from nbllm.rag import _language_model

    assert _language_model(tuned)[2] == "alpaca"
    from nbllm.evaluate import synthetic

    synthetic.evaluate(tuned, "mqar", [2], n=1, shots=1, queries=1, progress=False)
    assert seen[-1] == "alpaca"  # trained with Alpaca: asked through it
    synthetic.evaluate("tiny-llama", "mqar", [2], n=1, shots=1, queries=1, progress=False)
    assert seen[-1] == "none"  # not trained here: the raw few-shot prompt, as the harness does
    synthetic.evaluate(tuned, "mqar", [2], n=1, shots=1, queries=1, progress=False, template="chat")
    assert seen[-1] == "chat"


@pytest.mark.slow
def test_loglikelihood_equals_one_full_pass_per_pair(tuned):
    handle = resolve(tuned)
    pairs = [("Question: 1 + 1?\nAnswer:", " 2"), ("Question: 1 + 1?\nAnswer:", " two"), ("The sky is", " blue")]
    got = handle.loglikelihood(pairs, batch_size=2)
    for (ctx, cont), value in zip(pairs, got):
        ctx_ids, (cont_ids,) = mc.encode(handle.tokenizer, ctx, [cont])
        assert value == pytest.approx(mc.naive_logliks(handle.model, ctx_ids, [cont_ids])[0], abs=1e-4)


@pytest.mark.slow
def test_rolling_loglikelihood_equals_perplexitys_windows(tuned):
    handle = resolve(tuned)
    text = "the quick brown fox jumps over the lazy dog " * 6
    (doc,) = handle.loglikelihood_rolling([text], window=64, stride=32)
    ids = handle.tokenizer(text).input_ids
    nll, scored, windows = perplexity.doc_nll(handle.model, ids, 64, 32)
    assert doc["nll_sum"] == pytest.approx(nll) and doc["tokens_scored"] == scored == len(ids) - 1
    assert doc["windows"] == windows > 1


@pytest.mark.slow
def test_batched_greedy_generation_equals_one_prompt_at_a_time(tuned):
    handle = resolve(tuned)
    prompts = ["Add 1 and 2.", "Add three and four, then say the sum twice.", "Hi"]
    one_by_one = [handle.generate(p, max_new_tokens=6)[0] for p in prompts]
    assert handle.generate(prompts, max_new_tokens=6, batch_size=3) == one_by_one


@pytest.mark.slow
def test_generate_is_seeded_and_leaves_the_mode_alone(tuned):
    handle = resolve(tuned)
    handle.model.train()
    a = handle.generate(["Add 1 and 2.", "Add 2 and 2."], max_new_tokens=4, temperature=0.9, seed=3)
    b = handle.generate(["Add 1 and 2.", "Add 2 and 2."], max_new_tokens=4, temperature=0.9, seed=3)
    assert a == b and len(a) == 2 and handle.model.training
    same = handle.generate(["Say something."] * 6, max_new_tokens=8, temperature=1.5, seed=3, batch_size=3)
    assert same[:3] != same[3:]  # the second batch draws its own samples, not a copy of the first's


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda h: h.generate([]), DataError, "no prompts"),
        (lambda h: h.generate("hi", template="fancy"), ConfigError, "template 'fancy' does not exist"),
        (lambda h: h.generate("x " * 5000, max_new_tokens=4), DataError, "exceeds the model's context"),
        (lambda h: h.loglikelihood([]), DataError, "no .context, continuation. pairs"),
        (lambda h: h.generate(["a", "b"], max_new_tokens=0), ConfigError, "max_new_tokens must be > 0"),
        (lambda h: h.generate(["a", "  "], template="none"), DataError, "the prompt is empty"),
    ],
)
def test_bad_requests_are_one_clear_error(tuned, call, error, message):
    with pytest.raises(error, match=message):
        call(resolve(tuned))


def test_an_encoder_or_a_classifier_is_refused():
    with pytest.raises(ModelError, match="'minilm' is an encoder"):
        resolve("minilm")
    clf = nbllm.sft(
        [{"text": f"spam {i}", "label": "a"} for i in range(4)]
        + [{"text": f"ham {i}", "label": "b"} for i in range(4)],
        model="tiny-llama",
        format="classify",
        method="head",
        max_steps=1,
        progress="none",
    )
    with pytest.raises(ModelError, match="is a classifier"):
        resolve(clf)
    with pytest.raises(ModelError, match="not a model result"):
        resolve(42)
    with pytest.raises(ModelError, match="not a causal language model"):
        LM(torch.nn.Linear(2, 2), models.byte_tokenizer(), "linear")


@pytest.mark.parametrize(
    "line",
    [
        "%eval gen --model minilm --data word-problems --limit 1",
        "%eval ppl --model minilm --data instructions --limit 1",
        "%eval mc --model minilm --limit 1",
        "%sft --model minilm --format alpaca --data instructions --max-steps 1 --progress none",
    ],
)
def test_the_magics_refuse_an_encoder_in_one_line(ip, line):
    with pytest.raises(UsageError, match="ModelError: 'minilm' is an encoder"):
        ip.run_cell(line)


@pytest.mark.slow
def test_one_mean_pooling_for_retrieval_the_triad_and_classifiers():
    from nbllm.evaluate import triad
    from nbllm.lm import encoder, mean_pool
    from nbllm.retrieval.embed import get_embedder
    from nbllm.text import sentences

    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(states, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]  # padding never counts
    texts = ["LoRA trains two small matrices.", "RAG retrieves chunks before it answers."]
    ours = encoder("minilm").encode(texts)
    torch.testing.assert_close(triad.minilm_embed(texts), ours)
    torch.testing.assert_close(torch.tensor(get_embedder("minilm").embed(texts)), ours, atol=1e-5, rtol=0)
    with pytest.raises(ModelError, match="not an encoder"):
        encoder("tiny-llama")
    from nbllm.retrieval import generate

    assert generate.sentences is triad.sentences is sentences  # one splitter for citations and the triad
    assert sentences("It works. 1. First point.\n2. Second point.") == [
        "It works.",
        "1. First point.",
        "2. Second point.",
    ]
