"""SD3's joint attention with the join of the image and text tokens (and SD3.5's q/k RMSNorm) in one
kernel a tensor part.

diffusers' JointAttnProcessor2_0 (SD3, SD3.5) transposes q, k and v of the image tokens and of the text
tokens to [B, H, S, D] views, normalizes q and k where the model has q/k norms (SD3.5), and joins each
pair with ``torch.cat(dim=2)``: a gather over transposed views that PyTorch runs element by element, at
0.66 TB/s on the H200 (72 calls, 3.0 ms of SD3-medium's 19.4 ms forward in a CUDA graph;
bench/results/h200/e2e_gated_add_54907e6.md). ``JointAttentionPrepProcessor`` writes each part straight
into its [B, H, S_img + S_txt, D] buffer with ``int8dit.torch.attention.qk_norm_rope`` (the norm where
the model has one) or ``join_heads`` (the rows as they are), 16-byte vectors a row, then runs
``F.scaled_dot_product_attention`` and the output projections unchanged.

The buffers are token-major, [B, S, H, D] seen through a [B, H, S, D] view, where the stock cat writes
them heads-major. Attention's output takes the query's layout, so the stock processor's move of the
output back to [B, S, H * D] is a transposing copy (one a block: 24 of the 27 elementwise kernels that
took 0.47 ms of SD3-medium's 19.1 ms int8dit forward in a CUDA graph, same file) and here a view. Every token's q (k, v) is one
contiguous row of H * D, the layout Flux's processor gives attention.

Like FluxQKNormRopeProcessor it serves eager bf16/fp16 calls that autograd does not record, with
RMSNorm q/k norms (or none) in the activations' dtype and a head_dim of 16..256 (a power of two), and a
text stream; every other call goes to the processor it replaced. Its result is the stock one bit for
bit where the model has no q/k norms, and within an ulp of the norm's rounding where it has (diffusers'
RMSNorm rounds x * rstd before the weight, the kernel once after it).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import HEAD_DIMS, join_heads, qk_norm_rope
from .fused_processor import FusedProcessor, norm_eps_weight


class JointAttentionPrepProcessor(FusedProcessor):
    """An Attention processor: diffusers' JointAttnProcessor2_0 with the token join (and q/k norm) fused
    (module docstring). ``fallback`` is the processor it replaced: it serves the calls this one does not
    fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    @staticmethod
    def _norm(norm: Optional[nn.Module], dtype: torch.dtype):
        """(normalize, eps, weight) for a q/k norm slot (call_fits has checked it): None is no norm."""
        if norm is None:
            return False, 0.0, None
        eps, weight = norm_eps_weight(norm, dtype)
        return True, eps, weight

    def _fits(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor]) -> bool:
        if encoder_hidden_states is None or hidden_states.dim() != 3 or encoder_hidden_states.dim() != 3:
            return False
        # (the stock processor reads head_dim off the key projection; __call__ checks that it agrees)
        return self.call_fits(attn, hidden_states, encoder_hidden_states, getattr(attn, "inner_dim", 0) // attn.heads)

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 attention_mask: Optional[Tensor] = None, *args, **kwargs) -> Tensor:
        if not self._fits(attn, hidden_states, encoder_hidden_states):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, *args, **kwargs)
        b, image_tokens = hidden_states.shape[:2]
        parts = {"image": [attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)],
                 "text": [attn.add_q_proj(encoder_hidden_states), attn.add_k_proj(encoder_hidden_states),
                          attn.add_v_proj(encoder_hidden_states)]}
        heads = attn.heads
        head_dim = parts["image"][1].shape[-1] // heads
        if head_dim not in HEAD_DIMS or head_dim * heads != getattr(attn, "inner_dim", 0):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, *args, **kwargs)
        self.fused_calls += 1
        text_tokens = encoder_hidden_states.shape[1]
        total = image_tokens + text_tokens
        norms = {"image": (attn.norm_q, attn.norm_k, None), "text": (attn.norm_added_q, attn.norm_added_k, None)}
        dtype = hidden_states.dtype
        joined = []
        for i in range(3):  # q, k, v: [B, S_img + S_txt, H, D] buffers, the image tokens first (as the stock cat)
            out = torch.empty((b, total, heads, head_dim), dtype=dtype, device=hidden_states.device)
            for name, first in (("image", 0), ("text", image_tokens)):
                rows = parts[name][i].unflatten(-1, (heads, head_dim))
                target = out[:, first:first + rows.shape[1]]  # [B, T, H, D]: whole rows of H * D
                normalize, eps, weight = self._norm(norms[name][i], dtype)
                if normalize:
                    qk_norm_rope(rows, weight, eps, None, out=target)
                else:
                    join_heads(rows, target)
            joined.append(out.transpose(1, 2))  # the [B, H, S, D] view attention takes
        query, key, value = joined
        hidden_states = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        # Attention's output follows the query's layout (cuDNN, flash and the CPU kernel all do), so this
        # is a view here, where the stock processor's [B, H, S, D] buffers made it a transposing copy.
        hidden_states = hidden_states.transpose(1, 2).reshape(b, -1, heads * head_dim).to(query.dtype)
        hidden_states, encoder_hidden_states = hidden_states[:, :image_tokens], hidden_states[:, image_tokens:]
        if not attn.context_pre_only:
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        return hidden_states, encoder_hidden_states
