"""%eval arena | contamination | leaderboard. Their flags are the fields of ArenaOptions,
ContaminationOptions and LeaderboardOptions (nbllm/evaluate/config.py)."""

from IPython.core.magic_arguments import parse_argstring

from ...evaluate.config import ArenaOptions, ContaminationOptions, LeaderboardOptions
from .._flags import build, flags
from ._shared import bind, data_arg


@flags(ArenaOptions, name="eval arena", aliases={"votes": "-v"})
def eval_arena(self, line):
    """Arena: Elo (online) and Bradley-Terry ratings with bootstrap intervals, or a voting widget."""
    from IPython.core.error import UsageError

    from ...evaluate import arena

    a = parse_argstring(eval_arena, line)
    o = build(ArenaOptions, a)
    if o.widget:
        from ...widgets.arena import ArenaWidget

        if not o.battles or o.votes == ArenaOptions.votes:
            raise UsageError("--widget needs --battles PATH|VAR and --votes FILE.jsonl to append votes to")
        return bind(self.shell, a.out, ArenaWidget(data_arg(self.shell, o.battles), o.votes, seed=o.seed))
    models = [m.strip() for m in o.models.split(",") if m.strip()] if o.models else None
    result = arena.ratings(
        data_arg(self.shell, o.votes), models=models, k=o.k, rounds=o.rounds, seed=o.seed, ties=o.ties
    )
    return bind(self.shell, a.out, result)


@flags(ContaminationOptions, name="eval contamination")
def eval_contamination(self, line):
    """n-gram overlap between training data and an eval set: spans, rate, and .clean records."""
    from ...evaluate import contamination

    a = parse_argstring(eval_contamination, line)
    o = build(ContaminationOptions, a)
    result = contamination.check(
        data_arg(self.shell, o.train), data_arg(self.shell, o.test), n=o.n, field=o.field, train_field=o.train_field
    )
    return bind(self.shell, a.out, result)


@flags(LeaderboardOptions, name="eval leaderboard")
def eval_leaderboard(self, line):
    """Every eval result run in this session: model, task, metric, value, n, ci_low, ci_high."""
    from ...evaluate import leaderboard

    a = parse_argstring(eval_leaderboard, line)
    o = build(LeaderboardOptions, a)
    if o.clear:
        leaderboard.clear()
    return bind(self.shell, a.out, leaderboard.leaderboard(csv=o.csv, markdown=o.markdown, task=o.task, json=o.json))
