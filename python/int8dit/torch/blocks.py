"""DiT blocks whose inline modulated norms quantize their own output.

diffusers' BasicTransformerBlock (DiT: ``norm_type="ada_norm_zero"``; PixArt: ``"ada_norm_single"``)
modulates some LayerNorms inline in its forward, ``layer_norm(h) * (1 + scale) + shift`` as three
PyTorch passes, and feeds the result to int8dit Linears that quantize it once more: the MLP's first
linear in both, and in PixArt the attention's q, k and v too. Those norms are not modules of their
own, so int8dit.torch.adanorm cannot replace them; ``fuse_block_norms`` gives each such block a forward
of its own that computes them with ``layernorm_modulate_quantize`` (the bf16 output and its int8
rows in one kernel) and records the rows for the layers that read them (produced.py).

The block's forward is replaced on the instance, so the module, its class, its children and its
state dict stay as they are. The replacement handles the configurations DiT and PixArt use (no
positional embedding, no GLIGEN, no chunked feed-forward, self-attention first) on plain eager
calls with bf16/fp16 activations; any other call runs the class's own forward. (A model pickled with
``torch.save`` would carry the bound forward: save it with int8dit.save_quantized.)
"""
from __future__ import annotations

import types
from typing import Optional

import torch
from torch import Tensor, nn

from .fused import layernorm_modulate_quantize_with_output
from .ops import plain_eager_call
from .produced import PRODUCED

_NORM_TYPES = ("ada_norm_zero", "ada_norm_single")
_FUSED_DTYPES = (torch.bfloat16, torch.float16)


def _plain_layer_norm(norm: Optional[nn.Module]) -> bool:
    return (isinstance(norm, nn.LayerNorm) and norm.weight is None and norm.bias is None and
            len(norm.normalized_shape) == 1)


def _is_fusable_block(block: nn.Module) -> bool:
    """A diffusers BasicTransformerBlock in a configuration the fused forward reproduces (matched by
    class name and attributes, so diffusers need not be importable here)."""
    if type(block).__name__ != "BasicTransformerBlock" or getattr(block, "norm_type", None) not in _NORM_TYPES:
        return False
    if getattr(block, "pos_embed", True) is not None or getattr(block, "only_cross_attention", True):
        return False
    if getattr(block, "_int8dit_fused_norms", False):
        return False
    if block.norm_type == "ada_norm_zero":
        return _plain_layer_norm(getattr(block, "norm3", None))
    return _plain_layer_norm(getattr(block, "norm1", None)) and _plain_layer_norm(getattr(block, "norm2", None))


def _modulated_norm(norm: nn.LayerNorm, x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """layer_norm(x) * (1 + scale) + shift, rounded once, with its int8 rows recorded for its readers.
    shift and scale: one row per batch element ([B, K] or [B, 1, K])."""
    b, k = x.shape[0], x.shape[-1]
    q, q_scale, y = layernorm_modulate_quantize_with_output(x, shift.reshape(b, k), scale.reshape(b, k), norm.eps,
                                                            None)
    PRODUCED.remember(y, q, q_scale)
    return y


def _takes_fused_path(block: nn.Module, x: Tensor, cross_attention_kwargs) -> bool:
    return (x.dim() == 3 and x.dtype in _FUSED_DTYPES and x.shape[-1] % 8 == 0 and block._chunk_size is None and
            not (cross_attention_kwargs and "gligen" in cross_attention_kwargs) and plain_eager_call(x) and
            not x.is_inference() and not torch.is_inference_mode_enabled())


def _fused_forward(self, hidden_states: Tensor, attention_mask=None, encoder_hidden_states=None,
                   encoder_attention_mask=None, timestep=None, cross_attention_kwargs=None, class_labels=None,
                   added_cond_kwargs=None) -> Tensor:
    if not _takes_fused_path(self, hidden_states, cross_attention_kwargs):
        return type(self).forward(self, hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask,
                                  timestep, cross_attention_kwargs, class_labels, added_cond_kwargs)
    kwargs = dict(cross_attention_kwargs) if cross_attention_kwargs else {}
    zero = self.norm_type == "ada_norm_zero"
    if zero:  # the norm is a module (int8dit.torch.adanorm fuses it)
        y, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(hidden_states, timestep, class_labels,
                                                                  hidden_dtype=hidden_states.dtype)
        gate_msa, gate_mlp = gate_msa.unsqueeze(1), gate_mlp.unsqueeze(1)
    else:  # PixArt: one modulation table for the whole model, added to the block's own
        batch = hidden_states.shape[0]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.scale_shift_table[None] + timestep.reshape(batch, 6, -1)).chunk(6, dim=1)
        y = _modulated_norm(self.norm1, hidden_states, shift_msa, scale_msa)

    hidden_states = gate_msa * self.attn1(y, encoder_hidden_states=None, attention_mask=attention_mask,
                                          **kwargs) + hidden_states
    if self.attn2 is not None:  # cross-attention: PixArt reads the residual stream as it is
        h = self.norm2(hidden_states) if zero else hidden_states
        hidden_states = self.attn2(h, encoder_hidden_states=encoder_hidden_states,
                                   attention_mask=encoder_attention_mask, **kwargs) + hidden_states
    y = _modulated_norm(self.norm3 if zero else self.norm2, hidden_states, shift_mlp, scale_mlp)
    return gate_mlp * self.ff(y) + hidden_states


def fuse_block_norms(model: nn.Module) -> int:
    """Give every diffusers BasicTransformerBlock of ``model`` that DiT or PixArt configure the fused
    forward (see the module docstring). Returns how many."""
    count = 0
    for module in model.modules():
        if _is_fusable_block(module):
            module.forward = types.MethodType(_fused_forward, module)
            module._int8dit_fused_norms = True
            count += 1
    return count
