"""Provenance in every result (issue #16): fingerprints of the weights and the data, the cache,
the leaderboard's rows and exports, the HTML view, and reprs that stay as they were."""

import json
import re

import pytest
import torch

import nbllm
from nbllm import models, provenance
from nbllm.evaluate import generative, leaderboard, mc, perplexity
from nbllm.testing import register_tiny_model

QUESTIONS = [
    {"question": "What is two plus two?", "choices": ["four", "five", "six"], "answer": 0},
    {"question": "Which colour is a clear sky?", "choices": ["blue", "green", "red"], "answer": 0},
]
TRAIN = [{"instruction": f"Add {a} and {b}.", "output": f"{a + b}"} for a in range(4) for b in range(3)]
HEX = re.compile(r"\b[0-9a-f]{12}\b")


@pytest.fixture(scope="module")
def tiny():
    register_tiny_model("tiny-prov", seed=3)
    return "tiny-prov"


def test_weights_fingerprint_equal_for_equal_weights_and_differs_otherwise():
    a, b, c = (models.tiny_llama(seed=s)[0] for s in (0, 0, 1))
    assert provenance.fingerprint(a) == provenance.fingerprint(b) != provenance.fingerprint(c)
    assert len(provenance.fingerprint(a)) == provenance.SHORT


def test_cache_follows_optimizer_steps():
    model = models.tiny_llama(seed=0)[0]
    before = provenance.fingerprint(model)
    assert provenance.fingerprint(model) == before  # cached
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.tensor([[1, 2, 3, 4]])
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    after = provenance.fingerprint(model)
    assert after != before
    assert after == provenance.fingerprint(model, cache=False)  # not stale
    with torch.no_grad():
        next(model.parameters()).copy_(next(models.tiny_llama(seed=0)[0].parameters()))  # in place, no optimizer
    assert provenance.fingerprint(model) == provenance.fingerprint(model, cache=False) != after


def test_a_lora_adapter_changes_the_fingerprint_and_is_named():
    from nbllm.train.adapters import attach

    base = models.tiny_llama(seed=0)[0]
    plain = provenance.fingerprint(base)
    wrapped = attach(base, r=2, targets="q_proj,v_proj", name="mine")
    info = provenance.for_model(wrapped)
    assert info["model_fingerprint"] != plain and info["adapter"] == ("mine",)


def test_data_fingerprint():
    import pandas as pd

    recs = [{"q": "a", "n": 1}, {"q": "b", "n": 2}]
    same = [{"n": 1, "q": "a"}, {"n": 2, "q": "b"}]  # key order does not matter
    assert provenance.for_data(recs) == provenance.for_data(same) == provenance.for_data(pd.DataFrame(recs))
    assert provenance.for_data(recs) != provenance.for_data([recs[0], {"q": "c", "n": 2}])
    assert provenance.for_data(None) is None


def _repr_without(result):
    prov, result.provenance = result.provenance, None
    try:
        return repr(result)
    finally:
        result.provenance = prov


def test_every_eval_result_carries_provenance_in_html_not_in_repr(tiny):
    results = [
        mc.evaluate(tiny, QUESTIONS, progress=False, seed=2),
        generative.evaluate(tiny, [{"question": "Say yes.", "answer": "yes"}], max_new_tokens=4, progress=False),
        perplexity.evaluate(tiny, ["some text to score here"], progress=False),
    ]
    fp = provenance.fingerprint(models.load_shared(tiny)[0])
    for res in results:
        p = res.provenance
        assert p is not None and p.model == tiny and p.model_fingerprint and p.data_fingerprint
        assert p.nbllm == nbllm.__version__ and p.device == "cpu" and p.dtype and "torch" in p.libraries
        assert p.model_fingerprint == fp
        assert repr(res) == _repr_without(res) and not HEX.search(repr(res))
        page = res._repr_html_()
        assert "nbllm-provenance" in page and p.model_fingerprint in page and page.endswith("</div>")
    assert results[0].provenance.seed == 2 and results[0].provenance.flags["shots"] == 0


def test_html_escapes_provenance(tiny):
    res = mc.evaluate(tiny, QUESTIONS, progress=False)
    res.provenance = provenance.collect(data=QUESTIONS, flags={"template": "<script>x</script>"})
    page = res._repr_html_()
    assert "<script>x" not in page and "&lt;script&gt;x" in page


