"""Classifier fine-tuning: replace a language model's output layer with a small head.

    encoder (minilm)   mean of the token states (as sentence-transformers pools)
    decoder (smollm2)  the state of the last real token (it has read the whole text)

Methods: head (only the new layer trains), last-block (plus the last transformer block),
full (everything), lora (LoRA on the attention projections, plus the head). Batches group
examples of similar length, so little compute goes to padding.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import models
from ..lm import mean_pool
from ..config import SFTConfig
from ..errors import ConfigError, DataError
from .dropout import cheapen_lora_dropout
from .swiglu import fuse_swiglu
from .adapters import attach, linear_module_names
from .objectives import Objective
from .sft import PreparedData, enable_grad_checkpointing


@dataclass
class LabeledData:
    texts: list[str]
    labels: list[int]
    classes: list[str]


def labeled_data(records: list[dict], text_key: str = "text", label_key: str = "label") -> LabeledData:
    if not records:
        raise DataError("the data is empty; give records with text and label")
    texts, raw = [], []
    for i, rec in enumerate(records, 1):
        text, label = rec.get(text_key), rec.get(label_key)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"record {i} has no {text_key}; --format classify needs '{text_key}' and '{label_key}'")
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DataError(f"record {i} has no {label_key}; --format classify needs '{text_key}' and '{label_key}'")
        texts.append(text)
        raw.append(str(label))
    classes = sorted(set(raw))
    if len(classes) < 2:
        raise DataError(f"the data has a single class ({classes[0]!r}); a classifier needs at least two labels")
    index = {c: i for i, c in enumerate(classes)}
    return LabeledData(texts, [index[c] for c in raw], classes)


class Classifier(torch.nn.Module):
    """A transformer body (its LM head dropped) and a new linear head."""

    def __init__(self, body, hidden: int, n_classes: int, pooling: str):
        super().__init__()
        self.body, self.pooling = body, pooling
        self.head = torch.nn.Linear(hidden, n_classes)

    def forward(self, input_ids, attention_mask):
        states = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "mean":
            pooled = mean_pool(states, attention_mask)
        else:  # last real token (right padding)
            last = attention_mask.sum(1) - 1
            pooled = states[torch.arange(states.shape[0], device=states.device), last]
        return self.head(pooled.float())


def build_classifier(name: str, n_classes: int, device: str, seed: int):
    model, tokenizer = models.load_model(name, device=device, dtype=torch.float32)
    if models.model_kind(name) == models.ENCODER:
        body, pooling = model, "mean"
    else:
        body, pooling = model.get_decoder(), "last"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = Classifier(body, body.config.hidden_size, n_classes, pooling)
    return classifier.to(device), tokenizer


def choose_parameters(clf: Classifier, config: SFTConfig) -> None:
    method = config.method
    fuse_swiglu(clf.body)
    if method == "lora":
        names = linear_module_names(clf.body)
        default = "q_proj,v_proj" if "q_proj" in names else "query,value"  # decoders / BERT-style encoders
        targets = config.lora_targets if config.lora_targets != "q_proj,v_proj" else default
        clf.body = attach(
            clf.body,
            r=config.lora_r,
            alpha=config.lora_alpha,
            dropout=config.lora_dropout,
            targets=targets,
            seed=config.seed,
            task_type=None,
        )
        cheapen_lora_dropout(clf.body)
    for name, p in clf.named_parameters():
        if method == "full":
            p.requires_grad_(True)
        elif method == "lora":
            p.requires_grad_("lora_" in name or name.startswith("head."))
        elif method == "bitfit":
            p.requires_grad_(name.endswith(".bias"))
        else:
            p.requires_grad_(name.startswith("head."))
    if method == "last-block":
        blocks = [m for m in clf.body.modules() if isinstance(m, torch.nn.ModuleList)]
        if not blocks:
            raise ConfigError("cannot find this model's transformer blocks; use --method head, lora or full")
        for p in max(blocks, key=len)[-1].parameters():
            p.requires_grad_(True)
    if method == "bitfit" and not any(
        n.endswith(".bias") and not n.startswith("head.") for n, _ in clf.named_parameters()
    ):
        raise ConfigError(
            f"model '{config.model}' has no bias parameters, so BitFit has nothing to train; "
            "use --method head, last-block or lora"
        )


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffle, sort within windows of 50 batches by length, cut, shuffle the batches: each
    batch holds examples of similar length, and the order still changes every epoch."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _pad(encoded: list[list[int]], pad_id: int, device):
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for r, e in enumerate(encoded):
        ids[r, : len(e)] = torch.tensor(e)
        mask[r, : len(e)] = 1
    return ids.to(device), mask.to(device)


def encode_texts(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


@torch.no_grad()
def predict_logits(clf: Classifier, tokenizer, encoded: list[list[int]], batch_size: int = 32) -> torch.Tensor:
    clf.eval()
    device = next(clf.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = torch.empty(len(encoded), clf.head.out_features)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = _pad([encoded[i] for i in idx], tokenizer.pad_token_id, device)
        out[idx] = clf(ids, mask).float().cpu()
    return out


@dataclass
class LabelBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    target: torch.Tensor
    n_units: int  # examples
    n_real_tokens: int


class Classification(Objective):
    """A new head on a pooled language model; data.train holds (token ids, class id) pairs.
    Validation (loss, accuracy, confusion matrix) runs once per epoch unless --eval-every."""

    name, unit = "classification", "examples"
    # a constant learning rate unless --schedule / --warmup-ratio say otherwise: short classifier runs
    # (one epoch of minilm at 5e-5) lose half their accuracy to a decay to 0 (0.92 -> 0.44 on sms)
    defaults = {"schedule": "constant", "warmup_ratio": 0.0}

    def __init__(self):
        self.confusion: list[list[int]] = []
        self.val_loss = self.val_accuracy = float("nan")

    def load_model(self, config, device: str, records):
        classes = labeled_data(records).classes
        return build_classifier(config.model, len(classes), device, config.seed)

    def prepare(self, records, tokenizer, config) -> PreparedData:
        from ..data import split

        data = labeled_data(records)
        encoded = encode_texts(tokenizer, data.texts, config.max_length)
        train, val = split(list(zip(encoded, data.labels)), config.val_fraction, config.seed)
        return PreparedData(train, val, [], len(records), 0, 0, classes=data.classes)

    def setup(self, trainer, model):
        choose_parameters(model, trainer.config)
        if trainer.config.grad_checkpointing:
            enable_grad_checkpointing(model.body)
        self.classes, self.tokenizer = trainer.data.classes, trainer.tokenizer
        return model.to(trainer.device)

    def default_eval_every(self, trainer) -> int:
        return trainer.steps_per_epoch

    def step_examples(self, trainer, step: int) -> list[int]:
        epoch, index = divmod(step, trainer.steps_per_epoch)
        lengths = [len(ids) for ids, _ in trainer.data.train]
        return length_grouped_batches(lengths, trainer.config.batch_size, trainer.config.seed, epoch)[index]

    def batch(self, trainer, items) -> LabelBatch:
        ids, mask = _pad([e for e, _ in items], self.tokenizer.pad_token_id, trainer.device)
        target = torch.tensor([y for _, y in items], device=trainer.device)
        return LabelBatch(ids, mask, target, len(items), int(mask.sum()))

    def loss(self, model, batch: LabelBatch):
        return F.cross_entropy(model(batch.input_ids, batch.attention_mask), batch.target, reduction="sum"), {}

    def validate(self, trainer) -> dict:
        if not trainer.data.val:
            return {"val_loss": float("nan")}
        with trainer.autocast():
            self.val_loss, self.val_accuracy, self.confusion = _evaluate(
                trainer.model, self.tokenizer, trainer.data.val, len(self.classes)
            )
        trainer.model.train()
        return {"val_loss": self.val_loss, "val_acc": self.val_accuracy}


def _evaluate(clf, tokenizer, pairs, n_classes):
    logits = predict_logits(clf, tokenizer, [e for e, _ in pairs])
    target = torch.tensor([y for _, y in pairs])
    loss = float(F.cross_entropy(logits, target))
    pred = logits.argmax(-1)
    confusion = [[int(((target == t) & (pred == p)).sum()) for p in range(n_classes)] for t in range(n_classes)]
    return loss, int((pred == target).sum()) / len(target), confusion  # an exact fraction, e.g. 34/36
