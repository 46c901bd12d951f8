"""adaLN-Zero normalization with the quantization of its output fused in.

diffusers' AdaLayerNormZero (DiT, SD3, Flux's double-stream blocks) and AdaLayerNormZeroSingle
(Flux's single-stream blocks) compute ``y = layer_norm(x) * (1 + scale_msa) + shift_msa`` with
PyTorch ops (a LayerNorm, then two element-wise passes), and every int8dit Linear that reads ``y``
(attention's q, k and v; Flux's single-block MLP) quantizes it again. ``FusedAdaLayerNormZero``
computes ``y``, its int8 rows and per-token scales in one kernel (layernorm_modulate_quantize with
its bf16 output) and records the int8 rows for those layers (produced.py), which then run only
their GEMMs.

The module keeps the original's children (``emb``, ``silu``, ``linear``, ``norm``): state-dict keys
and checkpoints are unchanged. It runs the original computation wherever the fused one does not
apply: traced calls (torch.compile fuses those ops itself), inputs that need a gradient,
inference mode (its tensors keep no version counter, so a later in-place write could not be
seen; use torch.no_grad), activations other than bf16/fp16, and a LayerNorm with an affine weight or bias.

Numerics: ``y`` is rounded once from fp32 where the PyTorch ops round three times, so it differs
from the original by about a bf16 ulp; the consumers' int8 values quantize the fp32 value.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .block_steps import fusable_input, modulated_norm, per_batch_modulation
from .fused import layernorm_modulate_quantize_with_output, per_token_rows
from .instance_forward import hooks_around, set_forward
from .ops import any_needs_grad, plain_eager_call
from .produced import PRODUCED

_FUSED_DTYPES = (torch.bfloat16, torch.float16)
# The diffusers classes handled, and how many modulation vectors their linear produces.
_CHUNKS = {"AdaLayerNormZero": 6, "AdaLayerNormZeroSingle": 3}


def _is_adaln_zero(module: nn.Module) -> bool:
    """A diffusers AdaLayerNormZero(Single) with a plain LayerNorm (no affine): matched by structure
    and class name, so diffusers need not be importable here."""
    chunks = _CHUNKS.get(type(module).__name__)
    norm, linear = getattr(module, "norm", None), getattr(module, "linear", None)
    return (chunks is not None and isinstance(norm, nn.LayerNorm) and norm.weight is None and norm.bias is None and
            len(norm.normalized_shape) == 1 and linear is not None and
            getattr(linear, "out_features", None) == chunks * norm.normalized_shape[0])


class FusedAdaLayerNormZero(nn.Module):
    """AdaLayerNormZero / AdaLayerNormZeroSingle (see the module docstring) whose output carries its
    own quantization for the int8dit Linears that read it."""

    def __init__(self, original: nn.Module) -> None:
        super().__init__()
        self.chunks = _CHUNKS[type(original).__name__]
        self.original_class = type(original).__name__
        if self.chunks == 6:
            self.emb = original.emb
        self.silu = original.silu
        self.linear = original.linear
        self.norm = original.norm

    def _fusable(self, x: Tensor) -> bool:
        # Under inference_mode the output would be an inference tensor, whose later writes nothing sees.
        return (x.dim() == 3 and x.dtype in _FUSED_DTYPES and x.shape[-1] % 8 == 0 and plain_eager_call(x) and
                not x.is_inference() and not torch.is_inference_mode_enabled())

    def forward(self, x: Tensor, timestep=None, class_labels=None, hidden_dtype=None, emb=None):
        if self.chunks == 6 and self.emb is not None:
            emb = self.emb(timestep, class_labels, hidden_dtype=hidden_dtype)
        emb = self.linear(self.silu(emb))
        chunks = emb.chunk(self.chunks, dim=1)
        shift_msa, scale_msa = chunks[0], chunks[1]
        if self._fusable(x) and not any_needs_grad(shift_msa, scale_msa):
            q, scale, y = layernorm_modulate_quantize_with_output(x, shift_msa, scale_msa, self.norm.eps, None)
            PRODUCED.remember(y, q, scale)
        else:
            y = self.norm(x) * (1 + scale_msa[:, None]) + shift_msa[:, None]
        return (y,) + chunks[2:]

    def extra_repr(self) -> str:
        return f"fused {self.original_class}: LayerNorm + modulation + per-token int8 in one kernel"


def is_cosmos_adaln_zero(module: nn.Module) -> bool:
    """Cosmos' CosmosAdaLayerNormZero (an adaLN-LoRA: SiLU, linear_1, linear_2 giving shift, scale and gate,
    plus the block's temb) over a plain LayerNorm."""
    norm = getattr(module, "norm", None)
    return (type(module).__name__ == "CosmosAdaLayerNormZero" and isinstance(norm, nn.LayerNorm) and
            norm.weight is None and norm.bias is None and
            all(isinstance(getattr(module, n, None), nn.Module) for n in ("activation", "linear_1", "linear_2")))


