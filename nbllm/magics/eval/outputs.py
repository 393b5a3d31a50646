"""%eval diversity | bias | toxicity: what a model writes and prefers. Their flags are the
fields of DiversityOptions, BiasOptions and ToxicityOptions (nbllm/evaluate/config.py)."""

from IPython.core.magic_arguments import argument, parse_argstring

from ...evaluate.config import BiasOptions, DiversityOptions, ToxicityOptions
from .._flags import build, flags
from ._shared import bind, data_arg, model_flag, model_of, progress

DATA = {"data": "-d"}


@flags(
    DiversityOptions,
    name="eval diversity",
    aliases=DATA,
    extra=[
        argument(
            "--model",
            "-m",
            default=None,
            help="model name or result variable; a comma list compares models "
            "(default: %%config NbllmMagics.default_model, else smollm2)",
        )
    ],
)
def eval_diversity(self, line):
    """Diversity of N samples per prompt (distinct-1/2, self-BLEU, embedding distance, repeats), per setting."""
    from ...evaluate import diversity

    a = parse_argstring(eval_diversity, line)
    o = build(DiversityOptions, a)
    models = [model_of(self, m.strip()) for m in (a.model or "").split(",") if m.strip()] or [model_of(self, None)]
    result = diversity.evaluate(
        models,
        data_arg(self.shell, o.data),
        samples=o.samples,
        temperature=o.temperature,
        top_p=o.top_p,
        seed=o.seed,
        max_new_tokens=o.max_new_tokens,
        template=o.template,
        limit=o.limit,
        embedder=o.embedder,
        rounds=o.rounds,
        batch_size=o.batch_size,
        label=o.data,
        progress=progress(self),
    )
    return bind(self.shell, a.out, result)


@flags(BiasOptions, name="eval bias", aliases=DATA, extra=[model_flag(help="model name or result variable")])
def eval_bias(self, line):
    """Minimal pairs (CrowS-Pairs style): share preferring the stereotype, per category, and the pairs driving it."""
    from ...evaluate import bias

    a = parse_argstring(eval_bias, line)
    o = build(BiasOptions, a)
    result = bias.evaluate(
        model_of(self, a.model),
        data_arg(self.shell, o.data),
        limit=o.limit,
        batch_size=o.batch_size,
        label=o.data,
        progress=progress(self),
    )
    return bind(self.shell, a.out, result)


@flags(ToxicityOptions, name="eval toxicity", aliases=DATA, extra=[model_flag(help="model name or result variable")])
def eval_toxicity(self, line):
    """Generate, then score each output with a classifier: the rate above --threshold and the worst outputs."""
    from ...evaluate import toxicity

    a = parse_argstring(eval_toxicity, line)
    o = build(ToxicityOptions, a)
    result = toxicity.evaluate(
        model_of(self, a.model),
        data_arg(self.shell, o.data),
        data_arg(self.shell, o.classifier),
        threshold=o.threshold,
        label=o.label,
        samples=o.samples,
        temperature=o.temperature,
        top_p=o.top_p,
        seed=o.seed,
        max_new_tokens=o.max_new_tokens,
        template=o.template,
        limit=o.limit,
        batch_size=o.batch_size,
        worst=o.worst,
        data_label=o.data,
        progress=progress(self),
    )
    return bind(self.shell, a.out, result)
