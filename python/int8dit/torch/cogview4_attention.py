"""CogView4's and CogVideoX's attention with the q/k LayerNorm and the rotary embedding in one kernel a
tensor part.

diffusers' CogView4AttnProcessor joins the text and image tokens before the projections, normalizes
each head of q and k with a LayerNorm without affine (eps 1e-5), and rotates the image tokens' q and k
with ``apply_rotary_emb(..., use_real_unbind_dim=-2)``: element i paired with element i + D/2 (the
halves of the row, where Flux pairs neighbours), written back into a slice of the normed tensor. Over
[B, H, S, D] that is a norm kernel each and about eight elementwise kernels and a slice copy for the
rotation; at CogView4's class defaults (head_dim 40, which no kernel here takes) they were ~40 of the
82 ms forward on the H100 (bench/results/h100/e2e_profiles_cogview4_hunyuan_ltx_23479e9.md).

``CogView4AttentionPrepProcessor`` writes q and k with ``int8dit.torch.attention.qk_norm_rope`` in
LayerNorm mode (``layer_norm=True``): the text tokens normalized, the image tokens normalized and
rotated (``split_halves=True``), straight into [B, H, S, D] buffers laid out as the stock ones, then
runs the stock attention and output projection unchanged.

It serves eager bf16/fp16 calls without an attention mask (a padded text batch goes to the stock
processor) that autograd does not record, with q/k norms that are per-head LayerNorms (with or without
weight and bias, in the activations' dtype; CogView4-6B's have no affine at all) or none, head_dim 64
or 128 (the published CogView4-6B has 128)
and diffusers' real rotary pair fp32 [S_image, D] (on the host, as CogView4 makes it, or the device);
every other call goes to the processor it replaced.
The result is the stock one up to the norm's rounding: torch's layer_norm takes Welford statistics and
an approximate rsqrt, the kernel two passes and the IEEE square root and division
(include/int8dit/attention.h), an ulp apart on a few elements.

CogVideoX's CogVideoXAttnProcessor2_0 is the same join, norm and attention with a LayerNorm that has
a weight and a bias (the kernel's ``bias``) and the rotation on neighbouring pairs:
``CogVideoXAttentionPrepProcessor``, for its heads of 64. On the H100 (bench/results/h100/README.md):
CogView4-6B 94.99 -> 62.14 ms a forward at 1024 px, CogVideoX-5B 759.85 -> 579.72 at 720x480x49.
"""
from __future__ import annotations

import weakref
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import EXTENDED_HEAD_DIMS, qk_norm_rope
from .fused_processor import FusedProcessor, real_rotary_fits


def layer_norm_spec(norm: Optional[nn.Module], dtype: torch.dtype, head_dim: int):
    """(eps, weight or None, bias or None) of a per-head LayerNorm the kernel computes (its parameters in the
    activations' dtype); ("none",) for no norm; None where the kernel cannot compute it."""
    if norm is None:
        return ("none",)
    if not isinstance(norm, nn.LayerNorm) or tuple(norm.normalized_shape) != (head_dim,):
        return None
    if any(t is not None and t.dtype != dtype for t in (norm.weight, norm.bias)):
        return None
    return float(norm.eps), norm.weight, norm.bias


# The device copy of the last host rotary pair seen: (weakref to its cos, the copied pair).
_last_tables: list = [None, None]


def tables_on(rotary, device: torch.device):
    """diffusers' CogView4 makes its rotary tables on the host every forward, and the stock rotation copies
    them to the GPU in every attention; the fused path copies them once a forward: the last pair it saw
    is kept on ``device`` while its host tables live. (Under int8dit.use_cuda_graphs the tables are device
    copies already: int8dit.torch.capturable.)"""
    if rotary is None or rotary[0].device == device:
        return rotary
    source, moved = _last_tables
    if source is not None and source() is rotary[0] and moved[0].device == device:
        return moved
    moved = tuple(t.to(device) for t in rotary)
    _last_tables[:] = [weakref.ref(rotary[0]), moved]
    return moved


