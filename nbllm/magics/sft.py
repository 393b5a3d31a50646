"""%%sft: fine-tune a model on instruction, chat, LIMA-style, plain-text, classification or
preference data. Its flags are SFTConfig's and RunOptions' fields (nbllm/config.py)."""

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, parse_argstring

from ..config import RunOptions, SFTConfig
from ._common import model_value, usage_errors, user_value
from ._flags import build, flags, given


@flags(
    SFTConfig,
    RunOptions,
    name="sft",
    exclude=("model", "data"),
    aliases={"format": "-f"},
    extra=[
        argument(
            "--model",
            "-m",
            default=None,
            help="registered model, folder, hub id, or a variable holding a "
            "model result (default: %%config NbllmMagics.default_model, else smollm2; with --resume, the "
            "checkpoint's)",
        ),
        argument(
            "--data",
            "-d",
            default=None,
            help="file (.json/.jsonl/.csv/.parquet), shipped set (instructions, "
            "lima, sms, preferences), hub dataset id, or a variable (list of dicts, DataFrame, Dataset)",
        ),
    ],
)
@usage_errors
def sft_magic(self, line, cell=None):
    """Fine-tune a causal LM and show a live loss curve; the result has .model, .tokenizer,
    .history, .samples and .generate(prompt).

    Data comes from --data or as JSONL in the cell body. Loss counts response tokens only
    unless --train-on-prompt. Ctrl-C or the Stop button ends after the current step and
    keeps the model.
    """
    from ..data import parse_jsonl
    from ..train.run import sft
    from ..widgets.training import progress_for

    args = parse_argstring(sft_magic, line)
    body = (cell or "").strip()
    if body and args.data:
        raise UsageError("give the data either in the cell or with --data, not both")
    variable = user_value(self.shell, args.data)
    data = parse_jsonl(body, "the cell") if body else (variable if variable is not None else args.data)
    if body and not data:
        raise UsageError("the cell has no records; write one JSON object per line")
    if data is None and not args.resume:
        raise UsageError("no data: pass --data PATH|VAR|instructions|lima or write JSONL records in the cell")
    run = vars(build(RunOptions, args, **({} if args.progress else {"progress": self.progress})))
    run["progress"] = progress_for(run["progress"])  # the live widget in a notebook
    name = args.model or (None if args.resume else self.default_model)  # None: smollm2, or the checkpoint's
    result = sft(data, model=model_value(self.shell, name), **run, **given(args, SFTConfig, exclude=("model", "data")))
    if args.out:
        self.shell.user_ns[args.out] = result
    return result
