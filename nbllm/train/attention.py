"""Packed-sequence attention: every example in a packed row attends only to itself.

Packed batches are one row of concatenated examples (no padding at all). The attention
function below gets the example boundaries through the model's forward kwargs, in one of
three forms (`attention_inputs` picks it):

    nbllm_segments   a list of boundaries: causal SDPA per example, so attention costs
                     sum(len_i^2) and no L x L mask is built (eager, any device)
    nbllm_cu_seqlens the same boundaries as an int32 tensor: one flash-attention varlen
                     kernel for all examples (CUDA, 16-bit); with nbllm_max_len fixed it
                     also traces into torch.compile without a recompile per step
    nbllm_doc_ids    the example index of each position: a document mask built inside the
                     compiled block (torch.compile anywhere; costs an L x L mask)

Without any of them it is exactly transformers' SDPA attention (used for generation and
anything else), with the same mask creation.
"""

from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn.functional as F

NAME = "nbllm_packed"
_registered = False
_packed_forward = False  # True while a packed batch runs: no L x L mask from position_ids


def packed_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    bounds = kwargs.pop("nbllm_segments", None)
    cu = kwargs.pop("nbllm_cu_seqlens", None)
    max_len = kwargs.pop("nbllm_max_len", None)
    doc_ids = kwargs.pop("nbllm_doc_ids", None)
    p = dropout if module.training else 0.0
    gqa = query.shape[1] != key.shape[1]
    if cu is not None and (bounds is None or _varlen_ok(query, p)):
        if max_len is None:
            max_len = max(e - s for s, e in zip(bounds[:-1], bounds[1:]))
        return _varlen_attention(query, key, value, cu, max_len, scaling), None
    if doc_ids is not None:
        length = doc_ids.shape[-1]
        causal = torch.ones(length, length, dtype=torch.bool, device=doc_ids.device).tril()
        mask = (doc_ids[:, None, :, None] == doc_ids[:, None, None, :]) & causal
        out = F.scaled_dot_product_attention(
            query, key, value.to(query.dtype), attn_mask=mask, dropout_p=p, scale=scaling, enable_gqa=gqa
        )
        return out.transpose(1, 2).contiguous(), None
    if bounds is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    # split, not slicing: its backward is one cat, where each slice's fills a zero tensor of the whole row
    sizes = [e - s for s, e in zip(bounds[:-1], bounds[1:])]
    out = torch.cat(
        [
            F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True, scale=scaling, enable_gqa=gqa)
            for q, k, v in zip(query.split(sizes, 2), key.split(sizes, 2), value.split(sizes, 2))
        ],
        dim=2,
    )
    return out.transpose(1, 2).contiguous(), None


def attention_inputs(bounds: list[int], device, kernel: str = "auto", max_len: int | None = None) -> dict:
    """The forward kwargs that tell packed_attention where the examples of a row begin and end.
    auto: the varlen kernel on CUDA when it can run (falling back to per-example SDPA at call
    time), per-example SDPA elsewhere."""
    device = torch.device(device)
    if kernel == "varlen" or (kernel == "auto" and device.type == "cuda" and varlen_available()):
        cu = torch.tensor(bounds, dtype=torch.int32).to(device, non_blocking=True)
        if kernel == "varlen":  # no Python list: nothing for torch.compile to specialise on
            longest = max(b - a for a, b in zip(bounds, bounds[1:]))
            return {"nbllm_cu_seqlens": cu, "nbllm_max_len": max_len or longest}
        return {"nbllm_segments": bounds, "nbllm_cu_seqlens": cu}
    if kernel == "mask":
        sizes = torch.tensor([b - a for a, b in zip(bounds, bounds[1:])])
        return {"nbllm_doc_ids": torch.repeat_interleave(torch.arange(len(sizes)), sizes)[None].to(device)}
    return {"nbllm_segments": bounds}


def pick_kernel(kernel: str, device: str, dtype: torch.dtype, compiled: bool) -> str:
    """Under torch.compile the per-example loop would specialise on every step's boundaries:
    use the varlen kernel where it runs (CUDA, 16-bit), else the in-block document mask."""
    if kernel != "auto" or not compiled:
        return kernel
    if device.startswith("cuda") and dtype in (torch.float16, torch.bfloat16) and varlen_available():
        return "varlen"
    return "mask"


_VARLEN = []


def _varlen():
    """torch's flash-attention varlen kernel (CUDA; torch >= 2.10), or None."""
    if not _VARLEN:
        try:
            import inspect

            from torch.nn.attention.varlen import varlen_attn

            params = inspect.signature(varlen_attn).parameters
            _VARLEN.append((varlen_attn, "window_size" in params, "enable_gqa" in params))
        except ImportError:
            _VARLEN.append(None)
    return _VARLEN[0]


@functools.cache
def varlen_available() -> bool:
    """The kernel exists and the card can run flash attention (Ampere or newer: not a T4)."""
    return torch.cuda.is_available() and _varlen() is not None and torch.cuda.get_device_capability()[0] >= 8


def _varlen_ok(query, dropout: float) -> bool:
    return query.is_cuda and dropout == 0.0 and varlen_available() and _half(query) is not None


def _half(query):
    """The 16-bit dtype flash attention can run in: the query's, or autocast's (RoPE may have
    promoted q/k to fp32 under autocast); None when neither is 16-bit."""
    if query.dtype in (torch.float16, torch.bfloat16):
        return query.dtype
    if torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    return None


def _varlen_attention(query, key, value, cu, max_len: int, scaling):
    """One kernel for all examples: (1, H, T, D) in, (1, T, H, D) out."""
    fn, has_window, has_gqa = _varlen()
    half = _half(query)
    q, k, v = (t[0].transpose(0, 1).to(half) for t in (query, key, value))  # (T, H, D)
    kwargs = {"scale": scaling}
    if q.shape[1] != k.shape[1]:
        if has_gqa:
            kwargs["enable_gqa"] = True
        else:
            k, v = (t.repeat_interleave(q.shape[1] // k.shape[1], dim=1) for t in (k, v))
    if has_window:
        kwargs["window_size"] = (-1, 0)
    else:
        kwargs["is_causal"] = True
    return fn(q, k, v, cu, cu, max_len, max_len, **kwargs).unsqueeze(0)


@contextlib.contextmanager
def packed_forward():
    """While a packed row runs, transformers must not build the L x L mask it would derive
    from position_ids that restart at 0: packed_attention isolates the examples itself."""
    global _packed_forward
    previous, _packed_forward = _packed_forward, True
    try:
        yield
    finally:
        _packed_forward = previous


def _packed_or_sdpa_mask(*args, **kwargs):
    from transformers.masking_utils import sdpa_mask

    return None if _packed_forward else sdpa_mask(*args, **kwargs)


def use_packed_attention(model) -> None:
    """Switch a transformers model (or a peft wrapper of one) to packed attention."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

        AttentionInterface.register(NAME, packed_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, _packed_or_sdpa_mask)
        _registered = True
    _varlen()  # inspect once, outside any torch.compile trace
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(NAME)
