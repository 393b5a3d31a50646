"""%eval diversity: distinct-n, self-BLEU, embedding distance and exact repeats over N samples
per prompt, by hand and against sacrebleu; seeded samples; bad settings are one line."""

import pytest
import sacrebleu
import torch
from IPython.core.error import UsageError

from nbllm.errors import ConfigError, DataError
from nbllm.evaluate import diversity, leaderboard
from nbllm.evaluate.config import DiversityOptions

PROMPTS = ["Say hello.", "Name a colour."]
FAST = dict(samples=3, max_new_tokens=6, progress=False, rounds=200)


def test_distinct_n_and_exact_repeats_by_hand():
    texts = ["the cat sat", "the cat ran", "the cat sat"]
    assert diversity.distinct_n(texts, 1) == pytest.approx(4 / 9)  # the, cat, sat, ran of 9 words
    assert diversity.distinct_n(texts, 2) == pytest.approx(3 / 6)  # the-cat, cat-sat, cat-ran of 6 bigrams
    assert diversity.exact_repeats(texts) == pytest.approx(1 / 3)  # the third repeats the first
    assert diversity.exact_repeats(["a", " a ", "b", "a"]) == pytest.approx(2 / 4)  # spaces stripped
    assert diversity.words("Hi, hi!") == ["hi", ",", "hi", "!"]
    assert diversity.distinct_n(["Hi, hi!"], 1) == pytest.approx(3 / 4)
    assert diversity.distinct_n(["", "one"], 2) == 0.0  # no bigram at all


def test_self_bleu_is_sacrebleu_against_the_other_samples():
    texts = ["the cat sat on the mat", "a cat sat on a mat", "dogs run in the park today", "the cat sat on the mat"]
    expected = [
        sacrebleu.sentence_bleu(texts[i], [t for j, t in enumerate(texts) if j != i]).score for i in range(len(texts))
    ]
    assert diversity.self_bleu(texts) == pytest.approx(sum(expected) / 4)
    assert diversity.self_bleu(["same words here", "same words here"]) == pytest.approx(100.0)
    with pytest.raises(DataError, match="at least two samples"):
        diversity.self_bleu(["alone"])


def test_embedding_distance_is_the_mean_pairwise_cosine_distance():
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert diversity.embedding_distance(v) == pytest.approx((1 + 0 + 1) / 3)
    w = torch.nn.functional.normalize(torch.tensor([[1.0, 1.0], [1.0, -1.0]]), dim=-1)
    assert diversity.embedding_distance(w) == pytest.approx(1.0)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [0.1, 0.5, 0.9, 0.3, 0.7]
    a, b = diversity.bootstrap(values, 500, seed=3), diversity.bootstrap(values, 500, seed=3)
    assert a == b and a[0] < 0.5 < a[1]
    assert diversity.bootstrap([0.4, 0.4, 0.4], 100) == (pytest.approx(0.4), pytest.approx(0.4))
    low, high = diversity.bootstrap([0.4], 100)
    assert low != low and high != high  # one prompt: no interval


def test_samples_and_numbers_are_reproducible_and_consistent():
    a = diversity.evaluate("tiny-llama", PROMPTS, temperature=0.9, seed=1, embedder=None, **FAST)
    b = diversity.evaluate("tiny-llama", PROMPTS, temperature=0.9, seed=1, embedder=None, **FAST)
    c = diversity.evaluate("tiny-llama", PROMPTS, temperature=0.9, seed=2, embedder=None, **FAST)
    assert a.samples.text.tolist() == b.samples.text.tolist() and repr(a) == repr(b)
    assert a.samples.text.tolist() != c.samples.text.tolist()
    assert len(a.samples) == 6 and len(set(a.samples.text)) > 1  # sampled rows differ within a prompt
    for row in a.rows:  # every per-prompt value is the metric of that prompt's samples
        assert row["distinct_1"] == diversity.distinct_n(row["samples"], 1)
        assert row["self_bleu"] == pytest.approx(diversity.self_bleu(row["samples"]))
    setting = a.to_pandas().iloc[0]
    assert setting.distinct_2 == pytest.approx(a.by_prompt().distinct_2.mean())
    assert setting.embedding_distance != setting.embedding_distance  # no embedder: nan, and off the board
    # a prompt's samples do not depend on the other prompts
    alone = diversity.evaluate("tiny-llama", PROMPTS[:1], temperature=0.9, seed=1, embedder=None, **FAST)
    assert alone.samples.text.tolist() == a.samples.text.tolist()[:3]


