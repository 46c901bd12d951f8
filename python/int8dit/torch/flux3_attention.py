"""FLUX.3's attention with the q/k RMSNorm and the rotary embedding in one kernel a tensor.

diffusers' Flux3AttnProcessor (every FLUX.3 block: the per-mode blocks and the joint blocks, whose
sequence the block has joined already) copies q and k to fp32, normalizes each head with an fp32
RMSNorm (``norm_q`` / ``norm_k``, modules the class keeps in fp32), rotates them with FLUX's real
(cos, sin) tables in fp32 and rounds them back to the activations' dtype: per tensor an fp32 copy,
the norm's passes, the rotation's and the rounding, at 1024 px over 4608 tokens x 3072 in each of
the 28 joint blocks. ``Flux3AttentionPrepProcessor`` writes q and k with one ``qk_norm_rope`` call
each (read once, written once; the kernel computes in fp32 and rounds once, as the stock processor
does), then runs diffusers' ``dispatch_attention_fn`` and the output projection unchanged.

The kernel multiplies by the norm's weight in the activations' dtype. The fp32 weights of a FLUX.3
loaded from a bf16 checkpoint (or freshly made: ones) are bf16 values, so their bf16 copy gives the
same products; a weight that is not exactly a value of the activations' dtype (after fine-tuning in
fp32, say) makes the call go to the stock processor. Other calls it does not serve (autograd, compile
tracing, fp32 activations, other rotary forms) go there too. The result is the stock one up to the
order of the norm's sum (an ulp).
"""
from __future__ import annotations

import weakref
from typing import Optional

import torch
from torch import Tensor, nn

from .fused_processor import SequencePrepProcessor, prepared_heads


class ExactNormWeights:
    """(eps, weight in the activations' dtype) of per-head RMSNorms whose weight, of any float dtype,
    holds values of that dtype only, so that the kernel's products in that dtype are the norm's; None
    where it cannot (no such norm, a weight that would round, a bias). Each weight is checked once while
    its version counter stays (every block of every forward asks again)."""

    def __init__(self):
        self._seen: dict = {}  # id(weight) -> (weakref to it, its version, dtype, the cast or None)

    def of(self, norm: Optional[nn.Module], dtype: torch.dtype, head_dim: int):
        if type(norm).__name__ != "RMSNorm" or getattr(norm, "bias", None) is not None:
            return None
        weight = getattr(norm, "weight", None)
        if not isinstance(weight, Tensor) or weight.dim() != 1 or weight.shape[0] != head_dim:
            return None
        eps = float(norm.eps if norm.eps is not None else torch.finfo(dtype).eps)
        if weight.dtype == dtype:
            return eps, weight
        seen = self._seen.get(id(weight))
        if seen is None or seen[0]() is not weight or seen[1] != weight._version or seen[2] != dtype:
            cast = weight.detach().to(dtype)
            exact = torch.equal(cast.to(weight.dtype), weight.detach())
            seen = (weakref.ref(weight), weight._version, dtype, cast if exact else None)
            self._seen[id(weight)] = seen
        return None if seen[3] is None else (eps, seen[3])


class Flux3AttentionPrepProcessor(SequencePrepProcessor):
    """A Flux3Attention processor: diffusers' Flux3AttnProcessor with q's and k's norm and rotation
    fused (module docstring). ``fallback`` is the processor it replaced: it serves the calls this one
    does not fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)
        self._weights = ExactNormWeights()

    def _norms(self, attn: nn.Module, hidden_states: Tensor):
        norms = tuple(self._weights.of(getattr(attn, n, None), hidden_states.dtype, attn.head_dim)
                      for n in ("norm_q", "norm_k"))
        return None if None in norms else norms

    def _fused(self, attn: nn.Module, hidden_states: Tensor, attention_mask: Optional[Tensor], image_rotary_emb,
               norms) -> Tensor:
        from diffusers.models.transformers.transformer_flux3 import _get_qkv_projections

        dtype = hidden_states.dtype
        query, key, value = (t.unflatten(-1, (attn.heads, -1)) for t in _get_qkv_projections(attn, hidden_states))
        query, key = prepared_heads((query, key), norms, image_rotary_emb)
        hidden_states = self._dispatch(query, key, value, attn_mask=attention_mask, backend=self._attention_backend,
                                       parallel_config=self._parallel_config)
        hidden_states = hidden_states.flatten(2, 3).to(dtype)
        return attn.to_out[1](attn.to_out[0](hidden_states))
