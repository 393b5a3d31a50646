"""Direct preference optimisation: raise the likelihood of the chosen answer relative to the
rejected one, measured against a frozen reference model.

    loss = -log sigmoid(beta * [(log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected))])

The reward of an answer is beta * (log pi - log ref); the margin is chosen minus rejected;
preference accuracy is how often the margin is positive. With LoRA (--method dpo) the
reference is the same model with its adapters switched off, so no second copy is held in
memory; --method dpo-full trains every weight against a frozen copy.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..data import split
from ..errors import DataError
from ..tokenization import IGNORE_INDEX, encode
from .attention import packed_forward
from .batches import make_batch
from .sft import PreparedData, Trainer, step_examples
from .methods import unwrap


def preference_pairs(records: list[dict], tokenizer, template: str, max_length: int):
    """(chosen, rejected) Encoded pairs: the prompt through the template, the loss mask on the answer."""
    pairs, kept, truncated = [], [], 0
    for i, rec in enumerate(records, 1):
        missing = [k for k in ("prompt", "chosen", "rejected") if not isinstance(rec.get(k), str) or not rec[k].strip()]
        if missing:
            raise DataError(f"record {i} has no {' / '.join(missing)}; --format preference needs prompt, chosen "
                            "and rejected")
        encoded = []
        for answer in (rec["chosen"], rec["rejected"]):
            example = ({"messages": [{"role": "user", "content": rec["prompt"]}, {"role": "assistant", "content": answer}]}
                       if template == "chat" else {"instruction": rec["prompt"], "output": answer})
            e = encode(tokenizer, example, template, max_length)
            truncated += e.truncated
            encoded.append(e)
        if all(any(label != IGNORE_INDEX for label in e.labels) for e in encoded):
            pairs.append(tuple(encoded))
            kept.append(rec)
    if not pairs:
        raise DataError(f"every record's answers start beyond --max-length {max_length}; raise --max-length")
    return pairs, kept, truncated


def prepare_preferences(records, tokenizer, config) -> PreparedData:
    if not records:
        raise DataError("the data is empty; give prompt/chosen/rejected records")
    template = "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"
    pairs, kept, truncated = preference_pairs(records, tokenizer, template, config.max_length)
    train, val = split(list(zip(pairs, kept)), config.val_fraction, config.seed)
    prompts = [{"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["chosen"]}]}
               for _, r in val]  # before/after samples generate from the prompt alone
    return PreparedData([p for p, _ in train], [p for p, _ in val], prompts, len(records), truncated,
                        len(records) - len(pairs))


def sequence_logps(model, examples) -> torch.Tensor:
    """Summed log-probability of each example's answer tokens, one forward pass for all."""
    device = next(model.parameters()).device
    batch = make_batch(examples, 0, "segments").to(device)
    base = unwrap(model)
    with packed_forward():
        hidden = base.get_decoder()(**batch.model_inputs())[0][0]
    labels = batch.labels[0]
    keep = labels != IGNORE_INDEX
    seq = torch.repeat_interleave(torch.arange(len(examples), device=device),
                                  torch.tensor([len(e) for e in examples], device=device))
    logp = -F.cross_entropy(base.get_output_embeddings()(hidden[keep]).float(), labels[keep], reduction="none")
    return torch.zeros(len(examples), device=device).index_add(0, seq[keep], logp)


class DPOTrainer(Trainer):
    """The SFT loop with a preference objective; data.train holds (chosen, rejected) pairs."""

    def __init__(self, config, data, model, tokenizer, device=None):
        self.reference = None
        if config.method == "dpo-full":
            self.reference = copy.deepcopy(model).eval().requires_grad_(False)
        super().__init__(config, data, model, tokenizer, device)
        if self.reference is not None:
            from .attention import use_packed_attention

            self.reference.to(self.device)
            use_packed_attention(self.reference)
        self.beta = config.beta

    def reference_logps(self, examples):
        with torch.no_grad():
            if self.reference is not None:
                return sequence_logps(self.reference, examples)
            with self.model.disable_adapter():
                return sequence_logps(self.model, examples)

    def pair_terms(self, pairs):
        flat = [e for pair in pairs for e in pair]
        with self.autocast():
            ref = self.reference_logps(flat)
            policy = sequence_logps(self.model, flat)
        chosen = self.beta * (policy[0::2] - ref[0::2])
        rejected = self.beta * (policy[1::2] - ref[1::2])
        return -F.logsigmoid(chosen - rejected), chosen, rejected

    def train_step(self) -> dict:
        cfg = self.config
        ids = step_examples(len(self.data.train), cfg.batch_size, cfg.seed, self.state.step)
        micro = [ids[i::cfg.grad_accum] for i in range(cfg.grad_accum) if ids[i::cfg.grad_accum]]
        total, margins, chosen_r = 0.0, [], []
        for m in micro:
            losses, chosen, rejected = self.pair_terms([self.data.train[i] for i in m])
            (losses.sum() / len(ids)).backward()
            total += float(losses.detach().sum()) / len(ids)
            margins += (chosen - rejected).detach().tolist()
            chosen_r += chosen.detach().tolist()
        torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        tokens = sum(len(e) for i in ids for e in self.data.train[i])
        return {"loss": total, "lr": lr, "real_tokens": tokens,
                "metrics": {"reward_margin": sum(margins) / len(margins), "reward_chosen": sum(chosen_r) / len(chosen_r),
                            "pref_acc": sum(m > 0 for m in margins) / len(margins)}}

    @torch.no_grad()
    def val_loss(self) -> float:
        if not self.data.val:
            return float("nan")
        self.model.eval()
        losses, margins = [], []
        for start in range(0, len(self.data.val), self.config.batch_size):
            loss, chosen, rejected = self.pair_terms(self.data.val[start:start + self.config.batch_size])
            losses += loss.tolist()
            margins += (chosen - rejected).tolist()
        self.model.train()
        self.val_metrics = {"val_reward_margin": sum(margins) / len(margins),
                            "val_pref_acc": sum(m > 0 for m in margins) / len(margins)}
        return sum(losses) / len(losses)
