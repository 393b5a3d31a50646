"""%%sft: fine-tune a model on instruction, chat, LIMA-style or plain-text data."""

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._common import model_value, usage_errors, user_value


@magic_arguments()
@argument("--model", "-m", default=None, help="registered model, folder, hub id, or a variable holding a "
          "model result (default: smollm2)")
@argument("--data", "-d", default=None, help="file (.json/.jsonl/.csv/.parquet), shipped set "
          "(instructions, lima), hub dataset id, or a variable (list of dicts, DataFrame, Dataset)")
@argument("--format", "-f", default=None, choices=["alpaca", "chat", "lima", "text", "classify", "preference"],
          help="record format (default alpaca); classify: {text, label}, a new output layer; preference: "
          "{prompt, chosen, rejected} for DPO")
@argument("--method", default=None, choices=["full", "lora", "last-block", "bitfit", "head", "dpo", "dpo-full",
                                             "prompt-tuning"],
          help="what trains (default lora; head: only the new classification layer; dpo: LoRA against the "
          "base with adapters off; dpo-full: all weights against a frozen copy)")
@argument("--beta", type=float, default=None, help="DPO beta (default 0.1)")
@argument("--virtual-tokens", type=int, default=None, help="prompt tuning: soft-prompt length (default 20)")
@argument("--epochs", type=float, default=None, help="passes over the training split (default 1)")
@argument("--max-steps", type=int, default=None, help="stop after N optimizer steps")
@argument("--lr", type=float, default=None, help="peak learning rate")
@argument("--warmup-ratio", type=float, default=None, help="share of steps with linear warm-up (default 0.05)")
@argument("--schedule", default=None, choices=["linear", "cosine", "constant"],
          help="learning rate after warm-up (default linear decay to 0)")
@argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default 0)")
@argument("--batch-size", type=int, default=None, help="examples per optimizer step (default 8)")
@argument("--grad-accum", type=int, default=None, help="micro-batches per step (same examples, less memory)")
@argument("--max-length", type=int, default=None, help="tokens per example; longer ones are truncated (512)")
@argument("--seed", type=int, default=None, help="fixes data order, init and dropout (default 0)")
@argument("--val-fraction", type=float, default=None, help="share held out for val_loss (default 0.1)")
@argument("--eval-every", type=int, default=None, help="val_loss every N steps")
@argument("--train-on-prompt", action="store_true", help="count prompt tokens in the loss too")
@argument("--no-packing", action="store_true", help="pad each example instead of packing rows")
@argument("--grad-checkpointing", action="store_true", help="recompute activations to save memory")
@argument("--lora-r", type=int, default=None, help="LoRA rank (default 8)")
@argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default 16)")
@argument("--lora-targets", default=None, help="LoRA target modules, comma list or all-linear")
@argument("--precision", default=None, choices=["auto", "fp32", "bf16", "fp16"], help="autocast dtype")
@argument("--compile", action="store_true", help="torch.compile each transformer block (long GPU runs; slower on a CPU)")
@argument("--attention", default=None, choices=["auto", "sdpa", "varlen", "mask"], help="packed attention kernel")
@argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
@argument("--samples", type=int, default=2, help="validation prompts generated before and after (default 2)")
@argument("--save", default=None, help="write a resumable checkpoint to this folder")
@argument("--save-every", type=int, default=None, help="also checkpoint every N steps")
@argument("--resume", default=None, help="continue exactly from a checkpoint folder")
@argument("--progress", default="auto", choices=["auto", "widget", "text", "none"], help="live progress view")
@argument("--out", "-o", default=None, help="bind the result to this variable")
@usage_errors
def sft_magic(self, line, cell=None):
    """Fine-tune a causal LM and show a live loss curve; the result has .model, .tokenizer,
    .history, .samples and .generate(prompt).

    Data comes from --data or as JSONL in the cell body. Loss counts response tokens only
    unless --train-on-prompt. Ctrl-C or the Stop button ends after the current step and
    keeps the model.
    """
    from .. import api
    from ..data import parse_jsonl

    args = parse_argstring(sft_magic, line)
    body = (cell or "").strip()
    if body and args.data:
        raise UsageError("give the data either in the cell or with --data, not both")
    variable = user_value(self.shell, args.data)
    data = parse_jsonl(body, "the cell") if body else (variable if variable is not None else args.data)
    if body and not data:
        raise UsageError("the cell has no records; write one JSON object per line")
    model = model_value(self.shell, args.model)  # None: smollm2, or the checkpoint's with --resume
    options = {"format": args.format, "method": args.method, "epochs": args.epochs, "max_steps": args.max_steps,
               "lr": args.lr, "warmup_ratio": args.warmup_ratio, "schedule": args.schedule,
               "weight_decay": args.weight_decay, "batch_size": args.batch_size, "grad_accum": args.grad_accum,
               "max_length": args.max_length, "seed": args.seed, "val_fraction": args.val_fraction,
               "eval_every": args.eval_every, "lora_r": args.lora_r, "lora_alpha": args.lora_alpha,
               "lora_targets": args.lora_targets, "precision": args.precision, "device": args.device, "beta": args.beta,
               "virtual_tokens": args.virtual_tokens, "attention": args.attention}
    options = {k: v for k, v in options.items() if v is not None}
    options.update({k: True for k in ("train_on_prompt", "grad_checkpointing", "compile") if getattr(args, k)})
    if args.no_packing:
        options["packing"] = False
    if data is None and not args.resume:
        raise UsageError("no data: pass --data PATH|VAR|instructions|lima or write JSONL records in the cell")
    result = api.sft(data, model=model, save=args.save, resume=args.resume, save_every=args.save_every,
                     samples=args.samples, progress=args.progress, **options)
    if args.out:
        self.shell.user_ns[args.out] = result
    return result
