"""The vocabulary projection and the cross-entropy as one step, chunk by chunk, with the
gradients worked out during the forward pass.

A 49k-wide head turns n hidden rows into n x 49k logits (3 GB in fp32 at 16k loss tokens),
which autograd keeps for backward and then reads and writes again. Here each chunk's logits
live only inside the forward: its loss, d loss / d logits (softmax minus one-hot) and from
that the gradients of the hidden rows (and of the head's weight and bias when they train)
are computed at once; backward only scales them by the incoming gradient. The matmuls are
those autograd would run; nothing n x vocab is stored and nothing is recomputed (as
checkpointed chunks would). Liger-Kernel's fused linear cross-entropy is the same idea.
"""

from __future__ import annotations

import torch

CHUNK_BYTES = 256 * 2**20  # fp32 logits per chunk


def chunk_rows(vocab: int) -> int:
    return max(128, CHUNK_BYTES // (4 * vocab))


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    compiled: bool = False,
) -> torch.Tensor:
    """sum_i cross_entropy(hidden_i @ weight.T + bias, targets_i) in fp32, as autocast would
    compute `F.cross_entropy(head(hidden).float(), targets, reduction="sum")`."""
    inputs = (hidden, weight, bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        return _LinearCrossEntropy.apply(hidden, weight, bias, targets, compiled)
    with torch.no_grad():
        return _chunks(hidden, weight, bias, targets, compiled, (False, False, False))[0]


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, compiled):
        loss, *grads = _chunks(hidden, weight, bias, targets, compiled, ctx.needs_input_grad[:3])
        ctx.dtypes = [t.dtype if t is not None else None for t in (hidden, weight, bias)]
        ctx.save_for_backward(*grads)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        scaled = [None if g is None else (g * grad_loss).to(dtype) for g, dtype in zip(ctx.saved_tensors, ctx.dtypes)]
        return *scaled, None, None


def _compute_dtype(hidden: torch.Tensor) -> torch.dtype:
    device = hidden.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype


def _chunks(hidden, weight, bias, targets, compiled, needs):
    """(loss, d hidden, d weight, d bias) in fp32; a gradient is None where `needs` says so."""
    dtype = _compute_dtype(hidden)
    w = weight.to(dtype)
    need_h, need_w, need_b = needs
    any_grad = need_h or need_w or need_b
    loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
    grad_h = torch.empty(hidden.shape, dtype=torch.float32, device=hidden.device) if need_h else None
    grad_w = grad_b = None
    step = chunk_rows(weight.shape[0])
    loss_and_dlogits = _compiled_loss_and_dlogits() if compiled else _loss_and_dlogits
    with torch.autocast(hidden.device.type, enabled=False):
        for start in range(0, hidden.shape[0], step):
            h = hidden[start : start + step].to(dtype)
            logits = h @ w.T
            if bias is not None:
                logits = logits.float() + bias.float()
            part, dlogits = loss_and_dlogits(logits, targets[start : start + step], any_grad)
            del logits  # only dlogits (the same size) stays for the matmuls below
            loss += part
            if not any_grad:
                continue
            if need_h:
                grad_h[start : start + step] = dlogits.to(dtype) @ w
            if need_w:
                grad_w = _accumulate(grad_w, dlogits.to(dtype).T @ h)
            if need_b:
                grad_b = _accumulate(grad_b, dlogits.sum(0))
    return loss, grad_h, grad_w, grad_b


def _accumulate(total: torch.Tensor | None, part: torch.Tensor) -> torch.Tensor:
    """fp32 sum over chunks, without a zero-filled start or a copy of the first part."""
    part = part.float()
    return part if total is None else total.add_(part)


def _loss_and_dlogits(logits: torch.Tensor, targets: torch.Tensor, grads: bool):
    """Summed cross-entropy of a chunk and, when asked, its gradient w.r.t. the logits:
    softmax minus one-hot, fp32, from one log-softmax pass (as autograd's backward of it)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    loss = -logp.gather(1, targets[:, None]).sum()
    if not grads:
        return loss, None
    dlogits = logp.exp_()
    dlogits[torch.arange(len(targets), device=targets.device), targets] -= 1
    return loss, dlogits


_COMPILED = []


def _compiled_loss_and_dlogits():
    """The elementwise passes over the chunk fused into one kernel (the matmuls stay eager)."""
    if not _COMPILED:
        _COMPILED.append(torch.compile(_loss_and_dlogits, dynamic=True))
    return _COMPILED[0]
