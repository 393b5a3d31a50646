"""Classifier fine-tuning: nbllm against HF Trainer padding to max length, in one process.

Same model (minilm, all weights train), same shipped sms data and split, same epochs, batch
size and learning rate. The baseline is the classic recipe: AutoModelForSequenceClassification
with every example padded to max_length=128. nbllm pads each length-grouped batch only to
its longest example. Prints:

    bench classify samples_per_s_nbllm / _trainer / _ratio   (target ratio >= 1.3 on 2 CPU cores)
    bench classify val_acc_nbllm / _trainer

    python benchmarks/classify.py [--epochs 1] [--method full]
"""

from __future__ import annotations

import argparse
import time

import torch

import nbllm
from nbllm import models
from nbllm.data import load_records, split
from nbllm.train.classify import labeled_data


def run_nbllm(records, args):
    result = nbllm.sft(
        records,
        model="minilm",
        format="classify",
        method=args.method,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_length=128,
        progress="none",
        seed=0,
    )
    state = result.run.state
    return state.tokens / state.train_seconds, result.accuracy


def run_trainer(records, args):
    from transformers import AutoModelForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

    data = labeled_data(records)
    tok = models.load_tokenizer("minilm")
    enc = tok(data.texts, padding="max_length", truncation=True, max_length=128)
    rows = [
        {"input_ids": i, "attention_mask": m, "labels": y}
        for i, m, y in zip(enc["input_ids"], enc["attention_mask"], data.labels)
    ]
    train, val = split(rows, 0.1, 0)  # the same split nbllm makes
    model = AutoModelForSequenceClassification.from_pretrained(str(models.minilm_dir()), num_labels=len(data.classes))
    marks = []

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            marks.append(time.perf_counter())

        def on_train_end(self, *a, **k):
            marks.append(time.perf_counter())

    targs = TrainingArguments(
        output_dir="/tmp/nbllm-bench-classify",
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        logging_steps=10**6,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=train, callbacks=[Clock()])
    trainer.train()
    model.eval()
    with torch.no_grad():
        ids = torch.tensor([r["input_ids"] for r in val])
        mask = torch.tensor([r["attention_mask"] for r in val])
        pred = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
    acc = float((pred == torch.tensor([r["labels"] for r in val])).float().mean())
    return len(train) * args.epochs / (marks[1] - marks[0]), acc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--method", default="full")
    args = parser.parse_args()
    records = load_records("sms")
    ours, our_acc = run_nbllm(records, args)
    theirs, their_acc = run_trainer(records, args)
    print(f"bench classify samples_per_s_nbllm {ours:.1f}")
    print(f"bench classify samples_per_s_trainer {theirs:.1f}")
    print(f"bench classify samples_per_s_ratio {ours / theirs:.2f}")
    print(f"bench classify val_acc_nbllm {our_acc:.3f}")
    print(f"bench classify val_acc_trainer {their_acc:.3f}")


if __name__ == "__main__":
    main()
