"""%eval SUBCOMMAND ...: a dict routes each subcommand to a small parser + backend call.

%eval mc --model M --data PATH|NAME [--shots N] [--out VAR]
%eval gen --model M --data D --metric em|f1|rougeL|number
%eval ppl --model M --data PATH|VAR
%eval judge --data PATH|VAR --judge M
%eval triad --rag VAR [--judge M]
%eval arena --votes PATH|VAR        (--widget --battles PATH|VAR: vote yourself)
%eval contamination --train PATH|VAR --test PATH|VAR [--n 13]
%eval synthetic --task mqar --model M --context-length N --n K
%eval diversity --model M[,M2] --data PROMPTS --samples N --temperature T[,T2] [--seed S]
%eval bias --model M [--data PAIRS]
%eval toxicity --model M --data PROMPTS --classifier C [--threshold 0.5] [--label NAME]
%eval leaderboard [--csv PATH] [--markdown PATH] [--json PATH]
"""

from IPython.core.error import UsageError

from .._common import usage_errors
from . import judging, outputs, ratings, scoring

ROUTES = {
    "mc": scoring.eval_mc,
    "gen": scoring.eval_gen,
    "ppl": scoring.eval_ppl,
    "synthetic": scoring.eval_synthetic,
    "judge": judging.eval_judge,
    "triad": judging.eval_triad,
    "arena": ratings.eval_arena,
    "contamination": ratings.eval_contamination,
    "diversity": outputs.eval_diversity,
    "bias": outputs.eval_bias,
    "toxicity": outputs.eval_toxicity,
    "leaderboard": ratings.eval_leaderboard,
}


@usage_errors
def eval_magic(self, line):
    sub, _, rest = line.strip().partition(" ")
    if sub not in ROUTES:
        raise UsageError(f"%eval needs a subcommand: {', '.join(ROUTES)} (got {sub or 'nothing'}); see %eval?")
    return ROUTES[sub](self, rest)


eval_magic.__doc__ = (
    "Evaluate models: benchmark scoring, generative metrics, perplexity, LLM-as-judge, the RAG "
    "triad, arena ratings, contamination, synthetic tasks, diversity, bias, toxicity and a "
    "leaderboard of everything run.\n"
    + __doc__.split("\n\n", 1)[1]
    + "\n"
    + "\n".join(f.__doc__ for f in ROUTES.values())
)
