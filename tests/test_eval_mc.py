"""%eval mc: cached-prefix log-likelihoods equal the naive loop; acc, acc_norm, details, explain."""

import pytest
from IPython.core.error import UsageError

from nbllm import models

from nbllm.errors import DataError, OfflineError
from nbllm.evaluate import mc
from nbllm.evaluate.common import resolve_model
from nbllm.testing import register_tiny_model

QUESTIONS = [
    {"question": "What is two plus two?", "choices": ["four apples", "five", "twenty two things", "0"], "answer": 0},
    {
        "question": "Which colour is a clear sky?",
        "choices": ["blue on a clear day", "green", "red", "grass"],
        "answer": 0,
    },
    {"question": "Pick the long one.", "choices": ["a b", "c", "d e f g h i", "j"], "answer": 2},
    {"question": "Name a prime.", "choices": ["seven", "eight", "nine", "ten and more words"], "answer": 0},
]


@pytest.fixture(scope="module")
def tiny():
    register_tiny_model("tiny-eval", seed=1)
    return resolve_model("tiny-eval")


@pytest.mark.parametrize("shots, template", [(0, "qa"), (2, "qa"), (1, "letters"), (0, "plain")])
@pytest.mark.slow
def test_cached_prefix_equals_naive_per_choice(tiny, shots, template):
    lm, tok, _ = tiny
    records = mc.load_mc(QUESTIONS)
    for rec in records:
        prompt, conts = mc.build_prompt(rec, records, shots, template, seed=0)
        ctx, cont_ids = mc.encode(tok, prompt, conts)
        assert len({len(c) for c in cont_ids}) > 1 or template == "letters"  # multi-token, unequal lengths
        cached, naive = mc.cached_logliks(lm, ctx, cont_ids), mc.naive_logliks(lm, ctx, cont_ids)
        assert cached == pytest.approx(naive, abs=1e-4)


def test_scores_follow_from_the_details(tiny):
    res = mc.evaluate("tiny-eval", QUESTIONS, progress=False)
    d = res.details
    assert list(d.columns) == [
        "question_id",
        "choice",
        "text",
        "loglik",
        "n_tokens",
        "length",
        "loglik_norm",
        "chosen",
        "chosen_norm",
        "correct",
    ]
    assert len(d) == 16 and d.groupby("question_id").chosen.sum().eq(1).all()
    assert (d.loglik_norm == d.loglik / d.text.str.len()).all()  # lm-eval's acc_norm: per character
    acc = d[d.chosen].correct.mean()
    acc_norm = d[d.chosen_norm].correct.mean()
    assert res.score == {"acc": pytest.approx(acc), "acc_norm": pytest.approx(acc_norm)}
    flips = d[d.chosen != d.chosen_norm].question_id.unique()
    assert sorted(res.explain().question_id) == sorted(flips)
    assert set(res.explain().right) <= {"acc", "acc_norm", "neither"}
    assert "acc_norm" in res._repr_html_() and repr(res).startswith("MCResult(model='tiny-eval'")


@pytest.mark.slow
def test_naive_method_gives_the_same_result(tiny):
    fast = mc.evaluate("tiny-eval", QUESTIONS, shots=1, progress=False).details
    slow = mc.evaluate("tiny-eval", QUESTIONS, shots=1, method="naive", progress=False).details
    assert fast.loglik.tolist() == pytest.approx(slow.loglik.tolist(), abs=1e-4)


def test_shipped_quiz_is_well_formed():
    records = mc.load_mc("llm-quiz")
    assert len(records) == 40 and all(len(r["choices"]) == 4 for r in records)
    assert sum(len(c.split()) > 1 for r in records for c in r["choices"]) > 100  # multi-token answers
    assert len({r["answer"] for r in records}) == 4  # the gold position varies


