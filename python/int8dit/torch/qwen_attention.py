"""Qwen-Image's joint attention with the q/k RMSNorm, the rotary embedding and the token join in one
kernel a tensor part.

diffusers' QwenDoubleStreamAttnProcessor2_0 does what Flux's processor does with the text and image
streams of a block (int8dit.torch.flux_attention): per-head RMSNorm of q and k, the rotary embedding,
then ``torch.cat`` of the text tokens before the image tokens. Its rotary tables are complex
(``freqs`` [S, D/2], one for the image and one for the text tokens) and the rotation a complex product,
which is the kernel's pair rotation with cos = Re(freqs) and sin = Im(freqs) on both elements of a
pair. ``QwenAttentionPrepProcessor`` turns each table into that cos/sin form once (cached while the
same table object comes back, as it does for every block of a forward), writes each part of q and k
with ``int8dit.torch.attention.qk_norm_rope`` straight into the joined [B, S_txt + S_img, H, D]
buffer, joins v, and runs diffusers' ``dispatch_attention_fn`` with the mask it builds from
``encoder_hidden_states_mask`` as the stock processor does, and the output projections unchanged.

It serves eager bf16/fp16 calls that autograd does not record, with RMSNorm q/k norms (or none) in the
activations' dtype and a head_dim of 16..256 (a power of two); every other call goes to the processor
it replaced. Rounding: the norm as in flux_attention; the complex product in fp32 rounds like the
kernel's two products and sum, up to how PyTorch's complex multiply contracts them (an ulp).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .fused_processor import ComplexRotaryTables, FusedProcessor, head_norm, write_heads


class QwenAttentionPrepProcessor(FusedProcessor):
    """An Attention processor: diffusers' QwenDoubleStreamAttnProcessor2_0 with q/k's norm, rotation and
    token join fused (module docstring). ``fallback`` is the processor it replaced: it serves the calls
    this one does not fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)
        self._image_tables, self._text_tables = ComplexRotaryTables(), ComplexRotaryTables()

    def _fits(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
              attention_mask, image_rotary_emb) -> bool:
        if encoder_hidden_states is None or attention_mask is not None:
            return False  # (the stock processor raises on both; let it say so)
        if not self.call_fits(attn, hidden_states, encoder_hidden_states, attn.inner_dim // attn.heads):
            return False
        if image_rotary_emb is None:
            return True
        if not (isinstance(image_rotary_emb, (tuple, list)) and len(image_rotary_emb) == 2):
            return False
        return all(isinstance(f, Tensor) and f.is_complex() and f.dim() == 2 and f.device == hidden_states.device
                   for f in image_rotary_emb)

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 encoder_hidden_states_mask: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                 image_rotary_emb=None) -> Tensor:
        if not self._fits(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb):
            return self.fallback(attn, hidden_states, encoder_hidden_states, encoder_hidden_states_mask,
                                 attention_mask, image_rotary_emb)
        self.fused_calls += 1
        b, image_tokens = hidden_states.shape[:2]
        text_tokens = encoder_hidden_states.shape[1]
        if encoder_hidden_states_mask is not None:  # the joint mask, as the stock processor builds it
            image_mask = torch.ones((b, image_tokens), dtype=torch.bool, device=hidden_states.device)
            attention_mask = torch.cat([encoder_hidden_states_mask, image_mask], dim=1)[:, None, None, :]
        head_dim = attn.inner_dim // attn.heads
        image = [attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)]
        text = [attn.add_q_proj(encoder_hidden_states), attn.add_k_proj(encoder_hidden_states),
                attn.add_v_proj(encoder_hidden_states)]
        image = [t.unflatten(-1, (-1, head_dim)) for t in image]
        text = [t.unflatten(-1, (-1, head_dim)) for t in text]
        heads = image[0].shape[2]
        tables = (None, None)
        if image_rotary_emb is not None:
            tables = (self._text_tables.of(image_rotary_emb[1]), self._image_tables.of(image_rotary_emb[0]))
        norms = ((attn.norm_added_q, attn.norm_added_k), (attn.norm_q, attn.norm_k))
        joined = []
        for i in range(3):  # q, k, v: [B, S_txt + S_img, H, D], the text tokens first (as the stock cat)
            out = torch.empty((b, text_tokens + image_tokens, heads, head_dim), dtype=hidden_states.dtype,
                              device=hidden_states.device)
            for part, (rows, first) in enumerate(((text[i], 0), (image[i], text_tokens))):
                norm = head_norm(norms[part][i], rows.dtype, head_dim) if i < 2 else None
                write_heads(rows, out[:, first:first + rows.shape[1]], norm, tables[part] if i < 2 else None)
            joined.append(out)
        query, key, value = joined
        hidden = self._dispatch(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False,
                                backend=self._attention_backend, parallel_config=self._parallel_config)
        hidden = hidden.flatten(2, 3).to(query.dtype)
        text_out, image_out = hidden[:, :text_tokens], hidden[:, text_tokens:]
        image_out = attn.to_out[0](image_out.contiguous())
        if len(attn.to_out) > 1:
            image_out = attn.to_out[1](image_out)
        text_out = attn.to_add_out(text_out.contiguous())
        return image_out, text_out
