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
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data import split
from ..errors import DataError
from ..tokenization import IGNORE_INDEX, encode
from .attention import packed_forward, use_packed_attention
from .batches import Batch, make_batch
from .dropout import cheapen_lora_dropout
from .swiglu import fuse_swiglu
from .adapters import unwrap
from .methods import apply_method
from .objectives import Objective
from .sft import PreparedData, attention_kernel, enable_grad_checkpointing


def preference_pairs(records: list[dict], tokenizer, template: str, max_length: int):
    """(chosen, rejected) Encoded pairs: the prompt through the template, the loss mask on the answer."""
    pairs, kept, truncated = [], [], 0
    for i, rec in enumerate(records, 1):
        missing = [
            k for k in ("prompt", "chosen", "rejected") if not isinstance(rec.get(k), str) or not rec[k].strip()
        ]
        if missing:
            raise DataError(
                f"record {i} has no {' / '.join(missing)}; --format preference needs prompt, chosen and rejected"
            )
        encoded = []
        for answer in (rec["chosen"], rec["rejected"]):
            example = (
                {"messages": [{"role": "user", "content": rec["prompt"]}, {"role": "assistant", "content": answer}]}
                if template == "chat"
                else {"instruction": rec["prompt"], "output": answer}
            )
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
    prompts = [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["chosen"]}]}
        for _, r in val
    ]  # before/after samples generate from the prompt alone
    return PreparedData(
        [p for p, _ in train], [p for p, _ in val], prompts, len(records), truncated, len(records) - len(pairs)
    )


def sequence_logps(model, examples, batch: Batch | None = None) -> torch.Tensor:
    """Summed log-probability of each example's answer tokens, one forward pass for all
    (`batch`: the examples already packed and on the model's device)."""
    device = next(model.parameters()).device
    batch = batch if batch is not None else make_batch(examples, 0, "segments").to(device)
    base = unwrap(model)
    with packed_forward():
        hidden = base.get_decoder()(**batch.model_inputs())[0][0]
    labels = batch.labels[0]
    keep = labels != IGNORE_INDEX
    seq = torch.repeat_interleave(
        torch.arange(len(examples), device=device), torch.tensor([len(e) for e in examples], device=device)
    )
    logp = -F.cross_entropy(base.get_output_embeddings()(hidden[keep]).float(), labels[keep], reduction="none")
    return torch.zeros(len(examples), device=device).index_add(0, seq[keep], logp)


@dataclass
class PairBatch:
    examples: list  # chosen, rejected, chosen, rejected, ...
    packed: Batch  # all of them back to back in one row, on the device
    n_units: int  # pairs
    n_real_tokens: int


class Preference(Objective):
    """DPO; data.train holds (chosen, rejected) pairs. The reference is the model with its
    adapters switched off (--method dpo) or a frozen copy (dpo-full)."""

    name = "preference"

    def prepare(self, records, tokenizer, config) -> PreparedData:
        return prepare_preferences(records, tokenizer, config)

    def setup(self, trainer, model):
        config = trainer.config
        self.beta, self.reference = config.beta, None
        if config.method == "dpo-full":
            self.reference = copy.deepcopy(model).eval().requires_grad_(False).to(trainer.device)
            use_packed_attention(self.reference)
        model = apply_method(model, config).to(trainer.device)
        cheapen_lora_dropout(model)
        fuse_swiglu(model)
        if config.grad_checkpointing:
            enable_grad_checkpointing(model)
        use_packed_attention(model)
        trainer.layout = "segments"
        trainer.kernel = attention_kernel(trainer, model)
        return model

    def batch(self, trainer, pairs) -> PairBatch:
        flat = [e for pair in pairs for e in pair]
        return PairBatch(
            flat, trainer.batch_to_device(make_batch(flat, 0, "segments")), len(pairs), sum(len(e) for e in flat)
        )

    def reference_logps(self, model, batch: PairBatch):
        with torch.no_grad():
            if self.reference is not None:
                return sequence_logps(self.reference, batch.examples, batch.packed)
            with model.disable_adapter():
                return sequence_logps(model, batch.examples, batch.packed)

    def pair_terms(self, model, batch: PairBatch):
        ref = self.reference_logps(model, batch)
        policy = sequence_logps(model, batch.examples, batch.packed)
        chosen = self.beta * (policy[0::2] - ref[0::2])
        rejected = self.beta * (policy[1::2] - ref[1::2])
        return -F.logsigmoid(chosen - rejected), chosen, rejected

    def loss(self, model, batch):
        losses, chosen, rejected = self.pair_terms(model, batch)
        margins = (chosen - rejected).detach()
        return losses.sum(), {
            "reward_margin": margins.sum(),
            "reward_chosen": chosen.detach().sum(),
            "pref_acc": (margins > 0).sum(),
        }

    @torch.no_grad()
    def validate(self, trainer) -> dict:
        val = trainer.data.val
        if not val:
            return {"val_loss": float("nan")}
        trainer.model.eval()
        losses, margins = [], []
        for start in range(0, len(val), trainer.config.batch_size):
            batch = self.batch(trainer, val[start : start + trainer.config.batch_size])
            with trainer.autocast():
                loss, chosen, rejected = self.pair_terms(trainer.model, batch)
            losses += loss.tolist()
            margins += (chosen - rejected).tolist()
        trainer.model.train()
        return {
            "val_loss": sum(losses) / len(losses),
            "val_reward_margin": sum(margins) / len(margins),
            "val_pref_acc": sum(m > 0 for m in margins) / len(margins),
        }
