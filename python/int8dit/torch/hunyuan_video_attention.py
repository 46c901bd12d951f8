"""HunyuanVideo's attention with the q/k RMSNorm, the rotary embedding and the token join in one kernel
a tensor part.

diffusers' HunyuanVideoAttnProcessor2_0 (HunyuanVideo, HunyuanVideo-Framepack) normalizes each head of q
and k (RMSNorm), rotates the video tokens' q and k (diffusers' real cos/sin tables, the pair rotation
Flux uses) and puts the text tokens after the video tokens:

- in the dual-stream blocks (``add_q_proj`` set) the text tokens have projections and norms of their
  own, and q, k and v of the two streams are joined with ``torch.cat``;
- in the single-stream blocks the two streams are joined before the projections, and the rotation
  takes the video tokens out of q and k and joins them back with the text tokens (``torch.cat`` of a
  rotated slice and the rest).

Over a video's tens of thousands of tokens that is a norm kernel, about eight elementwise kernels for
the rotation and a copy for each join, per tensor. ``HunyuanVideoAttentionPrepProcessor`` writes each
part of q and k with ``int8dit.torch.attention.qk_norm_rope`` (each part of v with ``join_heads``)
straight into a joined [B, S_video + S_text, H, D] buffer, then runs diffusers' ``dispatch_attention_fn``
(attention backends and masks as before) and the output projections unchanged.

HunyuanVideo 1.5's processor (HunyuanVideo15AttnProcessor2_0) is the dual-stream path with a mask of
its own making, [B, 1, S, S] from the text mask: ``HunyuanVideo15AttentionPrepProcessor`` builds it
the same way.

It serves eager bf16/fp16 calls that autograd does not record, with per-head RMSNorm q/k norms (or none)
in the activations' dtype, a head_dim of 16..256 (a power of two) and, where there is one, a real
rotary pair fp32 [S_video, D]; every other call goes to the processor it replaced. The result is the
stock one up to the norm's rounding (include/int8dit/attention.h; an ulp), bit for bit without norms.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fused_processor import FusedProcessor, head_norm, real_rotary_fits, write_heads


class HunyuanVideoAttentionPrepProcessor(FusedProcessor):
    """An Attention processor: diffusers' HunyuanVideoAttnProcessor2_0 with q/k's norm, rotation and the
    token join fused (module docstring). ``fallback`` is the processor it replaced: it serves the calls
    this one does not fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)

    @staticmethod
    def _mask(attention_mask, batch: int, tokens: int):
        """The mask attention takes: HunyuanVideo's processor passes it as it comes."""
        return attention_mask

    def _fits(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
              attention_mask: Optional[Tensor], image_rotary_emb) -> bool:
        heads, inner_dim = getattr(attn, "heads", 0), getattr(attn, "inner_dim", 0)
        if not heads or inner_dim % heads or hidden_states.dim() != 3:
            return False
        if encoder_hidden_states is not None and (encoder_hidden_states.dim() != 3 or
                                                  encoder_hidden_states.shape[1] == 0):
            return False  # (no text tokens: the stock slices [:-0] would take none of the video tokens)
        head_dim = inner_dim // heads
        if not self.call_fits(attn, hidden_states, encoder_hidden_states, head_dim):
            return False
        return real_rotary_fits(image_rotary_emb, head_dim, hidden_states.shape[1], hidden_states.device)

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 attention_mask: Optional[Tensor] = None, image_rotary_emb=None):
        if not self._fits(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        self.fused_calls += 1
        heads, dtype = attn.heads, hidden_states.dtype
        head_dim = attn.inner_dim // heads
        b, video_tokens = hidden_states.shape[:2]
        text_tokens = 0 if encoder_hidden_states is None else encoder_hidden_states.shape[1]

        def project(x: Tensor, projections) -> list:
            return [p(x).unflatten(2, (heads, -1)) for p in projections]

        video_norms = [head_norm(attn.norm_q, dtype, head_dim), head_norm(attn.norm_k, dtype, head_dim), None]
        rotary = [image_rotary_emb, image_rotary_emb, None]
        if attn.add_q_proj is None:  # single stream: the text tokens go through the same projections
            x = hidden_states if not text_tokens else torch.cat([hidden_states, encoder_hidden_states], dim=1)
            joined_parts = project(x, (attn.to_q, attn.to_k, attn.to_v))
            video = [t[:, :video_tokens] for t in joined_parts]
            text = [t[:, video_tokens:] for t in joined_parts]
            text_norms = video_norms
        else:
            video = project(hidden_states, (attn.to_q, attn.to_k, attn.to_v))
            text = project(encoder_hidden_states, (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj)) \
                if text_tokens else [None] * 3
            text_norms = [head_norm(attn.norm_added_q, dtype, head_dim),
                          head_norm(attn.norm_added_k, dtype, head_dim), None]
        joined = []
        for i in range(3):  # q, k, v: [B, S_video + S_text, H, D], the video tokens first (as the stock cat)
            if i == 2 and attn.add_q_proj is None:
                joined.append(joined_parts[2])  # v is already joined
                continue
            out = torch.empty((b, video_tokens + text_tokens, heads, head_dim), dtype=dtype, device=hidden_states.device)
            write_heads(video[i], out[:, :video_tokens], video_norms[i], rotary[i])
            if text_tokens:
                write_heads(text[i], out[:, video_tokens:], text_norms[i])
            joined.append(out)
        query, key, value = joined
        attention_mask = self._mask(attention_mask, query.shape[0], query.shape[1])
        hidden_states = self._dispatch(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False,
                                       backend=self._attention_backend, parallel_config=self._parallel_config)
        hidden_states = hidden_states.flatten(2, 3).to(query.dtype)
        if not text_tokens:
            return hidden_states, encoder_hidden_states  # (the stock processor projects nothing here either)
        hidden_states, encoder_hidden_states = hidden_states[:, :video_tokens], hidden_states[:, video_tokens:]
        if getattr(attn, "to_out", None) is not None:
            hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if getattr(attn, "to_add_out", None) is not None:
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        return hidden_states, encoder_hidden_states


class HunyuanVideo15AttentionPrepProcessor(HunyuanVideoAttentionPrepProcessor):
    """An Attention processor: diffusers' HunyuanVideo15AttnProcessor2_0 (HunyuanVideo 1.5) with q/k's
    norm, rotation and the token join fused. Its blocks are all dual-stream (text projections of their
    own); it builds attention's [B, 1, S, S] mask from the text mask as the stock processor does."""

    @staticmethod
    def _mask(attention_mask, batch: int, tokens: int):
        # The stock processor's construction: the text mask padded with True in front (the video tokens)
        # to the joined length, then each pair of tokens allowed where both are.
        mask = F.pad(attention_mask, (tokens - attention_mask.shape[1], 0), value=True).bool()
        rows = mask.view(batch, 1, 1, tokens).repeat(1, 1, tokens, 1)
        return rows & rows.transpose(2, 3)

    def _fits(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
              attention_mask: Optional[Tensor], image_rotary_emb) -> bool:
        # (the stock processor needs the text mask and, with text, the text projections; let it say so)
        if attention_mask is None or attention_mask.dim() != 2:
            return False
        if encoder_hidden_states is not None and attn.add_q_proj is None:
            return False
        return super()._fits(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
