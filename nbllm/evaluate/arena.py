"""Arena ratings from pairwise votes, as Chatbot Arena (FastChat's elo_analysis.py) computes them.

A vote is {"model_a", "model_b", "winner": "a" | "b" | "tie" | "both_bad"}. Two ratings on the
same 400-point logistic scale (base 10, a 400-point gap means 10:1 odds):

    Elo (online)      one update per vote, in order: r_a += K (s_a - E_a), K = 4 as LMSYS uses;
                      depends on the order of the votes
    Bradley-Terry     the exact maximum-likelihood ratings for all votes at once (a logistic
                      regression without intercept or penalty, fitted by Newton's method to
                      machine precision); order-free, what the Arena reports now. Centred so the
                      mean rating is `init` (FastChat instead pins one baseline model; only the
                      offset differs)

Ties and "both bad", the `ties=` choice of ratings(), online_elo() and bradley_terry():

    "half" (default, FastChat's)  a tie and a both-bad vote are the same outcome, a draw: half a
        win for each side. FastChat's online Elo uses s = 0.5 for "tie" and "tie (bothbad)";
        its Bradley-Terry MLE either duplicates every vote and counts a draw as one win each way
        (compute_mle_elo) or gives a draw the label 0.5 (compute_elo_mle_with_tie). Those are one
        convention: a draw's log-likelihood 0.5 log p + 0.5 log(1 - p), doubled together with
        every win's, so the maximum is the same point (tests/test_eval_arena.py checks all three).
    "drop"  tie and both-bad votes are left out of both ratings (FastChat's --exclude-tie), and
        out of games and win_rate; the outcome counts still show them.

The MLE exists when the votes connect every model both ways (each group of models has a win or a
draw against the rest and a loss or a draw too). When it does not (a model that never lost, or a
bootstrap sample that misses a model), the ratings would run off to infinity, so bradley_terry adds
a small ridge (RIDGE, on the natural-log scale) and stays finite; pass ridge= to force one.

Both get 95% intervals from a seeded bootstrap over the votes.
"""

from __future__ import annotations

import math
import random

from ..errors import ConfigError, DataError

SCALE, BASE, INIT, K = 400.0, 10.0, 1000.0, 4.0
RIDGE = 1e-4
TIES = ("half", "drop")
DRAWS = ("tie", "both_bad")
WINNERS = {
    "a": "a",
    "model_a": "a",
    "b": "b",
    "model_b": "b",
    "tie": "tie",
    "both_bad": "both_bad",
    "bothbad": "both_bad",
    "tie (bothbad)": "both_bad",
    "both bad": "both_bad",
}


def check_votes(votes, models=None) -> list[dict]:
    """Votes as clean dicts; a DataError names the first bad one."""
    from .common import load_eval_records

    records = load_eval_records(votes, "votes") if not isinstance(votes, list) else votes
    if not records:
        raise DataError("no votes: give a JSONL file or list of {model_a, model_b, winner}")
    known = None if models is None else {str(m) for m in models}
    out = []
    for i, v in enumerate(records, 1):
        if not isinstance(v, dict) or not all(isinstance(v.get(k), str) and v.get(k) for k in ("model_a", "model_b")):
            raise DataError(f"vote {i} needs model_a and model_b names (got {v!r:.120})")
        winner = WINNERS.get(str(v.get("winner", "")).strip().lower())
        if winner is None:
            raise DataError(f"vote {i} has winner {v.get('winner')!r}; use a, b, tie or both_bad")
        if v["model_a"] == v["model_b"]:
            raise DataError(f"vote {i} pits {v['model_a']!r} against itself; a vote compares two different models")
        if known is not None:
            unknown = [m for m in (v["model_a"], v["model_b"]) if m not in known]
            if unknown:
                raise DataError(f"vote {i} names unknown model {unknown[0]!r}; known: {', '.join(sorted(known))}")
        out.append({"model_a": v["model_a"], "model_b": v["model_b"], "winner": winner})
    return out


def _score_a(winner: str) -> float:
    return 1.0 if winner == "a" else 0.0 if winner == "b" else 0.5