class CogView4AttentionPrepProcessor(FusedProcessor):
    """An Attention processor for CogView4: diffusers' CogView4AttnProcessor with q/k preparation fused
    (module docstring). ``fallback`` is the processor it replaced: it serves the calls this one does not
    fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    _split_halves = True  # CogView4's pairs: (i, i + D/2)
    # q and k written token-major ([B, S, H, D], seen as [B, H, S, D] as value already is): SDPA (cuDNN's kernel
    # on Hopper) then returns its output token-major too, and the heads' join before to_out is a view. Written
    # heads-major (the stock layout, False) the join was a copy a call: 44 calls, 6.8 ms of a 578 ms
    # CogVideoX-5B forward on the H100 (bench/results/h100/e2e_profiles_cosmos_cogvideox_b800169.md). Measured
    # token-major against heads-major in one call a model: CogVideoX-5B 578.99 -> 573.37 ms, CogView4-6B 1024 px
    # 62.06 -> 60.90 (e2e_*_qk_token_major_*_5338e07.md).
    _qk_token_major = True

    def __init__(self, fallback):
        super().__init__(fallback)

    @staticmethod
    def applies_to(attn: nn.Module) -> bool:
        """Heads of a size the kernel's LayerNorm and split-halves rotation take (EXTENDED_HEAD_DIMS): CogView4's
        class defaults (head_dim 40) keep the stock processor."""
        heads, inner = getattr(attn, "heads", 0), getattr(attn, "inner_dim", 0)
        return bool(heads) and inner % heads == 0 and inner // heads in EXTENDED_HEAD_DIMS

    def _specs(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
               attention_mask: Optional[Tensor], image_rotary_emb):
        """The q and k norms' specs (layer_norm_spec) where the call takes the fused path, else None."""
        if attention_mask is not None or encoder_hidden_states is None or getattr(attn, "is_cross_attention", False):
            return None
        if hidden_states.dim() != 3 or encoder_hidden_states.dim() != 3 or \
                encoder_hidden_states.dtype != hidden_states.dtype:
            return None
        if not self.applies_to(attn) or getattr(attn, "inner_kv_dim", attn.inner_dim) != attn.inner_dim:
            return None  # (heads the kernel does not take, or k and v with fewer heads than q)
        head_dim = attn.inner_dim // attn.heads
        if not self.call_fits(attn, hidden_states, encoder_hidden_states, head_dim, kernel_norms=False):
            return None
        on_host = image_rotary_emb is not None and isinstance(image_rotary_emb, (tuple, list)) and \
            all(isinstance(t, Tensor) and t.is_cpu for t in image_rotary_emb)
        device = torch.device("cpu") if on_host else hidden_states.device
        if not real_rotary_fits(image_rotary_emb, head_dim, hidden_states.shape[1], device):
            return None
        specs = tuple(layer_norm_spec(getattr(attn, n, None), hidden_states.dtype, head_dim)
                      for n in ("norm_q", "norm_k"))
        return None if any(s is None for s in specs) else specs

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 attention_mask: Optional[Tensor] = None, image_rotary_emb=None):
        specs = self._specs(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        if specs is None:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        self.fused_calls += 1
        text_tokens = encoder_hidden_states.shape[1]
        image_rotary_emb = tables_on(image_rotary_emb, hidden_states.device)
        joined = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        query, key, value = attn.to_q(joined), attn.to_k(joined), attn.to_v(joined)
        b, s = joined.shape[0], joined.shape[1]
        heads = attn.heads
        prepared = []
        for x, spec in zip((query, key), specs):
            rows = x.unflatten(2, (heads, -1))  # [B, S, H, D]
            if self._qk_token_major:
                target = torch.empty(rows.shape, dtype=x.dtype, device=x.device)
                out = target.transpose(1, 2)  # seen as [B, H, S, D]
            else:
                out = torch.empty((b, heads, s, rows.shape[-1]), dtype=x.dtype, device=x.device)  # the stock layout
                target = out.transpose(1, 2)  # seen as [B, S, H, D]
            norm = spec if len(spec) == 3 else None
            eps, weight, bias = norm if norm is not None else (0.0, None, None)
            parts = ((slice(0, text_tokens), None), (slice(text_tokens, s), image_rotary_emb))
            for tokens, rotary in parts:
                if norm is None and rotary is None:
                    target[:, tokens].copy_(rows[:, tokens])  # (no norm: the text rows as they are)
                    continue
                qk_norm_rope(rows[:, tokens], weight, eps, rotary, out=target[:, tokens], normalize=norm is not None,
                             layer_norm=norm is not None, split_halves=self._split_halves and rotary is not None,
                             bias=bias)
            prepared.append(out)
        value = value.unflatten(2, (heads, -1)).transpose(1, 2)
        hidden = F.scaled_dot_product_attention(prepared[0], prepared[1], value, dropout_p=0.0, is_causal=False)
        hidden = hidden.transpose(1, 2).flatten(2, 3).type_as(prepared[0])
        hidden = attn.to_out[1](attn.to_out[0](hidden))
        encoder_out, hidden = hidden.split([text_tokens, s - text_tokens], dim=1)
        return hidden, encoder_out


class CogVideoXAttentionPrepProcessor(CogView4AttentionPrepProcessor):
    """An Attention processor for CogVideoX: diffusers' CogVideoXAttnProcessor2_0 with q/k preparation fused
    (module docstring: its LayerNorm's bias, neighbouring pairs). ``fallback`` is the processor it replaced."""

    _split_halves = False  # diffusers' apply_rotary_emb default: (2i, 2i + 1)
