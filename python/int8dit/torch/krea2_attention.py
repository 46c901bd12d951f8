"""Krea 2's attention with the q/k RMSNorm and the rotary embedding in one kernel a tensor.

diffusers' Krea2AttnProcessor (its image blocks and its text-fusion blocks) normalizes each head of q
and k with Krea2RMSNorm, which upcasts to fp32, runs ``F.rms_norm`` with the zero-centered weight's
``1 + weight`` (fp32, a module the class keeps in fp32) and rounds back, and then, in the image blocks,
rotates them with diffusers' ``apply_rotary_emb`` (fp32 products, rounded back): per tensor an fp32
copy, the norm's passes, ``1 + weight``, the rotation's and the roundings, over the whole sequence
(4608 tokens x 6144 for q at 1024 px) in each of Krea 2's 28 blocks. ``Krea2AttentionPrepProcessor``
writes q and k with one ``qk_norm_rope`` call each: read once, the norm's product with the fp32 weight
rounded once (the kernel's ``weight_fp32``, include/int8dit/attention.h), then the rotation rounded
once, as the stock processor rounds them. The grouped-query repeat of k and v, the attention, the
sigmoid output gate and the output projection are the stock processor's.

Calls it does not serve (autograd, compile tracing, fp32 activations, other rotary forms) go to the
processor it replaced. The result is the stock one up to the norm's rsqrt (PyTorch's approximate one
against the kernel's IEEE sqrt and division: an ulp at most).
"""
from __future__ import annotations

import weakref
from typing import Optional

import torch
from torch import Tensor, nn

from .fused_processor import SequencePrepProcessor, prepared_heads


class ZeroCenteredNormWeights:
    """(eps, the fp32 ``1 + weight``) of a Krea2RMSNorm, as its forward computes the multiplier, made once
    per weight while its version counter stays (every block of every forward asks again); None where the
    module is not such a norm of head_dim channels."""

    def __init__(self):
        self._seen: dict = {}  # id(weight) -> (weakref to it, its version, 1 + weight)

    def of(self, norm: Optional[nn.Module], head_dim: int):
        if type(norm).__name__ != "Krea2RMSNorm":
            return None
        weight = getattr(norm, "weight", None)
        if (not isinstance(weight, Tensor) or weight.dtype != torch.float32 or weight.dim() != 1 or
                weight.shape[0] != head_dim or not isinstance(getattr(norm, "eps", None), float)):
            return None
        seen = self._seen.get(id(weight))
        if seen is None or seen[0]() is not weight or seen[1] != weight._version:
            seen = (weakref.ref(weight), weight._version, (weight.detach() + 1.0).contiguous())
            self._seen[id(weight)] = seen
        return float(norm.eps), seen[2]


class Krea2AttentionPrepProcessor(SequencePrepProcessor):
    """A Krea2Attention processor: diffusers' Krea2AttnProcessor with q's and k's norm and rotation fused
    (module docstring). ``fallback`` is the processor it replaced: it serves the calls this one does not
    fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)
        self._weights = ZeroCenteredNormWeights()

    @staticmethod
    def applies_to(attn: nn.Module) -> bool:
        return all(hasattr(attn, name) for name in ("num_heads", "num_kv_heads", "head_dim", "to_gate"))

    def _norms(self, attn: nn.Module, hidden_states: Tensor):
        norms = tuple(self._weights.of(getattr(attn, n, None), attn.head_dim) for n in ("norm_q", "norm_k"))
        if None in norms or any(w.device != hidden_states.device for _, w in norms):
            return None
        return norms

    def _fused(self, attn: nn.Module, hidden_states: Tensor, attention_mask: Optional[Tensor], image_rotary_emb,
               norms) -> Tensor:
        query = attn.to_q(hidden_states).unflatten(-1, (attn.num_heads, attn.head_dim))
        key = attn.to_k(hidden_states).unflatten(-1, (attn.num_kv_heads, attn.head_dim))
        value = attn.to_v(hidden_states).unflatten(-1, (attn.num_kv_heads, attn.head_dim))
        gate = attn.to_gate(hidden_states)
        query, key = prepared_heads((query, key), norms, image_rotary_emb)
        # (as the stock processor: the key/value heads repeated for the grouped query heads, which every
        # attention backend takes with a mask)
        groups = attn.num_heads // attn.num_kv_heads
        if groups > 1:
            key = key.repeat_interleave(groups, dim=2)
            value = value.repeat_interleave(groups, dim=2)
        hidden_states = self._dispatch(query, key, value, attn_mask=attention_mask, backend=self._attention_backend,
                                       parallel_config=self._parallel_config)
        hidden_states = hidden_states.flatten(2, 3) * torch.sigmoid(gate)
        return attn.to_out[0](hidden_states)
