"""%rag / %%rag: index documents into Chroma, then retrieve and answer with citations."""

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._common import model_value, usage_errors, user_value

# which flags each subcommand takes (the rest are for questions)
INDEX_FLAGS = {"collection", "chunk_size", "overlap", "unit", "embedder", "distance", "text_field", "persist",
               "server", "out"}
ASK_FLAGS = {"collection", "k", "model", "hybrid", "rerank", "reranker", "exact", "distance", "no_generate",
             "where", "max_new_tokens", "embedder", "persist", "server", "out"}
FLAGS = {"index": INDEX_FLAGS, "list": {"persist", "server", "out"}, "drop": {"persist", "server"},
         "explore": {"collection", "k", "model", "persist", "server", "out"}, "ask": ASK_FLAGS}
DEFAULTS = {"hybrid": False, "rerank": False, "exact": False, "no_generate": False}


def _index(self, args, words):
    from .. import rag

    if len(words) != 1:
        raise UsageError("%rag index takes one PATH, folder, 'glob' or variable, e.g. %rag index docs/")
    variable = user_value(self.shell, words[0])
    return rag.index(variable if variable is not None else words[0], args.collection or "default",
                     chunk_size=args.chunk_size, overlap=args.overlap, unit=args.unit or "tokens",
                     embedder=args.embedder or "minilm", distance=args.distance or "l2", text_field=args.text_field,
                     persist=args.persist, server=args.server)


def _list(self, args, words):
    from .. import rag

    return rag.collections(args.persist, args.server)


def _drop(self, args, words):
    from .. import rag

    if len(words) != 1:
        raise UsageError("%rag drop takes one collection name, e.g. %rag drop default")
    print(rag.drop(words[0], args.persist, args.server))


def _explore(self, args, words):
    from .. import rag

    return rag.explore(args.collection or "default", k=args.k or 4, model=model_value(self.shell, args.model),
                       persist=args.persist, server=args.server)


def _ask(self, args, question):
    from .. import rag

    return rag.query(question, args.collection or "default", k=args.k if args.k is not None else 4,
                     model=model_value(self.shell, args.model), generate=not args.no_generate, hybrid=args.hybrid,
                     rerank=args.rerank, reranker=args.reranker, exact=args.exact, where=args.where,
                     distance=args.distance, embedder=args.embedder, max_new_tokens=args.max_new_tokens or 64,
                     persist=args.persist, server=args.server)


ROUTES = {"index": _index, "list": _list, "drop": _drop, "explore": _explore}


@magic_arguments()
@argument("words", nargs="*", help="index PATH|GLOB|VAR, list, drop NAME, explore, or a question")
@argument("--collection", "-c", default=None, help="collection name (default: default)")
@argument("--k", "-k", type=int, default=None, help="chunks to retrieve (default 4)")
@argument("--model", "-m", default=None, help="generator: a causal LM name, or a variable holding an %%%%sft "
          "result (default smollm2)")
@argument("--hybrid", action="store_true", help="fuse BM25 full-text results with dense ones (RRF)")
@argument("--rerank", action="store_true", help="re-score the top candidates (the LM's likelihood of the "
          "question, or --reranker)")
@argument("--reranker", default=None, help="a cross-encoder (folder or hub id) for --rerank")
@argument("--exact", action="store_true", help="brute-force search: l2, ip and cosine side by side, with HNSW ranks")
@argument("--no-generate", action="store_true", help="retrieve only, no answer")
@argument("--where", default=None, help="metadata filter: source=lora.md (key=value,...) or JSON "
          "'{\"source\": \"lora.md\"}'")
@argument("--max-new-tokens", type=int, default=None, help="answer length limit (default 64)")
@argument("--chunk-size", type=int, default=None, help="index: chunk size (default 128 tokens / 512 chars)")
@argument("--overlap", type=int, default=None, help="index: overlap between chunks (default 16 tokens / 64 chars)")
@argument("--unit", default=None, choices=["tokens", "chars"], help="index: sizes in embedder tokens or characters")
@argument("--embedder", default=None, help="index: minilm (default), an encoder folder or a hub id")
@argument("--distance", default=None, choices=["l2", "ip", "cosine"], help="index: the collection's distance "
          "(default l2); question: search by another distance (exact)")
@argument("--text-field", default=None, help="index: the field holding the text in csv/json/jsonl/records")
@argument("--persist", default=None, help="a folder for a persistent Chroma store")
@argument("--server", default=None, help="a running Chroma server, e.g. http://127.0.0.1:8000")
@argument("--out", "-o", default=None, help="bind the result to this variable")
@usage_errors
def rag_magic(self, line, cell=None):
    """Retrieval-augmented generation on Chroma.

        %rag index PATH|GLOB|VAR [--collection NAME] [--chunk-size N] [--overlap N] [--embedder NAME]
                  [--distance l2|ip|cosine] [--persist DIR | --server URL]
        %%rag [--collection NAME] [--k N] [--model NAME|VAR] [--hybrid] [--rerank] [--exact] [--no-generate]
        <question>
        %rag list | %rag drop NAME | %rag explore [--collection NAME]

    A question returns a RAGResult: .question, .hits, .contexts, .answer (citing chunks as [n]),
    .citations (by the model, or added by similarity when the model cites nothing).
    """
    args = parse_argstring(rag_magic, line)
    words = list(args.words)
    body = (cell or "").strip()
    command = words[0] if words and words[0] in ROUTES and cell is None else "ask"
    given = {k for k, v in vars(args).items() if k != "words" and v not in (None, DEFAULTS.get(k))}
    wrong = sorted(given - FLAGS[command])
    if wrong:
        shown = ", ".join("--" + w.replace("_", "-") for w in wrong)
        what = f"%rag {command}" if command != "ask" else "a question"
        raise UsageError(f"{shown} does not apply to {what}; see %rag?")
    if command == "ask":
        if body and words:
            raise UsageError("give the question either in the cell or on the line, not both")
        question = body or " ".join(words)
        if not question:
            raise UsageError("no question: write it in the cell below %%rag, or use %rag index PATH / list / "
                             "drop NAME / explore")
        result = _ask(self, args, question)
    else:
        result = ROUTES[command](self, args, words[1:])
    if args.out and result is not None:
        self.shell.user_ns[args.out] = result
    return result
