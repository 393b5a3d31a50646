"""%eval mc | gen | ppl | synthetic: scoring a model on questions, references, text, ICL tasks."""

from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .._common import model_value
from ._shared import bind, data_arg


@magic_arguments(name="eval mc")
@argument("--model", "-m", default="smollm2", help="registered model, folder, hub id or a model result variable")
@argument("--data", "-d", default="llm-quiz", help="JSON/JSONL {question, choices, answer} or {contexts, continuation, "
          "answer}, a variable, a shipped set (llm-quiz) or a benchmark (mmlu, hellaswag, truthfulqa_mc1, "
          "winogrande, arc_challenge, arc_easy)")
@argument("--shots", type=int, default=0, help="solved examples before each question (default 0)")
@argument("--template", default="qa", help="qa, plain, letters, or a string with {question}")
@argument("--limit", type=int, default=None, help="score only the first N questions")
@argument("--seed", type=int, default=0, help="which few-shot examples")
@argument("--naive", action="store_true", help="one forward pass per choice (the slow reference)")
@argument("--batch-size", type=int, default=None, help="questions per forward pass (default 8)")
@argument("--out", "-o", default=None, help="bind the result to this variable")
def eval_mc(self, line):
    """Multiple choice by log-likelihood: .score (acc, acc_norm), .details, .explain()."""
    from ...evaluate import mc

    a = parse_argstring(eval_mc, line)
    result = mc.evaluate(model_value(self.shell, a.model), data_arg(self.shell, a.data), shots=a.shots,
                         template=a.template, limit=a.limit, seed=a.seed, method="naive" if a.naive else "cached",
                         batch_size=mc.BATCH_SIZE if a.batch_size is None else a.batch_size, label=a.data)
    return bind(self.shell, a.out, result)


@magic_arguments(name="eval gen")
@argument("--model", "-m", default=None, help="model (default smollm2; none needed when records carry 'prediction')")
@argument("--data", "-d", default="word-problems", help="records with question/prompt and answer/reference")
@argument("--metric", default="em", choices=["em", "f1", "rougeL", "number"], help="how to score (default em)")
@argument("--max-new-tokens", type=int, default=None, help="generation budget")
@argument("--template", default="chat", choices=["chat", "alpaca", "none"], help="prompt template (default chat)")
@argument("--limit", type=int, default=None, help="score only the first N records")
@argument("--out", "-o", default=None, help="bind the result to this variable")
def eval_gen(self, line):
    """Generate and score against references: exact match, token F1, ROUGE-L or the final number."""
    from ...evaluate import generative

    a = parse_argstring(eval_gen, line)
    model = model_value(self.shell, a.model) if a.model else None
    result = generative.evaluate(model, data_arg(self.shell, a.data), metric=a.metric, template=a.template,
                                 max_new_tokens=a.max_new_tokens, limit=a.limit, label=a.data)
    return bind(self.shell, a.out, result)


@magic_arguments(name="eval ppl")
@argument("--model", "-m", default="smollm2", help="model name or result variable")
@argument("--data", "-d", required=True, help=".txt file, JSONL with 'text', or a variable (text or texts)")
@argument("--window", type=int, default=None, help="tokens per window (default min(context, 512))")
@argument("--stride", type=int, default=None, help="tokens between window starts (default window/2)")
@argument("--limit", type=int, default=None, help="only the first N texts")
@argument("--out", "-o", default=None, help="bind the result to this variable")
def eval_ppl(self, line):
    """Perplexity with a sliding window: each token scored once, with up to a window of context."""
    from ...evaluate import perplexity

    a = parse_argstring(eval_ppl, line)
    result = perplexity.evaluate(model_value(self.shell, a.model), data_arg(self.shell, a.data), window=a.window,
                                 stride=a.stride, limit=a.limit, label=a.data)
    return bind(self.shell, a.out, result)


@magic_arguments(name="eval synthetic")
@argument("--task", default="mqar", help="mqar, copy, palindrome, state or permutation")
@argument("--model", "-m", default="smollm2", help="model name or result variable")
@argument("--context-length", default="8", help="items per prompt; a comma list sweeps (e.g. 4,16,64)")
@argument("--n", type=int, default=16, help="prompts per context length")
@argument("--shots", type=int, default=2, help="solved examples in each prompt (default 2)")
@argument("--queries", type=int, default=4, help="mqar: keys asked per prompt")
@argument("--seed", type=int, default=0, help="which items")
@argument("--out", "-o", default=None, help="bind the result to this variable")
def eval_synthetic(self, line):
    """Synthetic in-context-learning tasks with exact answers; exact match per context length."""
    from ...errors import ConfigError
    from ...evaluate import synthetic

    a = parse_argstring(eval_synthetic, line)
    try:
        lengths = [int(x) for x in a.context_length.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--context-length takes integers like 8 or 4,16,64 (got {a.context_length})") from None
    result = synthetic.evaluate(model_value(self.shell, a.model), a.task, lengths, a.n, seed=a.seed, shots=a.shots,
                                queries=a.queries)
    return bind(self.shell, a.out, result)
