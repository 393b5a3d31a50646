"""%lora: attach, inspect, merge, save, load and switch LoRA adapters; sweep ranks."""

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._common import usage_errors

ACTIONS = ("inspect", "merge", "unmerge", "save", "load", "use", "sweep")


@magic_arguments()
@argument("var", help="variable holding a model result (%%sft --out, or made here with --base)")
@argument("--base", default=None, help="load this model into VAR first (e.g. smollm2)")
@argument("--r", type=int, default=8, help="rank (default 8)")
@argument("--alpha", type=float, default=None, help="scale numerator; scaling = alpha / r (default 2r)")
@argument("--dropout", type=float, default=0.05, help="dropout on the LoRA input (default 0.05)")
@argument("--targets", default="q_proj,v_proj", help="modules to adapt: comma list or all-linear")
@argument("--name", default=None, help="adapter name (attach, load)")
@argument("--inspect", action="store_true", help="per-module table: shapes, rank, trainable parameters")
@argument("--merge", action="store_true", help="fold the active adapter into the weights")
@argument("--unmerge", action="store_true", help="take it out again")
@argument("--save", default=None, metavar="DIR", help="write the active adapter (safetensors) to DIR")
@argument("--load", default=None, metavar="DIR", help="load an adapter from DIR (with --name)")
@argument("--use", default=None, metavar="NAME", help="switch the active adapter")
@argument("--sweep", default=None, metavar="RANKS", help="e.g. 1,2,4,8,64: one short run per rank")
@argument("--data", default="instructions", help="data for --sweep (default: the shipped instructions)")
@argument("--max-steps", type=int, default=20, help="steps per --sweep run (default 20)")
@argument("--batch-size", type=int, default=8, help="batch size for --sweep runs")
@argument("--lr", type=float, default=None, help="learning rate for --sweep runs (default: LoRA's default)")
@argument("--seed", type=int, default=0, help="seed for --sweep runs (the same data order for every rank)")
@argument("--out", "-o", default=None, help="bind the report to this variable")
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
    if args.base:
        ns[args.var] = api.load(args.base)
    holder = ns.get(args.var)
    if holder is None:
        raise UsageError(f"no variable '{args.var}'; create it with %lora {args.var} --base smollm2 "
                         f"or train one with %%sft --out {args.var}")
    if not hasattr(holder, "model") or not hasattr(holder, "tokenizer"):
        raise UsageError(f"'{args.var}' is not a model result (no .model/.tokenizer)")
    if action == "sweep":
        ranks = [r for r in args.sweep.split(",") if r.strip()]
        if not all(r.strip().lstrip("-").isdigit() for r in ranks):
            raise UsageError(f"--sweep takes ranks like 1,2,4,8 (got {args.sweep})")
        variable = ns.get(args.data) if args.data.isidentifier() and args.data in ns else args.data
        result = api.lora_sweep(api.base_name(holder), variable, ranks, targets=args.targets,
                                max_steps=args.max_steps, batch_size=args.batch_size, seed=args.seed,
                                **({"lr": args.lr} if args.lr is not None else {}))
    else:
        alpha = args.alpha if args.alpha is not None else 2.0 * args.r
        path = args.save or args.load
        name = args.use if action == "use" else args.name
        result = api.lora(holder, action, r=args.r, alpha=alpha, dropout=args.dropout, targets=args.targets,
                          name=name, path=path)
    if args.out:
        ns[args.out] = result
    return result
