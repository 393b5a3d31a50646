"""%eval judge | triad: an LLM (or embeddings) scoring responses and RAG answers.
Their flags are the fields of JudgeOptions and TriadOptions (nbllm/evaluate/config.py)."""

from IPython.core.magic_arguments import argument, parse_argstring

from ...evaluate.config import JudgeOptions, TriadOptions
from .._common import model_value
from .._flags import build, flags
from ._shared import bind, data_arg, key_env, progress


@flags(JudgeOptions, name="eval judge", aliases={"data": "-d", "judge": "-j"})
def eval_judge(self, line):
    """LLM-as-judge 0-100 with an on-disk cache; mean with a 95% interval, unparsable replies counted."""
    from ...evaluate import judge

    a = parse_argstring(eval_judge, line)
    o = build(JudgeOptions, a)
    who = o.judge if o.judge_url else model_value(self.shell, o.judge)
    result = judge.evaluate(
        data_arg(self.shell, o.data),
        who,
        url=o.judge_url,
        api_key_env=key_env(o.api_key_env),
        limit=o.limit,
        cache=o.cache,
        label=o.data,
        progress=progress(self),
    )
    return bind(self.shell, a.out, result)


@flags(
    TriadOptions,
    name="eval triad",
    aliases={"judge": "-j"},
    extra=[
        argument(
            "--rag",
            nargs="+",
            required=True,
            help="variables holding %%%%rag results (or lists of them); "
            "several variables = several configurations on one leaderboard",
        )
    ],
)
def eval_triad(self, line):
    """RAG triad: context relevance, groundedness (unsupported sentences highlighted), answer relevance."""
    from IPython.core.error import UsageError

    from ...evaluate import triad

    a = parse_argstring(eval_triad, line)
    o = build(TriadOptions, a)
    missing = [v for v in a.rag if v not in self.shell.user_ns]
    if missing:
        raise UsageError(f"no variable '{missing[0]}'; run %%rag --out {missing[0]} first")
    rag = {v: self.shell.user_ns[v] for v in a.rag} if len(a.rag) > 1 else self.shell.user_ns[a.rag[0]]
    judge = None if o.judge is None else (o.judge if o.judge_url else model_value(self.shell, o.judge))
    result = triad.evaluate(
        rag,
        judge=judge,
        url=o.judge_url,
        api_key_env=key_env(o.api_key_env),
        threshold=o.threshold,
        progress=progress(self),
    )
    return bind(self.shell, a.out, result)
