"""Arena: Elo and Bradley-Terry from pairwise votes, bootstrap intervals, the voting widget."""

import json
import math
import random

import numpy as np
import pytest
from IPython.core.error import UsageError

from nbllm.errors import ConfigError, DataError
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


def with_draws(n=500, seed=0, strengths=None, tie=0.15, both_bad=0.05):
    """Simulated votes with ties and both-bad votes (every pair met both ways: the MLE exists)."""
    strengths = strengths or {"strong": 1150, "middle": 1000, "weak": 900, "tiny": 700}
    rng, names, votes = random.Random(seed), sorted(strengths), []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        u = rng.random()
        if u < tie:
            winner = "tie"
        elif u < tie + both_bad:
            winner = "both_bad"
        else:
            p = 1 / (1 + 10 ** ((strengths[b] - strengths[a]) / 400))
            winner = "a" if rng.random() < p else "b"
        votes.append({"model_a": a, "model_b": b, "winner": winner})
    return votes


C = math.log(10) / 400  # natural-log units per rating point


def _rows(votes, names, convention):
    """(i, j, label, weight) rows of a logistic regression, in one of FastChat's two conventions:
    "half": one row per vote, a draw labelled 0.5 (compute_elo_mle_with_tie);
    "duplicate": every vote twice, a win is two wins and a draw one win each way (compute_mle_elo)."""
    index = {m: k for k, m in enumerate(names)}
    rows = []
    for v in votes:
        i, j = index[v["model_a"]], index[v["model_b"]]
        if convention == "half":
            rows.append((i, j, {"a": 1.0, "b": 0.0}.get(v["winner"], 0.5), 1.0))
        else:
            y = {"a": (1.0, 1.0), "b": (0.0, 0.0)}.get(v["winner"], (1.0, 0.0))
            rows += [(i, j, y[0], 1.0), (i, j, y[1], 1.0)]
    return [np.array(col) for col in zip(*rows)]


def _centred(beta, names):
    beta = np.asarray(beta) - np.mean(beta)
    return {m: 1000 + float(b) / C for m, b in zip(names, beta)}


def scipy_fit(votes, names, convention="half"):
    """The MLE by scipy's L-BFGS-B on the plain negative log-likelihood (FastChat's fit_bt), tight tolerance."""
    optimize = pytest.importorskip("scipy.optimize")
    i, j, y, w = _rows(votes, names, convention)

    def loss(beta):
        d = beta[i] - beta[j]
        p = 1 / (1 + np.exp(-d))
        g = w * (p - y)
        grad = np.bincount(i, g, len(names)) - np.bincount(j, g, len(names))
        return float(np.sum(w * (np.logaddexp(0, -d) + (1 - y) * d))), grad

    res = optimize.minimize(
        loss,
        np.zeros(len(names)),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000},
    )
    return _centred(res.x, names)


def newton_fit(votes, names, convention="duplicate"):
    """The MLE by a Newton iteration of its own: the last model pinned at 0 (no ridge, no centring trick)."""
    i, j, y, w = _rows(votes, names, convention)
    n = len(names)
    free = np.zeros(n - 1)
    for _ in range(200):
        beta = np.append(free, 0.0)
        p = 1 / (1 + np.exp(-(beta[i] - beta[j])))
        g = np.bincount(i, w * (y - p), n) - np.bincount(j, w * (y - p), n)
        h = np.zeros((n, n))
        for a, b, q in zip(i, j, w * p * (1 - p)):
            h[a, a] += q
            h[b, b] += q
            h[a, b] -= q
            h[b, a] -= q
        step = np.linalg.solve(h[:-1, :-1], g[:-1])
        free += step
        if np.abs(step).max() < 1e-13:
            break
    return _centred(np.append(free, 0.0), names)


def _max_diff(x, y):
    return max(abs(x[m] - y[m]) for m in x)


@pytest.mark.parametrize(
    "votes",
    [simulated(300, seed=2), with_draws(500, seed=3), with_draws(40, seed=4, tie=0.3), simulated(12, seed=5)],
    ids=["no-ties", "ties", "few-votes", "twelve-votes"],
)
def test_bradley_terry_is_the_exact_mle(votes):
    names = sorted({v["model_a"] for v in votes} | {v["model_b"] for v in votes})
    assert arena.mle_exists(votes, names)
    bt = arena.bradley_terry(votes)
    # label 0.5 (what nbllm fits) and duplicated votes (FastChat's older compute_mle_elo): one optimum
    assert _max_diff(bt, scipy_fit(votes, names, "half")) < 1e-3
    assert _max_diff(bt, newton_fit(votes, names, "duplicate")) < 1e-3
    assert _max_diff(bt, newton_fit(votes, names, "half")) < 1e-6
    assert sum(bt.values()) / len(bt) == pytest.approx(1000)


