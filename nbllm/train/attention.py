"""Packed-sequence attention: every example in a packed row attends only to itself.

Packed batches are one row of concatenated examples (no padding at all). The attention
function below gets the example boundaries through the model's forward kwargs and runs
causal SDPA per example, so attention costs sum(len_i^2) instead of (sum len_i)^2 and no
L x L mask is built. Without boundaries it is exactly transformers' SDPA attention (used
for generation and anything else), with the same mask creation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = "nbllm_packed"
_registered = False


def packed_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                     **kwargs):
    bounds = kwargs.pop("nbllm_segments", None)
    cu = kwargs.pop("nbllm_cu_seqlens", None)
    if bounds is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    p = dropout if module.training else 0.0
    gqa = query.shape[1] != key.shape[1]
    if cu is not None and query.is_cuda and p == 0.0 and _varlen() is not None and _half(query) is not None:
        return _varlen_attention(query, key, value, cu, max(e - s for s, e in zip(bounds[:-1], bounds[1:])),
                                 scaling), None
    out = torch.cat([F.scaled_dot_product_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e],
                                                    dropout_p=p, is_causal=True, scale=scaling, enable_gqa=gqa)
                     for s, e in zip(bounds[:-1], bounds[1:])], dim=2)
    return out.transpose(1, 2).contiguous(), None


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


def use_packed_attention(model) -> None:
    """Switch a transformers model (or a peft wrapper of one) to packed attention."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        AttentionInterface.register(NAME, packed_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
        _registered = True
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(NAME)
