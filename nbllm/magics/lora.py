"""%lora: attach, inspect, merge, save, load and switch LoRA adapters; sweep ranks.
The adapter's flags are LoraOptions' fields, the sweep's LoraSweepOptions' (nbllm/config.py)."""

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, parse_argstring

from ..config import LoraOptions, LoraSweepOptions
from ._common import usage_errors
from ._flags import OUT, build, flags

ACTIONS = ("inspect", "merge", "unmerge", "save", "load", "use", "sweep")


@flags(
    LoraOptions,
    LoraSweepOptions,
    name="lora",
    extra=[
        argument("var", help="variable holding a model result (%%%%sft --out, or made here with --base)"),
        argument("--base", default=None, help="load this model into VAR first (e.g. smollm2)"),
    ],
    after=[
        argument("--inspect", action="store_true", help="per-module table: shapes, rank, trainable parameters"),
        argument("--merge", action="store_true", help="fold the active adapter into the weights"),
        argument("--unmerge", action="store_true", help="take it out again"),
        argument("--save", default=None, metavar="DIR", help="write the active adapter (safetensors) to DIR"),
        argument("--load", default=None, metavar="DIR", help="load an adapter from DIR (with --name)"),
        argument("--use", default=None, metavar="NAME", help="switch the active adapter"),
        argument("--sweep", default=None, metavar="RANKS", help="e.g. 1,2,4,8,64: one short run per rank"),
        OUT,
    ],
)
@usage_errors
def lora_magic(self, line):
    """LoRA adapters: W0 x + (alpha/r) B A x with A random and B zero, so a new adapter
    starts equal to the base. Without an action flag, attaches a new adapter to VAR."""
    from .. import api

    args = parse_argstring(lora_magic, line)
    chosen = [a for a in ACTIONS if getattr(args, a) not in (None, False)]
    if len(chosen) > 1:
        raise UsageError(f"choose one action per line (got --{' --'.join(chosen)})")
    action = chosen[0] if chosen else "attach"
    ns = self.shell.user_ns
    adapter = build(LoraOptions, args)  # bad numbers are refused before anything is loaded or bound
    holder = api.load(args.base) if args.base else ns.get(args.var)
    if holder is None:
        raise UsageError(
            f"no variable '{args.var}'; create it with %lora {args.var} --base smollm2 "
            f"or train one with %%sft --out {args.var}"
        )
    if not hasattr(holder, "model") or not hasattr(holder, "tokenizer"):
        raise UsageError(
            f"'{args.var}' holds a {type(holder).__name__}, not a model result (no .model/.tokenizer); "
            f"make one with %lora {args.var} --base smollm2 or %%sft --out {args.var}"
        )
    if action == "sweep":
        ranks = [r for r in args.sweep.split(",") if r.strip()]
        if not all(r.strip().lstrip("-").isdigit() for r in ranks):
            raise UsageError(f"--sweep takes ranks like 1,2,4,8 (got {args.sweep})")
        run = build(LoraSweepOptions, args)
        data = ns.get(run.data) if run.data.isidentifier() and run.data in ns else run.data
        progress = {} if self.progress == "auto" else {"progress": self.progress}  # auto: the sweep's text lines
        result = api.lora_sweep(
            api.base_name(holder),
            data,
            ranks,
            targets=adapter.targets,
            max_steps=run.max_steps,
            batch_size=run.batch_size,
            seed=run.seed,
            **progress,
            **({"lr": run.lr} if run.lr is not None else {}),
        )
    else:
        result = api.lora(
            holder,
            action,
            r=adapter.r,
            alpha=adapter.scale_alpha,
            dropout=adapter.dropout,
            targets=adapter.targets,
            name=args.use if action == "use" else adapter.name,
            path=args.save or args.load,
        )
    if args.base:  # bound only once the action worked: a failed line leaves VAR as it was
        ns[args.var] = holder
    if args.out:
        ns[args.out] = result
    return result