def _check_ties(ties: str) -> None:
    if ties not in TIES:
        raise ConfigError(f"ties must be one of {', '.join(TIES)} (got {ties!r})")


def counted(votes: list[dict], ties: str = "half") -> list[dict]:
    """The votes the ratings use: all of them with ties="half", the decisive ones with ties="drop"."""
    _check_ties(ties)
    return list(votes) if ties == "half" else [v for v in votes if v["winner"] not in DRAWS]


def online_elo(votes: list[dict], k: float = K, init: float = INIT, ties: str = "half") -> dict[str, float]:
    """Elo with one update per vote, in the given order; a draw scores 0.5 (or is skipped: ties="drop")."""
    rating: dict[str, float] = {}
    for v in counted(votes, ties):
        a, b = v["model_a"], v["model_b"]
        ra, rb = rating.setdefault(a, init), rating.setdefault(b, init)
        expected_a = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        s = _score_a(v["winner"])
        rating[a] = ra + k * (s - expected_a)
        rating[b] = rb + k * ((1 - s) - (1 - expected_a))
    return rating


def mle_exists(votes: list[dict], models: list[str] | None = None) -> bool:
    """Whether the Bradley-Terry MLE is finite: every model reaches every other along "beat or drew"."""
    names = models or sorted({v["model_a"] for v in votes} | {v["model_b"] for v in votes})
    beats: dict[str, set] = {m: set() for m in names}
    for v in votes:
        a, b, s = v["model_a"], v["model_b"], _score_a(v["winner"])
        if s > 0:
            beats[a].add(b)
        if s < 1:
            beats[b].add(a)
    lost_to: dict[str, set] = {m: set() for m in names}
    for m, others in beats.items():
        for o in others:
            lost_to[o].add(m)

    def reach(graph) -> int:
        seen, todo = {names[0]}, [names[0]]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return len(seen)

    return bool(names) and reach(beats) == len(names) and reach(lost_to) == len(names)


MIN_GAMES = 2  # counted games a model needs before ratings() rates it


def bradley_terry(
    votes: list[dict],
    models: list[str] | None = None,
    init: float = INIT,
    ridge: float | None = None,
    iters: int = 100,
    ties: str = "half",
) -> dict[str, float]:
    """Maximum-likelihood Bradley-Terry ratings (Newton's method), centred on `init`.

    ridge=None: none when the MLE exists (the exact MLE), else RIDGE; a number forces that ridge."""
    import numpy as np

    votes = counted(votes, ties)
    names = models or sorted({v["model_a"] for v in votes} | {v["model_b"] for v in votes})
    if ridge is None:
        ridge = 0.0 if mle_exists(votes, names) else RIDGE
    index = {m: j for j, m in enumerate(names)}
    n = len(names)
    a = np.array([index[v["model_a"]] for v in votes], dtype=int)
    b = np.array([index[v["model_b"]] for v in votes], dtype=int)
    y = np.array([_score_a(v["winner"]) for v in votes], dtype=float)  # a draw: half a win each way
    c = math.log(BASE) / SCALE  # logistic slope per rating point

    def nll(beta):
        d = beta[a] - beta[b]
        return float(np.sum(np.logaddexp(0, -d) + (1 - y) * d) + 0.5 * ridge * beta @ beta)

    beta = np.zeros(n)
    centre = np.full((n, n), 1.0 / n)  # fixes the free offset: the Hessian is singular along (1, ..., 1)
    for _ in range(iters):
        if not len(y):
            break
        p = 1 / (1 + np.exp(-(beta[a] - beta[b])))
        grad = np.bincount(a, y - p, n) - np.bincount(b, y - p, n) - ridge * beta
        w = p * (1 - p)
        hess = np.zeros((n, n))
        np.add.at(hess, (a, a), w)
        np.add.at(hess, (b, b), w)
        np.add.at(hess, (a, b), -w)
        np.add.at(hess, (b, a), -w)
        hess += ridge * np.eye(n) + centre
        step = np.linalg.solve(hess, grad)
        before, t = nll(beta), 1.0
        while t > 1e-8 and nll(beta + t * step) > before + 1e-12 * abs(before):
            t /= 2  # damped Newton: never a step that lowers the likelihood
        beta += t * step
        if np.abs(t * step).max() < 1e-12:
            break
    beta -= beta.mean()
    return {m: init + float(beta[j]) / c for m, j in index.items()}


