"""%rag / %%rag: index documents into a vector store (Chroma, FAISS, LanceDB), then retrieve and answer with citations.
Its flags are the fields of the options in nbllm/retrieval/config.py, one class per command."""

import re
from dataclasses import asdict, fields

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, parse_argstring

from ..retrieval.config import ExploreOptions, IndexOptions, Location, QueryOptions
from ._common import model_value, usage_errors, user_value
from ._flags import build, flags, option_names

# each command: its options class and the hand-written flags it takes besides
COMMANDS = {
    "index": (IndexOptions, {"out"}),
    "list": (Location, {"out"}),
    "drop": (Location, set()),
    "explore": (ExploreOptions, {"model", "out"}),
    "ask": (QueryOptions, {"model", "out"}),
}


def _index(self, options, words, model):
    from .. import rag

    if len(words) != 1:
        raise UsageError("%rag index takes one PATH, folder, 'glob' or variable, e.g. %rag index docs/")
    if words[0].isidentifier() and self.shell.user_ns.get(words[0], "") is None:
        raise UsageError(f"variable '{words[0]}' is None; give documents: a path, a list of texts or a DataFrame")
    variable = user_value(self.shell, words[0])
    return rag.index(variable if variable is not None else words[0], **asdict(options))


def _list(self, options, words, model):
    from .. import rag

    return rag.collections(**asdict(options))


def _drop(self, options, words, model):
    from .. import rag

    if len(words) != 1:
        raise UsageError("%rag drop takes one collection name, e.g. %rag drop default")
    print(rag.drop(words[0], **asdict(options)))


def _explore(self, options, words, model):
    from ..widgets.retrieval import explore

    return explore(**asdict(options), model=model)


def _ask(self, options, question, model):
    from .. import rag

    return rag.query(question, **asdict(options), model=model)


QUESTION_LINE = re.compile(r"^(\s*)%rag\s+(?!(?:index|list|drop|explore)\b)(\S.*\?)\s*$")


def question_line(lines: list[str]) -> list[str]:
    """`%rag What is LoRA?` on one line: IPython would take the trailing ? as a help request for
    `LoRA` and never call %rag. This input transformer (registered with the extension) runs first
    and turns such a line into the %rag call itself, question mark included."""
    out = []
    for line in lines:
        m = QUESTION_LINE.match(line.rstrip("\n"))
        if m:
            line = f"{m.group(1)}get_ipython().run_line_magic('rag', {m.group(2)!r})\n"
        out.append(line)
    return out


def command_options(args, command: str):
    """The command's options from the flags given; a flag it does not take is a UsageError."""
    cls, hand_written = COMMANDS[command]
    allowed = {f.name for f in fields(cls)} | hand_written
    wrong = [
        flag
        for dest, flag in option_names(rag_magic).items()
        if getattr(args, dest) is not None and dest not in allowed
    ]
    if wrong:
        what = f"%rag {command}" if command != "ask" else "a question"
        raise UsageError(f"{', '.join(wrong)} does not apply to {what}; see %rag?")
    return build(cls, args)


ROUTES = {"index": _index, "list": _list, "drop": _drop, "explore": _explore}


@flags(
    QueryOptions,
    IndexOptions,
    name="rag",
    aliases={"collection": "-c", "k": "-k"},
    labels={IndexOptions: "index"},
    extra=[
        argument("words", nargs="*", help="index PATH|GLOB|VAR, list, drop NAME, explore, or a question"),
        argument(
            "--model",
            "-m",
            default=None,
            help="generator: a causal LM name, or a variable holding an "
            "%%%%sft result (default: %%config NbllmMagics.default_model, else smollm2)",
        ),
    ],
)
@usage_errors
def rag_magic(self, line, cell=None):
    """Retrieval-augmented generation on Chroma, FAISS or LanceDB.

        %rag index PATH|GLOB|VAR [--collection NAME] [--chunk-size N] [--overlap N] [--embedder NAME]
                  [--distance l2|ip|cosine] [--persist DIR | --server URL] [--store chroma|faiss|lancedb]
                  [--index auto|flat|ann] [--strategy direct|sentence-window|auto-merging] [--window N]
                  [--child-size N]
        %%rag [--collection NAME] [--k N] [--model NAME|VAR] [--hybrid] [--rerank] [--exact] [--no-generate]
              [--strategy direct|sentence-window|auto-merging] [--merge-ratio F]
              [--rewrite multi-query|hyde] [--queries N] [--compress] [--compress-threshold F]
              [--cache] [--cache-threshold F]
        <question>
        %rag list | %rag drop NAME | %rag explore [--collection NAME]

    A question returns a RAGResult: .question, .hits, .contexts, .answer (citing chunks as [n]),
    .citations (by the model, or added by similarity when the model cites nothing), .latency
    (seconds: retrieve, generate, total) and .context_tokens. --rewrite: .rewrites (what the
    model wrote); --compress: .compression (tokens before, after, saved); --cache: .cache_hit,
    .cached_question, .cache_stats (nbllm.rag.clear_cache() forgets the cached answers).
    """
    args = parse_argstring(rag_magic, line)
    words = list(args.words)
    body = (cell or "").strip()
    command = words[0] if words and words[0] in ROUTES and cell is None else "ask"
    options = command_options(args, command)
    model = model_value(self.shell, args.model or self.default_model) if "model" in COMMANDS[command][1] else None
    if command == "ask":
        if words[:1] == ["ask"]:  # %rag ask QUESTION: the documented one-line form
            words = words[1:]
        if body and words:
            raise UsageError("give the question either in the cell or on the line, not both")
        question = body or " ".join(words)
        if not question:
            raise UsageError(
                "no question: write it in the cell below %%rag, or on the line as %rag ask QUESTION "
                "(a line ending in ? is IPython's help request: leave the ? off, or use the cell); "
                "or use %rag index PATH / list / drop NAME / explore"
            )
        result = _ask(self, options, question, model)
    else:
        result = ROUTES[command](self, options, words[1:], model)
    if args.out and result is not None:
        self.shell.user_ns[args.out] = result
    return result
