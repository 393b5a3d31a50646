"""Arena ratings from pairwise votes, as Chatbot Arena computes them.

A vote is {"model_a", "model_b", "winner": "a" | "b" | "tie" | "both_bad"}; both_bad counts
as a tie. Two ratings on the same 400-point logistic scale (base 10, a 400-point gap means
10:1 odds):

    Elo (online)      one update per vote, in order: r_a += K (s_a - E_a), K = 4 as LMSYS uses;
                      depends on the order of the votes
    Bradley-Terry     the maximum-likelihood ratings for all votes at once (logistic regression,
                      ties as half a win each way); order-free, what the Arena reports now

Both get 95% intervals from a seeded bootstrap over the votes.
"""

from __future__ import annotations

import math
import random

from ..errors import ConfigError, DataError

SCALE, BASE, INIT, K = 400.0, 10.0, 1000.0, 4.0
WINNERS = {"a": "a", "model_a": "a", "b": "b", "model_b": "b", "tie": "tie", "both_bad": "both_bad",
           "bothbad": "both_bad", "tie (bothbad)": "both_bad", "both bad": "both_bad"}


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


def online_elo(votes: list[dict], k: float = K, init: float = INIT) -> dict[str, float]:
    """Elo with one update per vote, in the given order."""
    rating: dict[str, float] = {}
    for v in votes:
        a, b = v["model_a"], v["model_b"]
        ra, rb = rating.setdefault(a, init), rating.setdefault(b, init)
        expected_a = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        s = _score_a(v["winner"])
        rating[a] = ra + k * (s - expected_a)
        rating[b] = rb + k * ((1 - s) - (1 - expected_a))
    return rating


def bradley_terry(votes: list[dict], models: list[str] | None = None, init: float = INIT,
                  ridge: float = 1e-4, iters: int = 100) -> dict[str, float]:
    """Maximum-likelihood Bradley-Terry ratings (Newton's method), centred on `init`."""
    import numpy as np

    names = models or sorted({v["model_a"] for v in votes} | {v["model_b"] for v in votes})
    index = {m: j for j, m in enumerate(names)}
    a = np.array([index[v["model_a"]] for v in votes])
    b = np.array([index[v["model_b"]] for v in votes])
    y = np.array([_score_a(v["winner"]) for v in votes])  # a tie is half a win each way
    c = math.log(BASE) / SCALE  # logistic slope per rating point
    beta = np.zeros(len(names))
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(beta[a] - beta[b])))
        grad = np.bincount(a, y - p, len(names)) - np.bincount(b, y - p, len(names)) - ridge * beta
        w = p * (1 - p)
        hess = np.zeros((len(names), len(names)))
        np.add.at(hess, (a, a), w)
        np.add.at(hess, (b, b), w)
        np.add.at(hess, (a, b), -w)
        np.add.at(hess, (b, a), -w)
        hess += ridge * np.eye(len(names))
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    beta -= beta.mean()
    return {m: init + float(beta[j]) / c for m, j in index.items()}


def ratings(votes, *, models=None, k: float = K, rounds: int = 200, seed: int = 0):
    """Elo and Bradley-Terry ratings with bootstrap 95% intervals; an ArenaResult."""
    import numpy as np

    from .leaderboard import record
    from .results import ArenaResult

    if not isinstance(rounds, int) or rounds < 0:
        raise ConfigError(f"rounds must be an integer >= 0 (got {rounds!r})")
    if k <= 0:
        raise ConfigError(f"K must be > 0 (got {k})")
    votes = check_votes(votes, models)
    names = sorted({v["model_a"] for v in votes} | {v["model_b"] for v in votes})
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

    table = []
    for m in names:
        elo_low, elo_high = interval(samples_elo[m], elo[m])
        bt_low, bt_high = interval(samples_bt[m], bt[m])
        table.append({"model": m, "elo": elo[m], "elo_low": elo_low, "elo_high": elo_high, "bt": bt[m],
                      "bt_low": bt_low, "bt_high": bt_high, "games": games[m], "win_rate": wins[m] / games[m]})
    table.sort(key=lambda r: -r["bt"])
    outcomes = {w: sum(v["winner"] == w for v in votes) for w in ("a", "b", "tie", "both_bad")}
    result = ArenaResult(table, len(votes), rounds, outcomes)
    record(result)
    return result


def battles(prompts, models, *, max_new_tokens: int = 64, template: str = "chat") -> list[dict]:
    """Answers from each model to each prompt, as arena battles {"prompt", "responses": {model: text}}."""
    from ..generation import generate
    from .common import resolve_model

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts or len(models) < 2:
        raise ConfigError("a battle needs at least one prompt and two models")
    loaded = {(m if isinstance(m, str) else resolve_model(m)[2]): resolve_model(m)[:2] for m in models}
    return [{"prompt": p, "responses": {name: generate(lm, tok, p, template=template, max_new_tokens=max_new_tokens)
                                        for name, (lm, tok) in loaded.items()}} for p in prompts]
