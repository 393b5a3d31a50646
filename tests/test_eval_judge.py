"""LLM-as-judge (registered model or an OpenAI-compatible endpoint), its cache, and the RAG triad."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from IPython.core.error import UsageError

from nbllm import models
from nbllm.evaluate import judge, triad
from nbllm.testing import register_tiny_model

RECORDS = [
    {"prompt": "Capital of France?", "reference": "Paris", "responses": {"m1": "Paris", "m2": "Lyon"}},
    {"prompt": "2 + 2?", "reference": "4", "responses": {"m1": "4", "m2": "five"}},
]


class FakeOpenAI(BaseHTTPRequestHandler):
    """Replies like /v1/chat/completions; the score depends on the response being judged."""

    calls: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        prompt = body["messages"][0]["content"]
        reply = (
            "90"
            if "response `Paris`" in prompt or "response `4`" in prompt
            else "Score: 20/100"
            if "Lyon" in prompt
            else "I would rather not say."
        )
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def endpoint(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeOpenAI.calls = []
    monkeypatch.setenv("FAKE_JUDGE_KEY", "sk-test")
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_parse_score():
    assert judge.parse_score("85") == 85 and judge.parse_score("Score: 72.5/100") == 72.5
    assert judge.parse_score("no number") is None and judge.parse_score("150") is None
    assert judge.parse_score("-5") is None


def test_endpoint_judge_scores_counts_unparsable_and_caches(endpoint, tmp_path):
    cache = tmp_path / "judge.sqlite"
    run = lambda: judge.evaluate(  # noqa: E731
        RECORDS, "gpt-fake", url=endpoint, api_key_env="FAKE_JUDGE_KEY", cache_path=cache, progress=False
    )
    first = run()
    assert len(FakeOpenAI.calls) == 4
    call = FakeOpenAI.calls[0]
    assert call["path"] == "/v1/chat/completions" and call["auth"] == "Bearer sk-test"
    assert call["body"]["model"] == "gpt-fake" and call["body"]["temperature"] == 0
    assert "score the model response `Paris` on a scale from 0 to 100" in call["body"]["messages"][0]["content"]
    assert [r["score"] for r in first.rows] == [90, 20, 90, None]  # "five" gets a reply with no number
    assert first.n_unparsable == 1 and "1 replies had no score" in first._repr_html_()
    by = first.by_model().set_index("model")
    assert by.loc["m1", "mean"] == 90 and by.loc["m2", "n"] == 1 and by.loc["m2", "unparsable"] == 1
    second = run()
    assert len(FakeOpenAI.calls) == 4  # all from the cache: no new request
    assert second.n_cached == 4 and repr(second) == repr(first)
    assert [r["reply"] for r in second.rows] == [r["reply"] for r in first.rows]


def test_endpoint_errors_are_one_line(endpoint, monkeypatch, ip, tmp_path):
    monkeypatch.setenv("NBLLM_CACHE", str(tmp_path))
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    ip.user_ns["jrecs"] = RECORDS
    with pytest.raises(UsageError, match="environment variable NOT_SET_KEY is not set"):
        ip.run_cell(f"%eval judge --data jrecs --judge gpt-fake --judge-url {endpoint} --api-key-env NOT_SET_KEY")
    with pytest.raises(UsageError, match="cannot reach judge endpoint"):
        ip.run_cell("%eval judge --data jrecs --judge gpt-fake --judge-url http://127.0.0.1:9/v1 --api-key-env none")
    res = ip.run_cell(
        f"%eval judge --data jrecs --judge gpt-fake --judge-url {endpoint} --api-key-env FAKE_JUDGE_KEY --out jr"
    ).result
    assert ip.user_ns["jr"] is res and res.n_unparsable == 1


@pytest.mark.slow
def test_model_judge_reruns_from_cache_without_loading(tmp_path):
    loads = []

    def load():
        loads.append(1)
        return models.tiny_llama(seed=2)

    models.register("tiny-judge", load=load, load_tokenizer=models.byte_tokenizer)
    try:
        first = judge.evaluate(RECORDS, "tiny-judge", cache_path=tmp_path / "c.sqlite", progress=False)
        assert len(loads) == 1 and first.n_cached == 0
        assert first.n_unparsable == sum(r["score"] is None for r in first.rows)  # random model: counted, kept
        assert len(first.to_pandas()) == 4
        models._SHARED.pop("tiny-judge", None)  # a fresh session: nothing loaded
        second = judge.evaluate(RECORDS, "tiny-judge", cache_path=tmp_path / "c.sqlite", progress=False)
        assert len(loads) == 1 and second.n_cached == 4
        assert second.to_pandas().reply.tolist() == first.to_pandas().reply.tolist()
    finally:
        models.unregister("tiny-judge")


@pytest.mark.parametrize(
    "records, message",
    [
        ([], "nothing to judge"),
        ([{"prompt": "x"}], "record 1 has no response"),
        ([{"response": "x"}], "record 1 has no prompt"),
    ],
)
def test_bad_judge_data(ip, records, message):
    register_tiny_model("tiny-eval", seed=1)
    ip.user_ns["jbad"] = records
    with pytest.raises(UsageError, match=message):
        ip.run_cell("%eval judge --data jbad --judge tiny-eval")


# ---------------------------------------------------------------- triad


class RagStandIn:
    """What %%rag --out binds, duck-typed."""

    def __init__(self, question, contexts, answer, config):
        self.question, self.contexts, self.answer, self.config = question, contexts, answer, config


def bag_of_words(texts):
    """A deterministic stand-in embedder: unit vectors of word counts over a fixed vocabulary."""
    import torch

    vocab = sorted({w for t in texts for w in t.lower().replace(".", " ").replace("?", " ").split()})
    vecs = torch.tensor(
        [[t.lower().replace(".", " ").replace("?", " ").split().count(w) for w in vocab] for t in texts],
        dtype=torch.float32,
    )
    return torch.nn.functional.normalize(vecs + 1e-9, dim=-1)


def _rag_results():
    ctx = ["The Eiffel Tower is in Paris. It was finished in 1889."]
    good = RagStandIn(
        "Where is the Eiffel Tower?", ctx, "The Eiffel Tower is in Paris. It was finished in 1889.", {"k": 3}
    )
    bad = RagStandIn(
        "Where is the Eiffel Tower?", ctx, "The Eiffel Tower is in Paris. Bananas grow on purple moons.", {"k": 1}
    )
    return good, bad


def test_triad_flags_unsupported_sentences_and_ranks_configs():
    good, bad = _rag_results()
    res = triad.evaluate([good, bad], embed=bag_of_words, threshold=0.9, progress=False)
    rows = {r["config"]: r for r in res.rows}
    assert rows["k=3"]["groundedness"] == 1.0 and rows["k=1"]["groundedness"] == 0.5
    assert rows["k=1"]["unsupported"] == ["Bananas grow on purple moons."]
    assert res.leaderboard().config.tolist() == ["k=3", "k=1"]
    html = res._repr_html_()
    assert "nbllm-unsupported' title='not supported: low similarity 0.00 &lt; 0.90'>Bananas" in html
    assert 0 < rows["k=3"]["context_relevance"] <= 1 and 0 < rows["k=3"]["answer_relevance"] <= 1


def test_triad_escapes_retrieved_text():
    evil = RagStandIn("q?", ["<script>alert(1)</script>"], "<script>alert(2)</script>.", {})
    html = triad.evaluate(evil, embed=bag_of_words, progress=False)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_triad_magic_takes_several_variables(ip):
    good, bad = _rag_results()
    ip.user_ns.update(r_good=good, r_bad=bad)
    with pytest.raises(UsageError, match="no variable 'r_missing'"):
        ip.run_cell("%eval triad --rag r_good r_missing")
    ip.user_ns["not_rag"] = 42
    with pytest.raises(UsageError, match="has no .question"):
        ip.run_cell("%eval triad --rag not_rag")


@pytest.mark.slow
def test_triad_with_minilm_separates_supported_from_made_up(ip):
    good, bad = _rag_results()
    ip.user_ns.update(r_good=good, r_bad=bad)
    res = ip.run_cell("%eval triad --rag r_good r_bad").result
    board = res.leaderboard().set_index("config")
    assert board.loc["r_good", "groundedness"] == 1.0 and board.loc["r_bad", "groundedness"] == 0.5


def test_triad_with_an_endpoint_judge(endpoint, tmp_path):
    good, _ = _rag_results()
    res = triad.evaluate(
        good,
        judge="gpt-fake",
        url=endpoint,
        api_key_env="FAKE_JUDGE_KEY",
        cache_path=tmp_path / "t.sqlite",
        progress=False,
    )
    assert res.scorer == "judge:gpt-fake" and len(FakeOpenAI.calls) == 4  # 1 context, 2 sentences, 1 answer
    assert res.rows[0]["groundedness"] == 0.0  # the fake judge gives these prompts no number: unsupported
