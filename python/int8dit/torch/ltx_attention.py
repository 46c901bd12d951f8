"""LTX-Video's self-attention with the q/k norms and the rotary embedding in one kernel per tensor.

diffusers' LTXVideoAttnProcessor normalizes q and k across all heads (torch.nn.RMSNorm over the whole
[B, S, C] row) and then rotates each row with its own ``apply_rotary_emb``: interleaved pairs,
``x.float() * cos + rotated.float() * sin`` rounded once, through an fp32 copy, a stack and separate
products and sum. In LTX-Video 2B's forward at 768 x 512 x 121 frames those kernels took ~30 ms of 120 on
the H100 (bench/results/h100/e2e_profiles_cogview4_hunyuan_ltx_23479e9.md).

``LTXRotaryProcessor`` runs both as one ``qk_norm_rope`` call per sample and tensor: the norm across the
row's heads (``norm_heads = heads``: the statistics of all C channels, each head its part of the weight;
fused_processor.across_heads_norm says which norms and sizes) and the rotation with tables of a value per
channel (LTX's fp32 [B, S, C], which differ in every channel and may differ by sample). Each product and
sum is rounded to fp32 and the result once to the activations' dtype, as the stock rotation does; the
norm's output is rounded to the dtype before the rotation, as torch's RMSNorm's is, its rstd an IEEE
square root and division where torch's kernel takes its rsqrt (within an ulp). Where the norms do not fit
that kernel, PyTorch normalizes and the rotation alone runs in it (``normalize=False``), the rows of C
channels handed to it as C / D rows of D channels (D = 256, or the largest power of two of the kernel's
head dims that divides C), every value the stock one, bit for bit.

It serves eager bf16/fp16 self-attention calls without a mask that autograd does not record, with fp32
tables of one row per token; the others go to the processor it replaced.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .attention import HEAD_DIMS, qk_norm_rope
from .fused_processor import FusedProcessor, across_heads_norm


def row_split(channels: int) -> int:
    """D: the channels of one kernel row for rows of ``channels`` (the largest of HEAD_DIMS dividing them), or 0."""
    return next((d for d in sorted(HEAD_DIMS, reverse=True) if channels % d == 0), 0)


def rotate_rows(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x [B, S, C] rotated as LTX's apply_rotary_emb rotates it, with its fp32 tables cos, sin [B, S, C]
    (contiguous, as are x's rows): a new [B, S, C] tensor, one kernel call per sample."""
    b, s, c = x.shape
    d = row_split(c)
    out = torch.empty_like(x)
    for i in range(b):  # (the tables may differ by sample)
        rows = s * (c // d)
        qk_norm_rope(x[i].view(1, rows, 1, d), None, 0.0, (cos[i].view(rows, d), sin[i].view(rows, d)),
                     out=out[i].view(1, rows, 1, d), normalize=False)
    return out


def norm_and_rotate_rows(x: Tensor, norm, heads: int, cos: Tensor, sin: Tensor) -> Tensor:
    """x [B, S, C] normalized across its ``heads`` heads by ``norm`` (fused_processor.across_heads_norm's
    (eps, weight)) and rotated as LTX's apply_rotary_emb rotates it, with its fp32 tables cos, sin [B, S, C]
    (contiguous), one kernel call per sample (qk_norm_rope with norm_heads = heads, the tables a value a
    channel): a new [B, S, C] tensor."""
    b, s, c = x.shape
    eps, weight = norm
    out = torch.empty((b, s, c), dtype=x.dtype, device=x.device)
    rows = x.unflatten(2, (heads, c // heads))
    for i in range(b):  # (the tables may differ by sample)
        qk_norm_rope(rows[i:i + 1], weight, eps, (cos[i], sin[i]), out=out[i:i + 1].unflatten(2, (heads, c // heads)),
                     norm_heads=heads)
    return out


class LTXRotaryProcessor(FusedProcessor):
    """An LTXAttention processor: diffusers' LTXVideoAttnProcessor with the rotary embedding fused (module
    docstring). ``fallback`` is the processor it replaced: it serves the calls this one does not fuse, and
    ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)

    def _fits(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
              attention_mask: Optional[Tensor], image_rotary_emb) -> bool:
        if encoder_hidden_states is not None or attention_mask is not None or hidden_states.dim() != 3:
            return False  # (LTX rotates only in its self-attention, which has no mask)
        heads, inner_dim = getattr(attn, "heads", 0), getattr(attn, "inner_dim", 0)
        if not heads or inner_dim % heads or getattr(attn, "inner_kv_dim", inner_dim) != inner_dim:
            return False  # (k and v with fewer heads than q: not LTX-Video's self-attention)
        d = row_split(inner_dim)
        # the norms' own fit is the call's to test (across_heads_norm): only the call must suit the kernel here
        if not d or not self.call_fits(attn, hidden_states, None, d, kernel_norms=False):
            return False
        if not (isinstance(image_rotary_emb, (tuple, list)) and len(image_rotary_emb) == 2):
            return False
        shape = (hidden_states.shape[0], hidden_states.shape[1], inner_dim)
        return all(isinstance(t, Tensor) and t.dtype == torch.float32 and tuple(t.shape) == shape and
                   t.is_contiguous() and t.device == hidden_states.device for t in image_rotary_emb)

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 attention_mask: Optional[Tensor] = None, image_rotary_emb=None) -> Tensor:
        if not self._fits(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        self.fused_calls += 1
        # The stock processor's steps for a self-attention, the rotation excepted.
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        cos, sin = image_rotary_emb
        head_dim = attn.inner_dim // attn.heads
        norm_q = across_heads_norm(attn.norm_q, query, attn.heads, head_dim)
        norm_k = across_heads_norm(attn.norm_k, key, attn.heads, head_dim)
        if norm_q is not None and norm_k is not None:  # the norms across heads in the rotation's kernel
            query = norm_and_rotate_rows(query, norm_q, attn.heads, cos, sin)
            key = norm_and_rotate_rows(key, norm_k, attn.heads, cos, sin)
        else:
            query, key = attn.norm_q(query), attn.norm_k(key)
            query, key = rotate_rows(query.contiguous(), cos, sin), rotate_rows(key.contiguous(), cos, sin)
        query, key, value = (t.unflatten(2, (attn.heads, -1)) for t in (query, key, value))
        hidden_states = self._dispatch(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                       backend=self._attention_backend, parallel_config=self._parallel_config)
        hidden_states = hidden_states.flatten(2, 3).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](hidden_states))