def test_leaderboard_keeps_weights_apart_and_exports_provenance(tiny, tmp_path):
    leaderboard.clear()
    mc.evaluate(tiny, QUESTIONS, progress=False)
    mc.evaluate(tiny, QUESTIONS, progress=False)  # a plain rerun: replaces its row
    assert len(leaderboard.leaderboard().rows) == 2  # acc, acc_norm
    trained = nbllm.sft(
        TRAIN, model=tiny, format="alpaca", max_steps=2, batch_size=4, lr=1e-2, samples=0, progress="none"
    )
    assert trained.provenance.model_fingerprint and trained.provenance.seed == trained.config.seed
    assert trained.provenance.data_fingerprint == provenance.for_data(TRAIN)
    assert trained.provenance.flags["max_steps"] == 2 and "nbllm-provenance" in trained._repr_html_()
    assert not HEX.search(repr(trained))
    mc.evaluate(trained, QUESTIONS, progress=False, name=tiny)  # same name, other weights: new rows
    board = leaderboard.leaderboard()
    frame = board.to_pandas()
    acc = frame[frame.metric == "acc"]
    assert acc.model.tolist() == [tiny, tiny] and acc.model_fingerprint.nunique() == 2
    assert {"model_fingerprint", "data_fingerprint", "seed", "device", "dtype", "nbllm", "torch", "flags"} <= set(
        frame.columns
    )
    mc.evaluate(trained, QUESTIONS, progress=False, name=tiny)  # rerun of the same cell: same count
    assert len(leaderboard.leaderboard().rows) == 4
    csv, md, js = tmp_path / "b.csv", tmp_path / "b.md", tmp_path / "b.json"
    leaderboard.leaderboard(csv=str(csv), markdown=str(md), json=str(js))
    head = csv.read_text().splitlines()[0]
    assert head.startswith("model,task,metric,value,n,ci_low,ci_high,") and "model_fingerprint" in head
    rows = json.loads(js.read_text())
    assert len(rows) == 4 and rows[0]["flags"]["shots"] == 0 and rows[0]["data_fingerprint"]
    assert rows[0]["model_fingerprint"] != rows[-1]["model_fingerprint"]
    text = md.read_text()
    assert text.splitlines()[0] == "| model | task | metric | value | n | ci_low | ci_high |"
    assert "model_fingerprint" in text and board.markdown().count("\n") == 6  # the first table as before
    assert not HEX.search(repr(board))
    leaderboard.clear()


def test_the_json_flag(ip, tiny, tmp_path):
    leaderboard.clear()
    mc.evaluate(tiny, QUESTIONS, progress=False)
    out = tmp_path / "board.json"
    ip.run_cell(f"%eval leaderboard --json {out}")
    assert [r["metric"] for r in json.loads(out.read_text())] == ["acc", "acc_norm"]
    leaderboard.clear()


def test_arena_has_only_a_data_fingerprint():
    from nbllm.evaluate import arena

    votes = [{"model_a": "x", "model_b": "y", "winner": w} for w in "abab" * 3]
    res = arena.ratings(votes, rounds=5)
    assert res.provenance.model_fingerprint is None and res.provenance.data_fingerprint
    leaderboard.clear()


def test_retrieval_results_carry_the_embedder_and_the_corpus(tiny):
    from nbllm import rag

    docs = ["LoRA trains two small matrices per layer.", "Perplexity is exp of the mean negative log-likelihood."]
    report = rag.index(docs, "prov-test")
    try:
        p = report.provenance
        assert p.model == "minilm" and p.model_fingerprint and p.data_fingerprint
        assert p.extra["collection"] == "prov-test" and p.flags["distance"] == "l2"
        assert not HEX.search(repr(report)) and "nbllm-provenance" in report._repr_html_()
        again = rag.index(docs, "prov-test")  # the same corpus, the same fingerprints
        assert (again.provenance.model_fingerprint, again.provenance.data_fingerprint) == (
            p.model_fingerprint,
            p.data_fingerprint,
        )
        other = rag.index(docs + ["A third document."], "prov-other")
        assert other.provenance.data_fingerprint != p.data_fingerprint
        rag.drop("prov-other")
        res = rag.query("What does LoRA train?", "prov-test", k=1, model=tiny, max_new_tokens=4)
        q = res.provenance
        assert q.model == tiny and q.model_fingerprint and q.extra["embedder_fingerprint"] == p.model_fingerprint
        assert q.data_fingerprint and not HEX.search(repr(res)) and "nbllm-provenance" in res._repr_html_()
    finally:
        rag.drop("prov-test")
