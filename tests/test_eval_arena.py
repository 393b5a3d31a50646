"""Arena: Elo and Bradley-Terry from pairwise votes, bootstrap intervals, the voting widget."""

import json
import random

import pytest
from IPython.core.error import UsageError

from nbllm.errors import DataError
from nbllm.evaluate import arena


def simulated(n=400, seed=0, strengths=None):
    strengths = strengths or {"strong": 1200, "middle": 1000, "weak": 800}
    rng, names, votes = random.Random(seed), sorted(strengths), []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        p = 1 / (1 + 10 ** ((strengths[b] - strengths[a]) / 400))
        votes.append({"model_a": a, "model_b": b, "winner": "a" if rng.random() < p else "b"})
    return votes


def test_elo_update_matches_the_formula():
    r = arena.online_elo([{"model_a": "x", "model_b": "y", "winner": "a"}], k=4)
    assert r == {"x": 1002.0, "y": 998.0}  # equal ratings: expected 0.5, so +-K/2
    r = arena.online_elo([{"model_a": "x", "model_b": "y", "winner": "tie"}])
    assert r == {"x": 1000.0, "y": 1000.0}


def test_bradley_terry_recovers_the_rating_gap():
    bt = arena.bradley_terry(simulated(3000))
    assert bt["strong"] > bt["middle"] > bt["weak"]
    assert bt["strong"] - bt["weak"] == pytest.approx(400, abs=60)
    assert sum(bt.values()) / 3 == pytest.approx(1000)


def test_bradley_terry_is_order_free_and_elo_is_not():
    votes = simulated(300)
    flipped = list(reversed(votes))
    assert arena.bradley_terry(votes) == pytest.approx(arena.bradley_terry(flipped))
    assert arena.online_elo(votes) != pytest.approx(arena.online_elo(flipped))


def test_ratings_table_intervals_and_plot():
    res = arena.ratings(simulated(300), rounds=60, seed=1)
    table = res.to_pandas()
    assert table.model.tolist() == ["strong", "middle", "weak"]
    assert (table.elo_low <= table.elo).all() and (table.elo <= table.elo_high).all()
    assert (table.bt_low <= table.bt).all() and (table.bt <= table.bt_high).all()
    assert repr(res) == repr(arena.ratings(simulated(300), rounds=60, seed=1))  # seeded bootstrap
    assert "<img" in res._repr_html_() and res.plot() is not None


def test_shipped_votes_rank_the_hidden_strengths(ip):
    res = ip.run_cell("%eval arena --rounds 20 --out ar").result
    assert res.n_votes == 600 and ip.user_ns["ar"] is res
    assert res.to_pandas().model.tolist() == ["cat-13b", "owl-7b", "fox-3b", "bee-1b", "ant-0.5b"]


@pytest.mark.parametrize("votes, flags, message", [
    ([{"model_a": "x", "model_b": "y", "winner": "c"}], "", "vote 1 has winner 'c'; use a, b, tie or both_bad"),
    ([{"model_a": "x", "model_b": "y", "winner": "a"}, {"model_a": "x", "model_b": "z", "winner": "a"}],
     "--models x,y", "vote 2 names unknown model 'z'"),
    ([{"model_a": "x", "winner": "a"}], "", "vote 1 needs model_a and model_b"),
    ([{"model_a": "x", "model_b": "x", "winner": "a"}], "", "against itself"),
    ([], "", "no votes"),
])
def test_bad_votes_are_one_usage_error(ip, votes, flags, message):
    ip.user_ns["bad_votes"] = votes
    with pytest.raises(UsageError, match=message):
        ip.run_cell(f"%eval arena --votes bad_votes {flags}")


@pytest.fixture
def clock(monkeypatch):
    """The widget's clock, advanced by hand: a test click waits as long as a reader would."""
    from nbllm.widgets import arena as widget

    now = [1000.0]
    monkeypatch.setattr(widget.time, "monotonic", lambda: now[0])
    return now


def _read(clock):
    from nbllm.widgets.arena import READ_SECONDS

    clock[0] += READ_SECONDS


