"""%eval arena | contamination | leaderboard."""

from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._shared import bind, data_arg


@magic_arguments(name="eval arena")
@argument("--votes", "-v", default="arena-votes", help="JSONL of {model_a, model_b, winner} or a variable "
          "(default: the shipped arena-votes); with --widget, the file new votes are appended to")
@argument("--models", default=None, help="comma list of allowed model names (votes naming others are an error)")
@argument("--k", type=float, default=4.0, help="Elo K factor (default 4, as LMSYS)")
@argument("--rounds", type=int, default=200, help="bootstrap rounds for the 95%% intervals (default 200)")
@argument("--seed", type=int, default=0, help="bootstrap and widget seed")
@argument("--widget", action="store_true", help="open the voting widget instead of computing ratings")
@argument("--battles", default=None, help="with --widget: records {prompt, responses: {model: text}}")
@argument("--out", "-o", default=None, help="bind the result (or the widget) to this variable")
def eval_arena(self, line):
    """Arena: Elo (online) and Bradley-Terry ratings with bootstrap intervals, or a voting widget."""
    from IPython.core.error import UsageError

    from ...evaluate import arena

    a = parse_argstring(eval_arena, line)
    if a.widget:
        from ...widgets.arena import ArenaWidget

        if not a.battles or a.votes == "arena-votes":
            raise UsageError("--widget needs --battles PATH|VAR and --votes FILE.jsonl to append votes to")
        return bind(self.shell, a.out, ArenaWidget(data_arg(self.shell, a.battles), a.votes, seed=a.seed))
    models = [m.strip() for m in a.models.split(",") if m.strip()] if a.models else None
    result = arena.ratings(data_arg(self.shell, a.votes), models=models, k=a.k, rounds=a.rounds, seed=a.seed)
    return bind(self.shell, a.out, result)


@magic_arguments(name="eval contamination")
@argument("--train", required=True, help="training data: file, variable (records or text) or shipped set")
@argument("--test", required=True, help="eval set: file, variable or shipped set")
@argument("--n", type=int, default=13, help="n-gram size in words (default 13)")
@argument("--field", default=None, help="eval-set field to check (default: every text field)")
@argument("--train-field", default=None, help="training-data field (default: every text field)")
@argument("--out", "-o", default=None, help="bind the result to this variable")
def eval_contamination(self, line):
    """n-gram overlap between training data and an eval set: spans, rate, and .clean records."""
    from ...evaluate import contamination

    a = parse_argstring(eval_contamination, line)
    result = contamination.check(data_arg(self.shell, a.train), data_arg(self.shell, a.test), n=a.n,
                                 field=a.field, train_field=a.train_field)
    return bind(self.shell, a.out, result)


@magic_arguments(name="eval leaderboard")
@argument("--csv", default=None, help="also write the table to this CSV file")
@argument("--markdown", default=None, help="also write the table to this markdown file")
@argument("--task", default=None, help="only rows of this task")
@argument("--clear", action="store_true", help="forget every recorded result")
@argument("--out", "-o", default=None, help="bind the table to this variable")
def eval_leaderboard(self, line):
    """Every eval result run in this session: model, task, metric, value, n, ci_low, ci_high."""
    from ...evaluate import leaderboard

    a = parse_argstring(eval_leaderboard, line)
    if a.clear:
        leaderboard.clear()
    return bind(self.shell, a.out, leaderboard.leaderboard(csv=a.csv, markdown=a.markdown, task=a.task))
