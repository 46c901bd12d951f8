"""Cosmos's attention with the q/k RMSNorm and the rotary embedding in one kernel a tensor.

diffusers' CosmosAttnProcessor2_0 (Cosmos 1.0's and Cosmos 2.5's self-attention, and the text
cross-attention of the models without an image context) normalizes each head of q and k with an
RMSNorm and, in the self-attention, rotates both with ``apply_rotary_emb(..., use_real_unbind_dim=-2)``:
element i paired with element i + D/2, as CogView4 pairs them. ``CosmosAttentionPrepProcessor`` writes
q and k with one ``qk_norm_rope`` call each (``split_halves=True`` where the call rotates), token-major
as diffusers' ``dispatch_attention_fn`` takes them, then runs the attention and the output projection
unchanged.

It serves eager bf16/fp16 calls that autograd does not record, with per-head RMSNorm q/k norms the
kernel computes (or none), as many key/value heads as query heads, heads of 64 or 128 (Cosmos's 128)
and, where the call rotates, diffusers' real (cos, sin) pair fp32 [S, D] for a self-attention's S
tokens; every other call goes to the processor it replaced. The result is the stock one up to the
norm's rounding (the kernel rounds the normed value times the weight once, diffusers' RMSNorm rounds
the normed value and then the product: an ulp).
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from .attention import EXTENDED_HEAD_DIMS, qk_norm_rope
from .fused_processor import FusedProcessor, head_norm, real_rotary_fits


class CosmosAttentionPrepProcessor(FusedProcessor):
    """An Attention processor for Cosmos: diffusers' CosmosAttnProcessor2_0 with q/k preparation fused
    (module docstring). ``fallback`` is the processor it replaced: it serves the calls this one does not
    fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)

    @staticmethod
    def applies_to(attn: nn.Module) -> bool:
        """Heads the kernel's split-halves rotation takes (EXTENDED_HEAD_DIMS), as many for k/v as for q."""
        heads, inner = getattr(attn, "heads", 0), getattr(attn, "inner_dim", 0)
        return (bool(heads) and inner % heads == 0 and inner // heads in EXTENDED_HEAD_DIMS
                and getattr(attn, "inner_kv_dim", inner) == inner)

    def _norms(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
               image_rotary_emb):
        """q's and k's norms (head_norm's (eps, weight) or None) where the call takes the fused path; else None."""
        if not self.applies_to(attn) or hidden_states.dim() != 3:
            return None
        if encoder_hidden_states is not None and (encoder_hidden_states.dim() != 3 or
                                                  encoder_hidden_states.dtype != hidden_states.dtype):
            return None
        head_dim = attn.inner_dim // attn.heads
        if not self.call_fits(attn, hidden_states, encoder_hidden_states, head_dim):
            return None
        if image_rotary_emb is not None and (encoder_hidden_states is not None or not real_rotary_fits(
                image_rotary_emb, head_dim, hidden_states.shape[1], hidden_states.device)):
            return None  # (a rotation the kernel does not take, or one of a cross-attention's keys)
        dtype = hidden_states.dtype
        return tuple(head_norm(getattr(attn, n, None), dtype, head_dim) for n in ("norm_q", "norm_k"))

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 attention_mask: Optional[Tensor] = None, image_rotary_emb=None) -> Tensor:
        norms = self._norms(attn, hidden_states, encoder_hidden_states, image_rotary_emb)
        if norms is None:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        self.fused_calls += 1
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        prepared = []
        for x, norm in zip((query, key), norms):
            rows = x.unflatten(2, (attn.heads, -1))  # [B, S, H, D], as dispatch_attention_fn takes them
            if norm is None and image_rotary_emb is None:
                prepared.append(rows)
                continue
            eps, weight = norm if norm is not None else (0.0, None)
            prepared.append(qk_norm_rope(rows, weight, eps, image_rotary_emb, normalize=norm is not None,
                                         split_halves=image_rotary_emb is not None))
        value = value.unflatten(2, (attn.heads, -1))
        hidden_states = self._dispatch(prepared[0], prepared[1], value, attn_mask=attention_mask, dropout_p=0.0,
                                       is_causal=False, backend=self._attention_backend,
                                       parallel_config=self._parallel_config)
        hidden_states = hidden_states.flatten(2, 3).type_as(prepared[0])
        return attn.to_out[1](attn.to_out[0](hidden_states))