def test_widget_appends_votes_in_the_shown_order(tmp_path, clock):
    from nbllm.widgets.arena import ArenaWidget

    battles = [{"prompt": "Say hi <b>now</b>", "responses": {"m1": "hi", "m2": "<script>x</script>"}},
               {"prompt": "Count", "responses": {"m1": "1 2 3", "m2": "one", "m3": "uno"}}]
    path = tmp_path / "votes.jsonl"
    w = ArenaWidget(battles, path, seed=3)
    assert "nbllm-arena" in w.box._dom_classes
    classes = [b._dom_classes[0] for b in w.buttons]
    assert classes == ["nbllm-vote-a", "nbllm-vote-b", "nbllm-vote-tie", "nbllm-vote-bad"]
    assert "<script>" not in w.answer_a.value + w.answer_b.value and "&lt;b&gt;" in w.prompt.value
    shown = w.order[0]
    _read(clock)
    w.buttons[1].click()  # "B is better"
    _read(clock)
    w.buttons[3].click()  # "Both are bad"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0] == {"model_a": shown[0], "model_b": shown[1], "winner": "b", "prompt_id": 0}
    assert lines[1]["winner"] == "both_bad" and w.done and all(b.disabled for b in w.buttons)
    assert w.order == ArenaWidget(battles, tmp_path / "other.jsonl", seed=3).order  # seeded anonymous order
    with pytest.raises(DataError, match="every battle has a vote"):
        w.vote("a")
    assert arena.ratings(str(path), rounds=0).n_votes == 2  # the file feeds %eval arena


def test_widget_magic_and_bad_battles(ip, tmp_path):
    ip.user_ns["fights"] = [{"prompt": "p", "responses": {"a1": "x", "b1": "y"}}]
    w = ip.run_cell(f"%eval arena --widget --battles fights --votes {tmp_path}/v.jsonl").result
    assert repr(w).startswith("ArenaWidget(battles=1, voted=0")
    ip.user_ns["one_model"] = [{"prompt": "p", "responses": {"a1": "x"}}]
    with pytest.raises(UsageError, match="at least two models"):
        ip.run_cell(f"%eval arena --widget --battles one_model --votes {tmp_path}/v.jsonl")
    with pytest.raises(UsageError, match="--widget needs --battles"):
        ip.run_cell("%eval arena --widget")


def test_widget_drops_the_second_click_of_a_double_click(tmp_path, clock):
    """Each battle gets fresh buttons: a click still addressed to the last battle's buttons is dropped,
    never counted for the next battle (which the voter has not read) nor raised after the last one."""
    from nbllm.widgets.arena import ArenaWidget

    battles = [{"prompt": f"p{i}", "responses": {"m1": "x", "m2": "y"}} for i in range(2)]
    w = ArenaWidget(battles, tmp_path / "v.jsonl")
    first = w.buttons[0]
    _read(clock)
    first.click()
    first.click()
    assert [v["prompt_id"] for v in w.votes] == [0] and w.index == 1 and first not in w.buttons
    assert list(w.controls.children) == w.buttons
    last = w.buttons[2]
    _read(clock)
    last.click()
    _read(clock)
    last.click()  # after the last battle: dropped, no "every battle has a vote" error
    assert [v["winner"] for v in w.votes] == ["a", "tie"] and w.done and all(b.disabled for b in w.buttons)
    assert len((tmp_path / "v.jsonl").read_text().splitlines()) == 2


def test_widget_drops_a_click_that_comes_before_the_battle_could_be_read(tmp_path, clock):
    """A slow double click: its second click lands on the next battle's fresh buttons, just shown."""
    from nbllm.widgets.arena import READ_SECONDS, ArenaWidget

    battles = [{"prompt": f"p{i}", "responses": {"m1": "x", "m2": "y"}} for i in range(2)]
    w = ArenaWidget(battles, tmp_path / "v.jsonl")
    w.buttons[0].click()  # the first battle has just appeared
    assert w.votes == []
    _read(clock)
    w.buttons[0].click()
    clock[0] += 0.3  # the second click of a slow double click, on the next battle's buttons
    w.buttons[1].click()
    assert [v["winner"] for v in w.votes] == ["a"] and w.index == 1
    clock[0] += READ_SECONDS
    w.buttons[1].click()
    assert [v["winner"] for v in w.votes] == ["a", "b"] and w.done