def _cosmos_rows(norm: nn.Module, embedded_timestep: Tensor, temb) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(shift, scale, gate, the table they are views of) as CosmosAdaLayerNormZero computes them: SiLU,
    linear_1, linear_2, plus the block's temb; a row per sample ([B, 1, K] each) or per token."""
    emb = norm.linear_2(norm.linear_1(norm.activation(embedded_timestep)))
    if temb is not None:
        emb = emb + temb
    shift, scale, gate = emb.chunk(3, dim=-1)
    if emb.ndim == 2:
        shift, scale, gate = (t.unsqueeze(1) for t in (shift, scale, gate))
    return shift, scale, gate, emb


def cosmos_modulation(norm: nn.Module, hidden_states: Tensor, embedded_timestep: Tensor, temb=None):
    """(shift, scale, gate) of a Cosmos adaLN-Zero norm (is_cosmos_adaln_zero) for ``hidden_states``, or None
    where they are neither one row a sample nor one a token, which the fused norms do not take."""
    shift, scale, gate, emb = _cosmos_rows(norm, embedded_timestep, temb)
    if per_batch_modulation(emb, hidden_states) or per_token_rows(shift, hidden_states):
        return shift, scale, gate
    return None


def _cosmos_adaln_forward(self, hidden_states: Tensor, embedded_timestep: Tensor, temb=None):
    # The class's computation, with the modulated norm in one kernel (rows recorded for its readers) where
    # the modulation is one row a sample, or one a token (Cosmos 2.5's per-frame rows, [B, tokens, 3K]).
    shift, scale, gate, emb = _cosmos_rows(self, embedded_timestep, temb)
    if fusable_input(hidden_states) and (per_batch_modulation(emb, hidden_states) or
                                         per_token_rows(shift, hidden_states)):
        return modulated_norm(self.norm, hidden_states, shift, scale), gate
    return self.norm(hidden_states) * (1 + scale) + shift, gate


def fuse_adaln_zero(model: nn.Module) -> int:
    """Replace, in place, every diffusers AdaLayerNormZero(Single) of ``model`` by a
    FusedAdaLayerNormZero holding the same modules, and give every Cosmos adaLN-Zero norm a fused
    forward of its own (set on the instance). Returns how many."""
    targets = [name for name, m in model.named_modules()
               if name and _is_adaln_zero(m) and not hooks_around(m)]  # (a hooked one stays)
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, child)
        new = FusedAdaLayerNormZero(old)
        new.train(old.training)
        setattr(parent, child, new)
    cosmos = [m for m in model.modules() if is_cosmos_adaln_zero(m) and not getattr(m, "_int8dit_fused_norms", False)]
    for module in cosmos:
        set_forward(module, _cosmos_adaln_forward)
        module._int8dit_fused_norms = True
    return len(targets) + len(cosmos)
