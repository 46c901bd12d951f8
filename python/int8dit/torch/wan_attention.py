"""Wan's self-attention with the q/k norms and the rotary embedding in one kernel per tensor.

diffusers' WanAttnProcessor (Wan 2.1 / 2.2) normalizes q and k across all heads (torch.nn.RMSNorm over
heads x head_dim, a kernel of its own), then rotates each head with a local ``apply_rotary_emb``: the
pairs taken apart with ``unbind``, four fp32 products and two sums over [B, S, H, D/2], written back into
an ``empty_like`` by two strided assignments, eight kernels and fp32 intermediates over a video's tens of
thousands of tokens, per tensor. ``WanRotaryProcessor`` runs the stock processor's steps with the norm
and that rotation replaced by one ``int8dit.torch.attention.qk_norm_rope`` call per tensor
(``norm_heads = heads``: the statistics of the whole row, each head its part of the weight; where
fused_processor.across_heads_norm does not take the norm, PyTorch's norm and the rotation alone,
``normalize=False``): each element read once and written once. The norm's output is rounded to the
activations' dtype before the rotation, as torch's RMSNorm's is (its rstd an IEEE square root and
division where torch's kernel takes its rsqrt: within an ulp).

Wan's rotation takes, for the pair (x1, x2) of channels (2i, 2i + 1), ``x1 * cos[2i] - x2 * sin[2i + 1]``
and ``x1 * sin[2i + 1] + x2 * cos[2i]``, each product and sum rounded to fp32 and the result once to
the activations' dtype. The kernel reads cos and sin per channel (include/int8dit/attention.h), so
this module hands it tables with cos[2i] in both channels of a pair and sin[2i + 1] in both, made once
per table object (the model makes one pair a forward and every block reuses it): then every value is
the stock one, bit for bit.

It serves eager bf16/fp16 calls that autograd does not record, with a head_dim of 16..256 (a power of
two) and fp32 tables of one row per token (diffusers keeps Wan's ``rope`` in fp32 when the model is
loaded with ``torch_dtype``; a model cast with ``.to(bf16)`` has bf16 tables, whose products the stock
processor rounds to bf16, and takes the stock path). Calls without a rotation (cross-attention) and
every other call go to the processor it replaced. (Wan rotates only in its self-attention; the
cross-attention, image-to-video's included, has nothing here to fuse.)
"""
from __future__ import annotations

import weakref
from typing import Optional

import torch
from torch import Tensor, nn

from .attention import qk_norm_rope
from .fused_processor import FusedProcessor, across_heads_norm


class _PairTables:
    """The kernel's cos/sin [S, D] for Wan's (freqs_cos, freqs_sin) [1, S, 1, D], remembered for the last
    pair of table objects seen."""

    def __init__(self):
        self._sources = None  # weakrefs to the tables the kernel's were made from
        self._tables = None

    def of(self, freqs_cos: Tensor, freqs_sin: Tensor):
        if self._sources is not None and self._sources[0]() is freqs_cos and self._sources[1]() is freqs_sin:
            return self._tables
        d = freqs_cos.shape[-1]
        cos = freqs_cos.reshape(-1, d)[:, 0::2].repeat_interleave(2, dim=-1).contiguous()
        sin = freqs_sin.reshape(-1, d)[:, 1::2].repeat_interleave(2, dim=-1).contiguous()
        self._sources, self._tables = (weakref.ref(freqs_cos), weakref.ref(freqs_sin)), (cos, sin)
        return self._tables


def _norm_and_rotate(x: Tensor, norm, tables) -> Tensor:
    """x [B, S, H, D] rotated with the kernel's tables, after the norm across its heads where ``norm`` is
    fused_processor.across_heads_norm's (eps, weight) (None: x is normalized already)."""
    if norm is None:
        return qk_norm_rope(x, None, 0.0, tables, normalize=False)
    eps, weight = norm
    return qk_norm_rope(x, weight, eps, tables, norm_heads=x.shape[2])


class WanRotaryProcessor(FusedProcessor):
    """A WanAttention processor: diffusers' WanAttnProcessor with the rotary embedding fused (module
    docstring). ``fallback`` is the processor it replaced: it serves the calls this one does not fuse,
    and ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)
        from diffusers.models.transformers.transformer_wan import _get_qkv_projections
        self._projections = _get_qkv_projections
        self._tables = _PairTables()

    def _fits(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
              rotary_emb) -> bool:
        if rotary_emb is None or hidden_states.dim() != 3:
            return False  # (no rotation, as in the cross-attention: nothing to fuse)
        if encoder_hidden_states is not None or getattr(attn, "add_k_proj", None) is not None:
            return False  # (Wan rotates only in its self-attention)
        heads, inner_dim = getattr(attn, "heads", 0), getattr(attn, "inner_dim", 0)
        if not heads or inner_dim % heads:
            return False
        head_dim = inner_dim // heads
        # the norms' own fit is the call's to test (across_heads_norm): only the call must suit the kernel here
        if not self.call_fits(attn, hidden_states, None, head_dim, kernel_norms=False):
            return False
        if not (isinstance(rotary_emb, (tuple, list)) and len(rotary_emb) == 2):
            return False
        tokens = hidden_states.shape[1]
        return all(isinstance(t, Tensor) and t.dtype == torch.float32 and t.shape[-1] == head_dim and
                   t.numel() == tokens * head_dim and t.device == hidden_states.device for t in rotary_emb)

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 attention_mask: Optional[Tensor] = None, rotary_emb=None) -> Tensor:
        if not self._fits(attn, hidden_states, encoder_hidden_states, rotary_emb):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
        self.fused_calls += 1
        # The stock processor's steps for a self-attention, the norms across heads (where they fit) and the
        # rotation excepted: those in one kernel a tensor.
        query, key, value = self._projections(attn, hidden_states, None)
        head_dim = attn.inner_dim // attn.heads
        norm_q = across_heads_norm(attn.norm_q, query, attn.heads, head_dim)
        norm_k = across_heads_norm(attn.norm_k, key, attn.heads, head_dim)
        if norm_q is None or norm_k is None:  # (norms the kernel does not take: PyTorch's, as stock)
            query, key, norm_q, norm_k = attn.norm_q(query), attn.norm_k(key), None, None
        query, key, value = (t.unflatten(2, (attn.heads, -1)) for t in (query, key, value))
        tables = self._tables.of(*rotary_emb)
        query, key = _norm_and_rotate(query, norm_q, tables), _norm_and_rotate(key, norm_k, tables)
        hidden_states = self._dispatch(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False,
                                       backend=self._attention_backend, parallel_config=self._parallel_config)
        hidden_states = hidden_states.flatten(2, 3).type_as(query)
        return attn.to_out[1](attn.to_out[0](hidden_states))
