"""Batches for causal-LM training. Packing keeps the optimizer batch (the same examples per
step) and only removes padding; packed examples never attend to each other.

    segments  one row of all examples back to back, with their boundaries, for the packed
              attention in attention.py (no padding, attention per example)
    rows      a few balanced rows with a block-diagonal 4D mask: works with any attention
              implementation (under SDPA, position_ids alone would NOT isolate examples)
    padded    one row per example, right-padded (dynamic padding, the usual baseline)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..tokenization import IGNORE_INDEX, Encoded
from .attention import attention_inputs


ATTENTION_WIDTH = 2048  # row width at which attention costs about as much again as the rest


@dataclass
class Batch:
    input_ids: torch.Tensor  # (rows, length)
    labels: torch.Tensor  # next-token targets, IGNORE_INDEX where not in the loss
    position_ids: torch.Tensor  # restart at 0 for every packed example
    attention_mask: torch.Tensor | None  # (rows, 1, L, L) bool for rows, (rows, L) 0/1 padded, None segments
    n_real_tokens: int  # non-padding tokens
    n_loss_tokens: int
    segments: list[int] | None = None  # example boundaries in the single row: [0, len0, len0+len1, ...]
    attention: dict | None = None  # the boundaries as packed attention wants them (attention.attention_inputs)

    @property
    def n_units(self) -> int:
        """What the loss is averaged over: its loss tokens."""
        return self.n_loss_tokens

    def model_inputs(self) -> dict:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "position_ids": self.position_ids,
            "use_cache": False,
            **(self.attention or {}),
        }

    def to(self, device, kernel: str = "auto", max_len: int | None = None) -> "Batch":
        """The batch on `device`, with the example boundaries in the form `kernel` wants."""
        move = {
            k: getattr(self, k).to(device, non_blocking=True) if getattr(self, k) is not None else None
            for k in ("input_ids", "labels", "position_ids", "attention_mask")
        }
        attention = attention_inputs(self.segments, device, kernel, max_len) if self.segments is not None else None
        return Batch(
            **move,
            n_real_tokens=self.n_real_tokens,
            n_loss_tokens=self.n_loss_tokens,
            segments=self.segments,
            attention=attention,
        )


def first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices grouped into rows of at most `capacity` tokens (longest first, first row that fits)."""
    rows, room = [], []
    for i in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(capacity - lengths[i])
    return rows


def balanced_rows(lengths: list[int], n_rows: int) -> list[list[int]]:
    """Longest example first into the currently shortest row (LPT): rows of near-equal width."""
    rows, load = [[] for _ in range(n_rows)], [0] * n_rows
    for i in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
        r = min(range(n_rows), key=lambda k: (load[k], k))
        rows[r].append(i)
        load[r] += lengths[i]
    return [row for row in rows if row]


def best_rows(lengths: list[int], limit: int | None = None) -> list[list[int]]:
    """Rows for packing: for each row count, balance the rows, and keep the layout with the
    least padded area, counting attention's cost growing with row width."""
    best, best_cost = None, None
    for n_rows in range(1, len(lengths) + 1):
        rows = balanced_rows(lengths, n_rows)
        width = max(sum(lengths[i] for i in row) for row in rows)
        if limit is not None and width > limit and n_rows < len(lengths):
            continue
        cost = len(rows) * width * (1 + width / ATTENTION_WIDTH)
        if best_cost is None or cost < best_cost:
            best, best_cost = rows, cost
    return best


def packed_batch(examples: list[Encoded], pad_id: int, capacity: int | None = None) -> Batch:
    lengths = [len(e) for e in examples]
    rows = first_fit_decreasing(lengths, capacity) if capacity else best_rows(lengths)
    width = max(sum(len(examples[i]) for i in row) for row in rows)
    n = len(rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
    pos = torch.zeros((n, width), dtype=torch.long)
    seg = torch.zeros((n, width), dtype=torch.long)  # 0 = padding, k = k-th example of the row
    for r, row in enumerate(rows):
        start = 0
        for k, i in enumerate(row, 1):
            e = examples[i]
            end = start + len(e)
            ids[r, start:end] = torch.tensor(e.input_ids)
            labels[r, start:end] = torch.tensor(e.labels)
            pos[r, start:end] = torch.arange(len(e))
            seg[r, start:end] = k
            start = end
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    same = seg[:, :, None] == seg[:, None, :]
    mask = (same & causal & (seg[:, :, None] > 0)) | torch.eye(width, dtype=torch.bool)  # pads see themselves
    return Batch(ids, labels, pos, mask[:, None], int((seg > 0).sum()), int((labels != IGNORE_INDEX).sum()))


def padded_batch(examples: list[Encoded], pad_id: int) -> Batch:
    """Dynamic padding: one row per example, right-padded to the longest in the batch."""
    width = max(len(e) for e in examples)
    n = len(examples)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for r, e in enumerate(examples):
        ids[r, : len(e)] = torch.tensor(e.input_ids)
        labels[r, : len(e)] = torch.tensor(e.labels)
        mask[r, : len(e)] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return Batch(ids, labels, pos, mask, int(mask.sum()), int((labels != IGNORE_INDEX).sum()))


def segments_batch(examples: list[Encoded]) -> Batch:
    """All examples back to back in one row; positions restart per example."""
    ids = torch.tensor([[t for e in examples for t in e.input_ids]])
    labels = torch.tensor([[t for e in examples for t in e.labels]])
    pos = torch.tensor([[i for e in examples for i in range(len(e))]])
    bounds = [0]
    for e in examples:
        bounds.append(bounds[-1] + len(e))
    return Batch(
        ids,
        labels,
        pos,
        None,
        bounds[-1],
        int((labels != IGNORE_INDEX).sum()),
        segments=bounds,
        attention=attention_inputs(bounds, "cpu"),
    )


LAYOUTS = ("segments", "rows", "padded")


def make_batch(examples: list[Encoded], pad_id: int, layout: str = "segments") -> Batch:
    if layout == "segments":
        return segments_batch(examples)
    if layout == "rows" and len(examples) > 1:
        return packed_batch(examples, pad_id)
    return padded_batch(examples, pad_id)
