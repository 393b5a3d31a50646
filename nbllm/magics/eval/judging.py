"""%eval judge | triad: an LLM (or embeddings) scoring responses and RAG answers."""

from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .._common import model_value
from ._shared import bind, data_arg, key_env


@magic_arguments(name="eval judge")
@argument("--data", "-d", required=True, help="records with prompt, response (or responses: {model: text}) and "
          "an optional reference; a file, variable or the shipped judge-responses")
@argument("--judge", "-j", default="smollm2", help="judge model: registered name or variable; with --judge-url, "
          "the endpoint's model name")
@argument("--judge-url", default=None, help="OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
@argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key (none: no key)")
@argument("--limit", type=int, default=None, help="only the first N records")
@argument("--no-cache", action="store_true", help="ask the judge again instead of reading the cache")
@argument("--out", "-o", default=None, help="bind the result to this variable")
def eval_judge(self, line):
    """LLM-as-judge 0-100 with an on-disk cache; mean with a 95% interval, unparsable replies counted."""
    from ...evaluate import judge

    a = parse_argstring(eval_judge, line)
    who = a.judge if a.judge_url else model_value(self.shell, a.judge)
    result = judge.evaluate(data_arg(self.shell, a.data), who, url=a.judge_url, api_key_env=key_env(a.api_key_env),
                            limit=a.limit, cache=not a.no_cache, label=a.data)
    return bind(self.shell, a.out, result)


@magic_arguments(name="eval triad")
@argument("--rag", nargs="+", required=True, help="variables holding %%rag results (or lists of them); several "
          "variables = several configurations on one leaderboard")
@argument("--judge", "-j", default=None, help="judge model instead of minilm embeddings")
@argument("--judge-url", default=None, help="OpenAI-compatible base URL for the judge")
@argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key (none: no key)")
@argument("--threshold", type=float, default=None, help="embedding cosine for a supported sentence (default "
          "0.45, calibrated by benchmarks/triad_threshold.py); its numbers must also be in the contexts")
@argument("--out", "-o", default=None, help="bind the result to this variable")
def eval_triad(self, line):
    """RAG triad: context relevance, groundedness (unsupported sentences highlighted), answer relevance."""
    from IPython.core.error import UsageError

    from ...evaluate import triad

    a = parse_argstring(eval_triad, line)
    missing = [v for v in a.rag if v not in self.shell.user_ns]
    if missing:
        raise UsageError(f"no variable '{missing[0]}'; run %%rag --out {missing[0]} first")
    rag = {v: self.shell.user_ns[v] for v in a.rag} if len(a.rag) > 1 else self.shell.user_ns[a.rag[0]]
    judge = None if a.judge is None else (a.judge if a.judge_url else model_value(self.shell, a.judge))
    result = triad.evaluate(rag, judge=judge, url=a.judge_url, api_key_env=key_env(a.api_key_env),
                            threshold=a.threshold)
    return bind(self.shell, a.out, result)
