"""Flux's attention with the q/k RMSNorm, the rotary embedding and the token join in one kernel a tensor.

diffusers' FluxAttnProcessor normalizes q and k per head (``norm_q``/``norm_k``, and
``norm_added_q``/``norm_added_k`` for the text tokens of the double-stream blocks), joins the text
and image tokens with ``torch.cat`` and rotates q and k with ``apply_rotary_emb``. In Flux-dev at
1024 px that is about eleven kernels over 57 MB tensors a block: on the H200, 36.6 ms of elementwise
and 9.2 ms of norm kernels in a 121 ms forward (bench/results/h200/e2e_gated_add_54907e6.md).

``int8dit.fuse_attention_prep(model)`` (int8dit.torch.attention_prep) gives each FluxAttention that
runs the stock processor a ``FluxQKNormRopeProcessor``. It computes the projections as diffusers does, then writes each of q and
k with ``int8dit.torch.attention.qk_norm_rope`` straight into its joined [B, T_txt + T_img, H, D]
buffer (text rows first, rotary rows offset by the text tokens), joins v with ``torch.cat`` and runs
diffusers' ``dispatch_attention_fn`` and output projections unchanged. It works on bf16 and on
int8dit-quantized models alike; the rotation is not an int8 matter, so the end-to-end benchmark times
it on both (``--paths ..._prep_graph``).

It takes the fused path for eager bf16/fp16 calls that autograd does not record, with the norms'
weights in the activations' dtype and a head_dim of 16..256 (a power of two). Every other call
(torch.compile tracing, autograd, fp32, a double-stream block called without its text tokens) goes to
the processor it replaced; IP-adapter processors are not replaced at all. The result is the stock one
up to the rounding of the norm (include/int8dit/attention.h: an IEEE 1/sqrt where PyTorch's rsqrt is
approximate; a unit in the last place at most).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .attention import qk_norm_rope
from .fused_processor import FusedProcessor, norm_eps_weight, real_rotary_fits


class FluxQKNormRopeProcessor(FusedProcessor):
    """A FluxAttention processor: diffusers' FluxAttnProcessor with q/k's norm, rotation and token join
    fused (module docstring). ``fallback`` is the processor it replaced: it serves the calls this one
    does not fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)
        self._projections = self._stock_projections()

    @staticmethod
    def applies_to(attn: nn.Module) -> bool:
        # FluxAttention and its copies, which know their head_dim; a plain diffusers Attention given a copy
        # of the processor (Bria FIBO's single-stream blocks) keeps it
        return isinstance(getattr(attn, "head_dim", None), int)

    @staticmethod
    def _stock_projections():
        """diffusers' q/k/v projection helper of the replaced processor's model."""
        from diffusers.models.transformers.transformer_flux import _get_qkv_projections
        return _get_qkv_projections

    def _fits(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
              image_rotary_emb) -> bool:
        if not self.call_fits(attn, hidden_states, encoder_hidden_states, attn.head_dim):
            return False
        if attn.norm_q is None or attn.norm_k is None:
            return False
        text_tokens = 0
        if encoder_hidden_states is not None:
            if attn.added_kv_proj_dim is None or attn.norm_added_q is None or attn.norm_added_k is None:
                return False  # (diffusers ignores the text tokens without added projections; so does the fallback)
            text_tokens = encoder_hidden_states.shape[1]
        elif attn.added_kv_proj_dim is not None:
            return False
        return real_rotary_fits(image_rotary_emb, attn.head_dim, text_tokens + hidden_states.shape[1], hidden_states.device)

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 attention_mask: Optional[Tensor] = None, image_rotary_emb=None) -> Tensor:
        if not self._fits(attn, hidden_states, encoder_hidden_states, image_rotary_emb):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        self.fused_calls += 1
        query, key, value, text_query, text_key, text_value = self._projections(attn, hidden_states,
                                                                                encoder_hidden_states)
        d = attn.head_dim
        query, key, value = (t.unflatten(-1, (-1, d)) for t in (query, key, value))
        b, image_tokens, heads, _ = query.shape
        pairs = [(query, attn.norm_q), (key, attn.norm_k)]
        text_tokens = 0
        if encoder_hidden_states is not None:
            text_query, text_key, text_value = (t.unflatten(-1, (-1, d)) for t in (text_query, text_key, text_value))
            text_tokens = text_query.shape[1]
            value = torch.cat([text_value, value], dim=1)
        joined = []
        for i, (image_part, norm) in enumerate(pairs):
            out = torch.empty((b, text_tokens + image_tokens, heads, d), dtype=image_part.dtype,
                              device=image_part.device)
            if text_tokens:
                text_part, text_norm = (text_query, attn.norm_added_q) if i == 0 else (text_key, attn.norm_added_k)
                eps, weight = norm_eps_weight(text_norm, text_part.dtype)
                qk_norm_rope(text_part, weight, eps, image_rotary_emb, out=out[:, :text_tokens], rope_offset=0)
            eps, weight = norm_eps_weight(norm, image_part.dtype)
            qk_norm_rope(image_part, weight, eps, image_rotary_emb, out=out[:, text_tokens:], rope_offset=text_tokens)
            joined.append(out)
        query, key = joined
        hidden_states = self._dispatch(query, key, value, attn_mask=attention_mask, backend=self._attention_backend,
                                       parallel_config=self._parallel_config)
        return self._output(attn, hidden_states.flatten(2, 3).to(query.dtype), text_tokens,
                            encoder_hidden_states is not None)

    @staticmethod
    def _output(attn: nn.Module, hidden_states: Tensor, text_tokens: int, has_text: bool):
        """The stock processor's end: Flux's single-stream blocks project outside the attention."""
        if not has_text:
            return hidden_states
        text_out, image_out = hidden_states[:, :text_tokens], hidden_states[:, text_tokens:]
        image_out = attn.to_out[1](attn.to_out[0](image_out.contiguous()))
        text_out = attn.to_add_out(text_out.contiguous())
        return image_out, text_out
