"""%%tokenize: how training sees one text or example. Its flags are TokenizeConfig's fields."""

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, parse_argstring

from ..config import TokenizeConfig
from ._common import parse_json_cell, usage_errors, user_value
from ._flags import build, flags, variable_name


@flags(
    TokenizeConfig,
    name="tokenize",
    exclude=("model",),
    aliases={"template": "-t"},
    after=[argument("--out", "-o", default=None, type=variable_name, help="also bind the result to this variable")],
    extra=[
        argument(
            "--model",
            "-m",
            default=None,
            help="registered model, local folder, hub id, or a variable holding "
            "a result with a .tokenizer (default: %%config NbllmMagics.default_model, else smollm2)",
        )
    ],
)
@usage_errors
def tokenize_magic(self, line, cell=""):
    """Tokenize the cell (plain text, or one JSON example) as training sees it.

    Shows each token, its id, the label (the next token: inputs shifted by one) and whether
    it counts in the loss. JSON examples: {"instruction", "input", "output"} (alpaca),
    {"messages": [...]} (chat) or {"text": ...}.
    """
    from .. import api

    args = parse_argstring(tokenize_magic, line)
    name = args.model or self.default_model or TokenizeConfig.model
    config = build(TokenizeConfig, args, model=name)
    body = (cell or "").strip("\n")
    if not body.strip():
        raise UsageError("the %%tokenize cell is empty; write text or one JSON example below the magic line")
    example = body
    if body.lstrip().startswith(("{", "[")) and config.template != "none":
        example = parse_json_cell(body, "the cell")
    holder = user_value(self.shell, name)
    tokenizer = getattr(holder, "tokenizer", None) if holder is not None else None
    if holder is not None and tokenizer is None:
        raise UsageError(f"variable '{name}' has no .tokenizer; pass a model name or a %%sft result")
    result = api.tokenize(
        example,
        model=name if tokenizer is None else f"{name} (variable)",
        template=config.template,
        max_length=config.max_length,
        train_on_prompt=config.train_on_prompt,
        tokenizer=tokenizer,
    )
    if args.out:
        self.shell.user_ns[args.out] = result
    return result