def test_hub_mappings_on_records_shaped_like_each_dataset():
    assert mc.from_mmlu({"question": "Q?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 2}) == {
        "question": "Q?",
        "choices": ["a", "b", "c", "d"],
        "answer": 2,
        "subject": "anatomy",
    }
    hs = mc.from_hellaswag(
        {
            "activity_label": "Baking",
            "ctx_a": "A man mixes flour.",
            "ctx_b": "he",
            "ctx": "A man mixes flour. he",
            "endings": ["pours milk [title] in.", "sleeps", "x", "y"],
            "label": "0",
        }
    )
    assert hs == {
        "question": "Baking: A man mixes flour. He",
        "choices": ["pours milk. in.", "sleeps", "x", "y"],
        "answer": 0,
    }
    tq = mc.from_truthfulqa_mc1(
        {"question": "Do bats see?", "mc1_targets": {"choices": ["No", "Yes, they do"], "labels": [0, 1]}}
    )
    assert tq["answer"] == 1 and tq["choices"] == ["No", "Yes, they do"]
    wg = mc.from_winogrande(
        {
            "sentence": "The cup fell off the table because _ was slippery.",
            "option1": "the cup",
            "option2": "the table",
            "answer": "2",
        }
    )
    # partial evaluation, as lm-evaluation-harness: option in the blank is the context, the stripped rest is
    # the continuation shared by both options
    assert wg == {
        "question": "The cup fell off the table because _ was slippery.",
        "choices": ["the cup", "the table"],
        "contexts": ["The cup fell off the table because the cup", "The cup fell off the table because the table"],
        "continuation": "was slippery.",
        "answer": 1,
    }
    arc = mc.from_arc(
        {
            "question": "Which is a gas?",
            "choices": {"text": ["ice", "steam", "rock"], "label": ["A", "B", "C"]},
            "answerKey": "B",
        }
    )
    assert arc["answer"] == 1 and arc["choices"] == ["ice", "steam", "rock"]
    for mapped in (hs, tq, wg, arc):
        mc.check_record(mapped, 1)  # every mapping lands in the schema


def test_hub_benchmark_offline_is_an_offline_error(monkeypatch):
    import socket

    def no_network(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(OfflineError, match="cannot be reached"):
        mc.load_mc("mmlu")
    with pytest.raises(OfflineError, match="hellaswag"):
        mc.load_mc("Rowan/hellaswag")


def test_hub_load_failure_is_an_offline_error(monkeypatch):
    import datasets

    monkeypatch.setattr(models, "hub_reachable", lambda: True)

    def fail(*a, **k):
        raise ConnectionError("Couldn't reach 'cais/mmlu' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    with pytest.raises(OfflineError, match="could not load 'cais/mmlu'"):
        mc.load_mc("mmlu")


@pytest.mark.parametrize(
    "records, message",
    [
        ([{"question": "Q", "answer": 0}], "record 1 needs 'choices'"),
        (
            [
                {"question": "Q", "choices": ["a", "b"], "answer": 0},
                {"question": "Q", "choices": ["a", "b"], "answer": 5},
            ],
            "record 2: answer index 5 is out of range for 2 choices",
        ),
        ([{"question": "Q", "choices": ["a", "b"], "answer": -1}], "out of range"),
        ([{"choices": ["a", "b"], "answer": 0}], "no 'question'"),
        ([{"question": "Q", "choices": ["a", "b"]}], "needs 'answer'"),
        ([], "empty"),
    ],
)
def test_malformed_records_are_one_usage_error(ip, tiny, records, message):
    ip.user_ns["bad_set"] = records
    with pytest.raises(UsageError, match=message):
        ip.run_cell("%eval mc --model tiny-eval --data bad_set")
    assert ip.run_cell("1 + 1").result == 2


@pytest.mark.slow
def test_magic_binds_result_and_takes_a_model_variable(ip, tiny):
    from nbllm.train.results import ModelResult

    lm, tok, _ = tiny
    ip.user_ns["quiz"] = QUESTIONS
    ip.user_ns["held"] = ModelResult(lm, tok, "tiny-eval")
    res = ip.run_cell("%eval mc --model held --data quiz --shots 1 --limit 3 --out mcres").result
    assert ip.user_ns["mcres"] is res and res.n == 3 and res.shots == 1 and res.model == "tiny-eval"
    with pytest.raises(UsageError, match="--shots 9 needs 9 other questions"):
        ip.run_cell("%eval mc --model tiny-eval --data quiz --shots 9")
    with pytest.raises(UsageError, match="not a file, a variable or a shipped set"):
        ip.run_cell("%eval mc --model tiny-eval --data no-such-set")
    with pytest.raises(UsageError, match="needs a subcommand"):
        ip.run_cell("%eval bogus")


def test_too_long_prompt_names_the_fix(tiny):
    records = [{"question": "word " * 600, "choices": ["a", "b"], "answer": 0}] * 2
    with pytest.raises(DataError, match="over the model's context of 1024"):
        mc.evaluate("tiny-eval", records, progress=False)


@pytest.mark.slow
def test_smollm2_few_shot_cached_equals_naive():
    records = mc.load_mc("llm-quiz")
    lm, tok, _ = resolve_model("smollm2")
    for rec in records[:4]:
        prompt, conts = mc.build_prompt(rec, records, 3, "qa", seed=0)
        ctx, ids = mc.encode(tok, prompt, conts)
        assert mc.cached_logliks(lm, ctx, ids) == pytest.approx(mc.naive_logliks(lm, ctx, ids), abs=1e-4)
    fast = mc.evaluate("smollm2", "llm-quiz", shots=2, limit=6, progress=False).details
    slow = mc.evaluate("smollm2", "llm-quiz", shots=2, limit=6, method="naive", progress=False).details
    assert fast.loglik.tolist() == pytest.approx(slow.loglik.tolist(), abs=1e-4)
    assert fast.chosen.tolist() == slow.chosen.tolist()


# ---------------------------------------------------------------- WinoGrande partial scoring, batching

WINOGRANDE = [  # hand-written rows shaped like allenai/winogrande (the hub is unreachable in tests)
    {
        "sentence": "The cup fell off the table because _ was slippery.",
        "option1": "the cup",
        "option2": "the table",
        "answer": "2",
    },
    {
        "sentence": "Sarah lent Maria a book because _ had already finished reading it.",
        "option1": "Sarah",
        "option2": "Maria",
        "answer": "1",
    },
    {
        "sentence": "_ is heavier than a feather, so it sank in the pond.",
        "option1": "A brick",
        "option2": "Air",
        "answer": "1",
    },
]


def reference_partial(lm, tok, sentence, options, demo=""):
    """Straight from the harness's rules: context = [demo] sentence up to the blank + option, continuation =
    " " + the stripped rest; one full forward pass per option, summing the continuation's log-probabilities."""
    import torch

    cut = sentence.index("_")
    cont = tok(" " + sentence[cut + 1 :].strip(), add_special_tokens=False).input_ids
    sums = []
    for option in options:
        ctx = tok(demo + sentence[:cut] + option).input_ids
        with torch.no_grad():
            logp = lm(torch.tensor([ctx + cont])).logits[0].log_softmax(-1)
        sums.append(sum(float(logp[len(ctx) - 1 + t, tok_id]) for t, tok_id in enumerate(cont)))
    return sums


@pytest.mark.slow
def test_winogrande_is_scored_by_partial_evaluation(tiny):
    lm, tok, _ = tiny
    res = mc.evaluate("tiny-eval", [mc.from_winogrande(r) for r in WINOGRANDE], progress=False)
    d = res.details
    assert len(d) == 6 and d.text.tolist() == ["the cup", "the table", "Sarah", "Maria", "A brick", "Air"]
    expected = [x for r in WINOGRANDE for x in reference_partial(lm, tok, r["sentence"], [r["option1"], r["option2"]])]
    assert d.loglik.tolist() == pytest.approx(expected, abs=1e-4)
    # every option is scored on the same continuation tokens: same n_tokens and length, acc_norm = acc
    assert d.groupby("question_id").n_tokens.nunique().eq(1).all() and d.n_tokens.tolist()[0] == len(
        tok(" was slippery.", add_special_tokens=False).input_ids
    )
    assert (
        d.length.tolist()
        == [len("was slippery.")] * 2
        + [len("had already finished reading it.")] * 2
        + [len("is heavier than a feather, so it sank in the pond.")] * 2
    )
    assert (d.loglik_norm == d.loglik / d.length).all() and (d.chosen == d.chosen_norm).all()
    assert res.score["acc"] == res.score["acc_norm"] and d.correct.tolist() == [False, True, True, False, True, False]
    naive = mc.evaluate("tiny-eval", [mc.from_winogrande(r) for r in WINOGRANDE], method="naive", progress=False)
    assert naive.details.loglik.tolist() == pytest.approx(expected, abs=1e-4)


def test_winogrande_few_shot_demo_is_the_gold_context_and_continuation(tiny):
    lm, tok, _ = tiny
    records = mc.load_mc([mc.from_winogrande(r) for r in WINOGRANDE[:2]])
    pairs = mc.requests(records[0], records, 1, "qa", seed=0)  # the only other row is the demo
    demo = "Sarah lent Maria a book because Sarah had already finished reading it.\n\n"
    assert pairs == [
        (demo + "The cup fell off the table because the cup", " was slippery."),
        (demo + "The cup fell off the table because the table", " was slippery."),
    ]
    res = mc.evaluate("tiny-eval", records, shots=1, progress=False)
    expected = reference_partial(lm, tok, WINOGRANDE[0]["sentence"], ["the cup", "the table"], demo=demo)
    assert res.details.loglik.tolist()[:2] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    "records, message",
    [
        ([{"contexts": ["A cat", "A dog"], "answer": 0}], "record 1 has 'contexts' but no 'continuation'"),
        ([{"contexts": ["A cat"], "continuation": "barked.", "answer": 0}], "record 1 needs 'contexts'"),
        (
            [{"contexts": ["A cat", "A dog"], "continuation": "barked.", "choices": ["cat"], "answer": 1}],
            "'choices' \\(labels\\) must be 2 strings",
        ),
        ([{"contexts": ["A cat", "A dog"], "continuation": "barked.", "answer": 2}], "answer index 2 is out of range"),
    ],
)
def test_malformed_partial_records_are_one_usage_error(ip, tiny, records, message):
    ip.user_ns["bad_wg"] = records
    with pytest.raises(UsageError, match=message):
        ip.run_cell("%eval mc --model tiny-eval --data bad_wg")


@pytest.mark.slow
def test_partial_records_refuse_a_question_template(ip, tiny):
    ip.user_ns["wg"] = [mc.from_winogrande(r) for r in WINOGRANDE]
    with pytest.raises(UsageError, match="template 'letters' needs question records"):
        ip.run_cell("%eval mc --model tiny-eval --data wg --template letters")
    res = ip.run_cell("%eval mc --model tiny-eval --data wg --template plain --batch-size 2").result
    assert len(res.details) == 6


def _mixed(tok, shots):
    """Question and partial records together: unequal prompts, choices, continuation lengths."""
    records = mc.load_mc(QUESTIONS + [mc.from_winogrande(r) for r in WINOGRANDE])
    return [mc.encode_pairs(tok, mc.requests(rec, records, shots, "qa", seed=0)) for rec in records]


@pytest.mark.parametrize("shots", [0, 2])
@pytest.mark.slow
def test_batched_questions_equal_one_at_a_time(tiny, shots):
    lm, tok, _ = tiny
    questions = _mixed(tok, shots)
    naive = [[mc.naive_logliks(lm, ctx, [cont])[0] for ctx, cont in pairs] for pairs in questions]
    for pairs, ref in zip(questions[:4], naive):  # question records: the per-question cached path agrees too
        assert mc.cached_logliks(lm, pairs[0][0], [c for _, c in pairs]) == pytest.approx(ref, abs=1e-4)
    done = []
    for batch_size in (1, 3, 16):
        got = mc.batched_logliks(lm, questions, batch_size, on_group=done.append)
        assert [len(x) for x in got] == [len(x) for x in naive]
        assert sum(got, []) == pytest.approx(sum(naive, []), abs=1e-4)
    assert done == [1] * 7 + [3, 3, 1] + [7]  # progress: questions per group


@pytest.mark.slow
def test_batch_size_flag(ip, tiny):
    ip.user_ns["quiz"] = QUESTIONS
    one = ip.run_cell("%eval mc --model tiny-eval --data quiz --shots 1 --batch-size 1").result
    four = ip.run_cell("%eval mc --model tiny-eval --data quiz --shots 1 --batch-size 4").result
    assert four.details.loglik.tolist() == pytest.approx(one.details.loglik.tolist(), abs=1e-4)
    with pytest.raises(UsageError, match="batch size must be a positive integer \\(got 0\\)"):
        ip.run_cell("%eval mc --model tiny-eval --data quiz --batch-size 0")


@pytest.mark.slow
def test_smollm2_batched_equals_cached_and_partial_reference():
    lm, tok, _ = resolve_model("smollm2")
    pool = mc.load_mc("llm-quiz")
    questions = [mc.encode_pairs(tok, mc.requests(rec, pool, 2, "qa", seed=0)) for rec in pool[:6]]
    cached = [mc.cached_logliks(lm, pairs[0][0], [c for _, c in pairs]) for pairs in questions]
    assert sum(mc.batched_logliks(lm, questions, 4), []) == pytest.approx(sum(cached, []), abs=1e-4)
    wg = mc.evaluate("smollm2", [mc.from_winogrande(r) for r in WINOGRANDE], batch_size=2, progress=False).details
    expected = [x for r in WINOGRANDE for x in reference_partial(lm, tok, r["sentence"], [r["option1"], r["option2"]])]
    assert wg.loglik.tolist() == pytest.approx(expected, abs=1e-4)
