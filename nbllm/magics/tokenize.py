"""%%tokenize: how training sees one text or example."""

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._common import parse_json_cell, usage_errors, user_value


@magic_arguments()
@argument("--model", "-m", default="smollm2", help="registered model, local folder, hub id, or a variable "
          "holding a result with a .tokenizer (default: smollm2)")
@argument("--template", "-t", default="auto", choices=["auto", "alpaca", "chat", "none"],
          help="prompt template; auto picks from the example's keys (text -> none)")
@argument("--max-length", type=int, default=None, help="truncate to this many tokens")
@argument("--train-on-prompt", action="store_true", help="count prompt tokens in the loss too")
@argument("--out", "-o", default=None, help="also bind the result to this variable")
@usage_errors
def tokenize_magic(self, line, cell=""):
    """Tokenize the cell (plain text, or one JSON example) as training sees it.

    Shows each token, its id, the label (the next token: inputs shifted by one) and whether
    it counts in the loss. JSON examples: {"instruction", "input", "output"} (alpaca),
    {"messages": [...]} (chat) or {"text": ...}.
    """
    from .. import api

    args = parse_argstring(tokenize_magic, line)
    body = (cell or "").strip("\n")
    if not body.strip():
        raise UsageError("the %%tokenize cell is empty; write text or one JSON example below the magic line")
    example = body
    if body.lstrip().startswith(("{", "[")) and args.template != "none":
        example = parse_json_cell(body, "the cell")
    holder = user_value(self.shell, args.model)
    tokenizer = getattr(holder, "tokenizer", None) if holder is not None else None
    if holder is not None and tokenizer is None:
        raise UsageError(f"variable '{args.model}' has no .tokenizer; pass a model name or a %%sft result")
    result = api.tokenize(example, model=args.model if tokenizer is None else f"{args.model} (variable)",
                          template=args.template, max_length=args.max_length,
                          train_on_prompt=args.train_on_prompt, tokenizer=tokenizer)
    if args.out:
        self.shell.user_ns[args.out] = result
    return result