def test_ties_half_or_dropped():
    votes = with_draws(500, seed=6)
    decisive = [v for v in votes if v["winner"] in ("a", "b")]
    half, dropped = arena.bradley_terry(votes), arena.bradley_terry(votes, ties="drop")
    assert dropped == pytest.approx(arena.bradley_terry(decisive), abs=1e-9)
    names = sorted(half)
    assert _max_diff(dropped, newton_fit(decisive, names)) < 1e-3
    assert _max_diff(half, dropped) > 1  # draws pull the ratings together: the choice matters
    assert max(half.values()) - min(half.values()) < max(dropped.values()) - min(dropped.values())
    # a both-bad vote is a tie in both conventions
    as_ties = [dict(v, winner="tie") if v["winner"] == "both_bad" else v for v in votes]
    assert arena.bradley_terry(as_ties) == pytest.approx(half, abs=1e-9)
    assert arena.online_elo(as_ties) == pytest.approx(arena.online_elo(votes), abs=1e-9)
    assert arena.online_elo(votes, ties="drop") == pytest.approx(arena.online_elo(decisive), abs=1e-9)
    res = arena.ratings(votes, rounds=5, ties="drop")
    assert res.n_votes == 500 and res.outcomes["tie"] > 0  # the counts still show the draws
    assert res.ratings == pytest.approx(dropped, abs=1e-9)
    assert res.to_pandas().games.sum() == 2 * len(decisive)
    assert arena.ratings(votes, rounds=5).ratings == pytest.approx(half, abs=1e-9)
    with pytest.raises(ConfigError, match="ties must be one of half, drop"):
        arena.ratings(votes, ties="ignore")
    with pytest.raises(DataError, match="leaves none to rate"):
        arena.ratings([{"model_a": "x", "model_b": "y", "winner": "tie"}], ties="drop")


def test_elo_counts_a_draw_as_half_a_win_each_way():
    for winner in ("tie", "both_bad"):
        r = arena.online_elo(
            [{"model_a": "x", "model_b": "y", "winner": "a"}, {"model_a": "x", "model_b": "y", "winner": winner}], k=4
        )
        expected = 1 / (1 + 10 ** ((998 - 1002) / 400))
        assert r["x"] == pytest.approx(1002 + 4 * (0.5 - expected))
        assert r["y"] == pytest.approx(998 - 4 * (0.5 - expected))


def test_without_an_mle_the_ratings_stay_finite():
    votes = [{"model_a": "x", "model_b": "y", "winner": "a"}] * 3 + [{"model_a": "y", "model_b": "z", "winner": "a"}]
    assert not arena.mle_exists(votes)  # x never lost: its MLE rating is infinite
    bt = arena.bradley_terry(votes)
    assert all(math.isfinite(r) for r in bt.values()) and bt["x"] > bt["y"] > bt["z"]
    assert arena.mle_exists(votes + [{"model_a": "z", "model_b": "x", "winner": "tie"}])  # a draw links back
    assert not arena.mle_exists(votes, ["x", "y", "z", "w"])  # w has no votes


@pytest.mark.slow
def test_ratings_table_intervals_and_plot():
    res = arena.ratings(simulated(300), rounds=60, seed=1)
    table = res.to_pandas()
    assert table.model.tolist() == ["strong", "middle", "weak"]
    assert (table.elo_low <= table.elo).all() and (table.elo <= table.elo_high).all()
    assert (table.bt_low <= table.bt).all() and (table.bt <= table.bt_high).all()
    assert repr(res) == repr(arena.ratings(simulated(300), rounds=60, seed=1))  # seeded bootstrap
    assert "<img" in res._repr_html_() and res.plot() is not None


@pytest.mark.slow
def test_shipped_votes_rank_the_hidden_strengths(ip):
    res = ip.run_cell("%eval arena --rounds 20 --out ar").result
    assert res.n_votes == 600 and ip.user_ns["ar"] is res
    assert res.to_pandas().model.tolist() == ["cat-13b", "owl-7b", "fox-3b", "bee-1b", "ant-0.5b"]
    dropped = ip.run_cell("%eval arena --rounds 0 --ties drop").result  # the flag reaches the fit
    assert dropped.to_pandas().equals(arena.ratings("arena-votes", rounds=0, ties="drop").to_pandas())
    assert not dropped.to_pandas().equals(ip.run_cell("%eval arena --rounds 0").result.to_pandas())


@pytest.mark.parametrize(
    "votes, flags, message",
    [
        ([{"model_a": "x", "model_b": "y", "winner": "c"}], "", "vote 1 has winner 'c'; use a, b, tie or both_bad"),
        (
            [{"model_a": "x", "model_b": "y", "winner": "a"}, {"model_a": "x", "model_b": "z", "winner": "a"}],
            "--models x,y",
            "vote 2 names unknown model 'z'",
        ),
        ([{"model_a": "x", "winner": "a"}], "", "vote 1 needs model_a and model_b"),
        ([{"model_a": "x", "model_b": "x", "winner": "a"}], "", "against itself"),
        ([], "", "no votes"),
    ],
)
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

    battles = [
        {"prompt": "Say hi <b>now</b>", "responses": {"m1": "hi", "m2": "<script>x</script>"}},
        {"prompt": "Count", "responses": {"m1": "1 2 3", "m2": "one", "m3": "uno"}},
    ]
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
    assert len(arena.check_votes(str(path))) == 2  # the file feeds %eval arena
    with pytest.raises(DataError, match="too few votes to rate m1, m3 .*at least 2 per model"):
        arena.ratings(str(path), rounds=0)  # two votes rate nothing yet: one clear line, not made-up ratings


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
