"""Z-Image's attention with the q/k RMSNorm and the rotary embedding in one kernel a tensor.

diffusers' ZSingleStreamAttnProcessor (Z-Image, a single-stream DiT: text and image tokens in one
sequence from the first block on) normalizes each head of q and k (RMSNorm), then rotates them as
complex numbers: the bf16 values cast to fp32, viewed as complex pairs, multiplied by ``freqs_cis``
([B, S, D/2] complex, one table per sample, since each sample's tokens have their own positions) and
cast back, a norm kernel and several elementwise kernels with fp32 intermediates per tensor.
``ZImageAttentionPrepProcessor`` writes q and k with one ``qk_norm_rope`` call each per sample (one
call for the batch where the table has one sample), the complex table turned once into the kernel's
cos/sin form (cos = Re, sin = Im on both elements of a pair, cached while the same table object comes
back, as it does for every block of a forward), then runs diffusers' ``dispatch_attention_fn`` with
the stock mask handling and the output projection unchanged.

It serves eager bf16/fp16 calls that autograd does not record, with per-head RMSNorm q/k norms (or
none) in the activations' dtype and a head_dim of 16..256 (a power of two); every other call goes to
the processor it replaced. Rounding: the norm as in flux_attention (an ulp); the complex product in
fp32 rounds as the kernel's two products and sum, up to how PyTorch's complex multiply contracts them.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .fused_processor import ComplexRotaryTables, FusedProcessor, head_norm, write_heads


class ZImageAttentionPrepProcessor(FusedProcessor):
    """An Attention processor: diffusers' ZSingleStreamAttnProcessor with q's and k's norm and rotation
    fused (module docstring). ``fallback`` is the processor it replaced: it serves the calls this one
    does not fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)
        self._tables = ComplexRotaryTables()

    def _fits(self, attn: nn.Module, hidden_states: Tensor, freqs_cis) -> bool:
        heads, inner_dim = getattr(attn, "heads", 0), getattr(attn, "inner_dim", 0)
        if not heads or inner_dim % heads or hidden_states.dim() != 3:
            return False
        head_dim = inner_dim // heads
        if not self.call_fits(attn, hidden_states, None, head_dim):
            return False
        if freqs_cis is None:
            return True
        b, tokens = hidden_states.shape[:2]
        return (isinstance(freqs_cis, Tensor) and freqs_cis.is_complex() and freqs_cis.dim() == 3 and
                freqs_cis.shape[0] in (1, b) and freqs_cis.shape[1:] == (tokens, head_dim // 2) and
                freqs_cis.device == hidden_states.device)

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 attention_mask: Optional[Tensor] = None, freqs_cis: Optional[Tensor] = None) -> Tensor:
        if not self._fits(attn, hidden_states, freqs_cis):
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, freqs_cis)
        self.fused_calls += 1
        dtype = hidden_states.dtype
        query, key, value = (p(hidden_states).unflatten(-1, (attn.heads, -1))
                             for p in (attn.to_q, attn.to_k, attn.to_v))
        head_dim = query.shape[-1]
        tables = None if freqs_cis is None else self._tables.of(freqs_cis)
        prepared = []
        for rows, norm in ((query, attn.norm_q), (key, attn.norm_k)):
            spec = head_norm(norm, dtype, head_dim) if norm is not None else None
            out = torch.empty(rows.shape, dtype=dtype, device=rows.device)
            if tables is None or tables[0].shape[0] == 1:  # one table for every sample
                write_heads(rows, out, spec, None if tables is None else (tables[0][0], tables[1][0]))
            else:
                for i in range(rows.shape[0]):
                    write_heads(rows[i:i + 1], out[i:i + 1], spec, (tables[0][i], tables[1][i]))
            prepared.append(out)
        query, key = prepared
        if attention_mask is not None and attention_mask.ndim == 2:
            attention_mask = attention_mask[:, None, None, :]
        hidden_states = self._dispatch(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False,
                                       backend=self._attention_backend, parallel_config=self._parallel_config)
        hidden_states = hidden_states.flatten(2, 3).to(dtype)
        output = attn.to_out[0](hidden_states)
        if len(attn.to_out) > 1:
            output = attn.to_out[1](output)
        return output