def ratings(votes, *, models=None, k: float = K, rounds: int = 200, seed: int = 0, ties: str = "half"):
    """Elo and Bradley-Terry ratings with bootstrap 95% intervals; an ArenaResult.

    ties="half" (FastChat's): a tie or both-bad vote is half a win each way; "drop": left out."""
    import numpy as np

    from ..provenance import attach, flags_of
    from .leaderboard import record
    from .results import ArenaResult

    flags = flags_of(locals())

    if not isinstance(rounds, int) or rounds < 0:
        raise ConfigError(f"rounds must be an integer >= 0 (got {rounds!r})")
    if k <= 0:
        raise ConfigError(f"K must be > 0 (got {k})")
    _check_ties(ties)
    given = check_votes(votes, models)
    names = sorted({v["model_a"] for v in given} | {v["model_b"] for v in given})
    votes = counted(given, ties)
    if not votes:
        raise DataError("every vote is a tie or both-bad, and ties='drop' leaves none to rate")
    played = {m: sum(m in (v["model_a"], v["model_b"]) for v in votes) for m in names}
    few = sorted(m for m, n in played.items() if n < MIN_GAMES)
    if few:  # one game: its rating is a ridge artefact and every bootstrap resample repeats it
        raise DataError(
            f"too few votes to rate {', '.join(few)} ({', '.join(str(played[m]) for m in few)} "
            f"counted game(s); at least {MIN_GAMES} per model): collect more votes or leave it out"
        )
    elo, bt = online_elo(votes, k), bradley_terry(votes, names)
    rng = random.Random(seed)
    samples_elo, samples_bt = {m: [] for m in names}, {m: [] for m in names}
    for _ in range(rounds):
        sample = [votes[rng.randrange(len(votes))] for _ in votes]
        e = online_elo(sample, k)
        t = bradley_terry(sample, names)
        for m in names:
            samples_elo[m].append(e.get(m, INIT))
            samples_bt[m].append(t[m])
    games = {m: 0 for m in names}
    wins = {m: 0.0 for m in names}
    for v in votes:
        games[v["model_a"]] += 1
        games[v["model_b"]] += 1
        s = _score_a(v["winner"])
        wins[v["model_a"]] += s
        wins[v["model_b"]] += 1 - s

    def interval(samples, point):
        if not samples:
            return point, point
        low, high = np.percentile(samples, [2.5, 97.5])
        return float(low), float(high)

    elo = {m: elo.get(m, INIT) for m in names}
    table = []
    for m in names:
        elo_low, elo_high = interval(samples_elo[m], elo[m])
        bt_low, bt_high = interval(samples_bt[m], bt[m])
        table.append(
            {
                "model": m,
                "elo": elo[m],
                "elo_low": elo_low,
                "elo_high": elo_high,
                "bt": bt[m],
                "bt_low": bt_low,
                "bt_high": bt_high,
                "games": games[m],
                "win_rate": wins[m] / games[m] if games[m] else float("nan"),
            }
        )
    table.sort(key=lambda r: -r["bt"])
    outcomes = {w: sum(v["winner"] == w for v in given) for w in ("a", "b", "tie", "both_bad")}
    result = ArenaResult(table, len(given), rounds, outcomes)
    attach(result, data=given, seed=seed, flags=flags)  # the votes are the model: only their fingerprint
    record(result)
    return result


def battles(prompts, models, *, max_new_tokens: int = 64, template: str | None = None) -> list[dict]:
    """Answers from each model to each prompt, as arena battles {"prompt", "responses": {model: text}};
    each model answers under its own template unless `template` names one for all."""
    from ..lm import resolve

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts or len(models) < 2:
        raise ConfigError("a battle needs at least one prompt and two models")
    loaded = {lm.name: lm for lm in map(resolve, models)}
    return [
        {
            "prompt": p,
            "responses": {
                name: lm.generate(p, template=template, max_new_tokens=max_new_tokens)[0]
                for name, lm in loaded.items()
            },
        }
        for p in prompts
    ]
