"""%eval mc | gen | ppl | synthetic: scoring a model on questions, references, text, ICL tasks.
Their flags are the fields of MCOptions, GenOptions, ... (nbllm/evaluate/config.py)."""

from IPython.core.magic_arguments import parse_argstring

from ...evaluate.config import GenOptions, MCOptions, PerplexityOptions, SyntheticOptions
from .._common import model_value
from .._flags import build, flags
from ._shared import bind, data_arg, model_flag, model_of, progress

DATA = {"data": "-d"}


@flags(MCOptions, name="eval mc", aliases=DATA, extra=[model_flag()])
def eval_mc(self, line):
    """Multiple choice by log-likelihood: .score (acc, acc_norm), .details, .explain()."""
    from ...evaluate import mc

    a = parse_argstring(eval_mc, line)
    o = build(MCOptions, a)
    result = mc.evaluate(
        model_of(self, a.model),
        data_arg(self.shell, o.data),
        shots=o.shots,
        template=o.template,
        limit=o.limit,
        seed=o.seed,
        method="naive" if o.naive else "cached",
        batch_size=o.batch_size,
        label=o.data,
        progress=progress(self),
    )
    return bind(self.shell, a.out, result)


@flags(
    GenOptions,
    name="eval gen",
    aliases=DATA,
    extra=[model_flag("smollm2; none needed when records carry 'prediction'", "model")],
)
def eval_gen(self, line):
    """Generate and score against references: exact match, token F1, ROUGE-L or the final number."""
    from ...evaluate import generative

    a = parse_argstring(eval_gen, line)
    o = build(GenOptions, a)
    name = a.model or self.default_model  # none: records that carry 'prediction' need no model
    result = generative.evaluate(
        model_value(self.shell, name) if name else None,
        data_arg(self.shell, o.data),
        metric=o.metric,
        template=o.template,
        max_new_tokens=o.max_new_tokens,
        limit=o.limit,
        label=o.data,
        progress=progress(self),
    )
    return bind(self.shell, a.out, result)


@flags(PerplexityOptions, name="eval ppl", aliases=DATA, extra=[model_flag(help="model name or result variable")])
def eval_ppl(self, line):
    """Perplexity with a sliding window: each token scored once, with up to a window of context."""
    from ...evaluate import perplexity

    a = parse_argstring(eval_ppl, line)
    o = build(PerplexityOptions, a)
    result = perplexity.evaluate(
        model_of(self, a.model),
        data_arg(self.shell, o.data),
        window=o.window,
        stride=o.stride,
        limit=o.limit,
        label=o.data,
        progress=progress(self),
    )
    return bind(self.shell, a.out, result)


@flags(SyntheticOptions, name="eval synthetic", extra=[model_flag(help="model name or result variable")])
def eval_synthetic(self, line):
    """Synthetic in-context-learning tasks with exact answers; exact match per context length."""
    from ...errors import ConfigError
    from ...evaluate import synthetic

    a = parse_argstring(eval_synthetic, line)
    o = build(SyntheticOptions, a)
    try:
        lengths = [int(x) for x in o.context_length.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--context-length takes integers like 8 or 4,16,64 (got {o.context_length})") from None
    result = synthetic.evaluate(
        model_of(self, a.model),
        o.task,
        lengths,
        o.n,
        seed=o.seed,
        shots=o.shots,
        queries=o.queries,
        template=o.template,
        progress=progress(self),
    )
    return bind(self.shell, a.out, result)