def test_settings_compare_in_one_call_with_minilm_distances():
    from nbllm.lm import encoder

    r = diversity.evaluate(["tiny-llama", "tiny-llama"], PROMPTS[:1], temperature="0.5,1.2", **FAST)
    frame = r.to_pandas()
    assert frame[["model", "temperature"]].values.tolist() == [["tiny-llama", 0.5], ["tiny-llama", 1.2]] * 2
    first = r.rows[0]
    assert first["embedding_distance"] == pytest.approx(
        diversity.embedding_distance(encoder("minilm").encode(first["samples"]))
    )
    tasks = {row["task"] for row in leaderboard.leaderboard().rows if row["task"].startswith("diversity")}
    assert {"diversity prompts T=0.5", "diversity prompts T=1.2"} <= tasks
    assert len(repr(r).splitlines()) == 2 + 4 and "<table" in r._repr_html_()


def test_sample_html_is_escaped():
    from nbllm.evaluate.results import DiversityResult

    setting = {
        "model": "m",
        "temperature": 0.7,
        "prompts": 1,
        **{k: 0.5 for m in diversity.METRICS for k in (m, f"{m}_low", f"{m}_high")},
    }
    row = {
        "model": "m",
        "temperature": 0.7,
        "prompt_id": 0,
        "prompt": "<b>p</b>",
        **{m: 0.5 for m in diversity.METRICS},
        "samples": ["<script>x</script>", "ok"],
    }
    page = DiversityResult("d", 2, [setting], [row])._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(samples=3, temperature="0"), "--temperature 0 is greedy decoding: all 3 samples"),
        (dict(samples=3, temperature="0.7,0"), "--temperature 0 is greedy decoding"),
        (dict(samples=1, temperature="0.7"), "--samples 1 is too few: this needs at least two samples"),
        (dict(samples=3, temperature="-1"), "--temperature -1.0 is negative"),
        (dict(samples=3, temperature="warm"), "--temperature takes numbers"),
    ],
)
def test_bad_settings_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        DiversityOptions(data="x", **options)
    with pytest.raises(ConfigError, match=message):
        diversity.evaluate("tiny-llama", PROMPTS, **options)


@pytest.mark.parametrize(
    "line, message",
    [
        ("--data ps --samples 3 --temperature 0", "ConfigError: --temperature 0 is greedy decoding"),
        ("--data ps --samples 1", "ConfigError: --samples 1 is too few"),
        ("--data ps --model minilm --samples 2", "ModelError: 'minilm' is an encoder"),
        ("--data ps --model clf --samples 2", "ModelError: a ClassifyResult is a classifier"),
        ("--data empty --samples 2", "DataError: the prompts are empty"),
    ],
)
def test_bad_input_is_one_usage_error_line(ip, line, message):
    import nbllm

    ip.user_ns.update(ps=PROMPTS, empty=["  "])
    if "clf" in line:
        ip.user_ns["clf"] = nbllm.sft(
            [{"text": f"a {i}", "label": "x"} for i in range(4)]
            + [{"text": f"b {i}", "label": "y"} for i in range(4)],
            model="tiny-llama",
            format="classify",
            method="head",
            max_steps=1,
            progress="none",
        )
    with pytest.raises(UsageError, match=message) as err:
        ip.run_cell(f"%eval diversity {line}")
    assert "\n" not in str(err.value)


def test_the_magic_binds_and_reaches_the_leaderboard(ip):
    ip.user_ns["ps"] = PROMPTS
    ip.run_cell(
        "%eval diversity --model tiny-llama --data ps --samples 2 --temperature 0.8 --max-new-tokens 4 "
        "--embedder none --rounds 50 --out div"
    )
    div = ip.user_ns["div"]
    assert div.summary()["samples"] == 2 and len(div.samples) == 4
    board = ip.run_cell("%eval leaderboard --task 'diversity ps T=0.8'").result
    assert {r["metric"] for r in board.rows} == {"distinct_1", "distinct_2", "self_bleu", "exact_repeats"}
