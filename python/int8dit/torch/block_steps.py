"""The steps int8dit.torch.blocks builds its fused block forwards from: a modulated norm that quantizes
its own output and records the rows for its readers (produced.py), the residual update before an MLP's
norm in that norm's kernel, the MLP on the norm's rows, and the gated residual update as one kernel; and
the tests of which inputs the fused kernels take (the rest runs the blocks' own ops)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .fused import (gated_residual_add, gated_residual_fits, gated_residual_layernorm_modulate,
                    layernorm_modulate_quantize_with_output, per_token_rows, rows_plus_table, rows_plus_table_fits,
                    rmsnorm_quantize_with_output)
from .mlp import GeluMLP
from .ops import any_needs_grad, plain_eager_call
from .produced import PRODUCED


# The activation dtypes the fused kernels take.
FUSED_DTYPES = (torch.bfloat16, torch.float16)


def plain_layer_norm(norm: Optional[nn.Module]) -> bool:
    return (isinstance(norm, nn.LayerNorm) and norm.weight is None and norm.bias is None and
            len(norm.normalized_shape) == 1)


def is_rms_norm(norm: nn.Module) -> bool:
    """Whether a block's norm (plain_layer_norm or unweighted_rms_norm) is the RMSNorm: the kernels then
    subtract no mean."""
    return not isinstance(norm, nn.LayerNorm)


def joint_block_fits(block: nn.Module) -> bool:
    """A double-stream block's MLP norms (Flux, SD3, HunyuanVideo): plain LayerNorms for the image stream
    and, unless the block ends the text stream (context_pre_only), for the text stream."""
    return plain_layer_norm(getattr(block, "norm2", None)) and (
        getattr(block, "context_pre_only", False) or plain_layer_norm(getattr(block, "norm2_context", None)))


def modulated_norm(norm: nn.Module, x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """norm(x) * (1 + scale) + shift, rounded once, with its int8 rows recorded for its readers; norm a
    LayerNorm or an RMSNorm, either without weight (plain_layer_norm, unweighted_rms_norm). shift and
    scale: one row per batch element ([B, K] or [B, 1, K]) or one per token ([B, T, K]: per_token_rows).
    Where autograd must see it (a trainable adaLN linear or adapter), the block's own three ops."""
    if any_needs_grad(x, shift, scale):
        rows = x.shape if per_token_rows(shift, x) else (x.shape[0], 1, x.shape[-1])
        return norm(x) * (1 + scale.reshape(rows)) + shift.reshape(rows)
    q, q_scale, y = layernorm_modulate_quantize_with_output(x, shift, scale, norm.eps, None, rms=is_rms_norm(norm))
    PRODUCED.remember(y, q, q_scale)
    return y


def affine_layer_norm_fits(norm: Optional[nn.Module], x: Tensor) -> bool:
    """A LayerNorm over x's last dimension with its own weight and bias (elementwise affine: Wan's
    FP32LayerNorm before its cross-attention)."""
    weight, bias = getattr(norm, "weight", None), getattr(norm, "bias", None)
    return (isinstance(norm, nn.LayerNorm) and isinstance(weight, Tensor) and isinstance(bias, Tensor) and
            tuple(norm.normalized_shape) == (x.shape[-1],) and weight.device == x.device and
            bias.device == x.device)


def affine_layer_norm(norm: nn.LayerNorm, x: Tensor) -> Tensor:
    """norm(x) for a LayerNorm with weight and bias (affine_layer_norm_fits), rounded once to x's dtype,
    with its int8 rows recorded for its readers: the modulation kernel with the weight and bias as its
    rows (scale_is_weight), in place of PyTorch's fp32 copy, norm and cast back (FP32LayerNorm) and the
    next linear's quantization of the result. The kernel reads the weight and bias in x's dtype: exact
    where the model holds them in it, within an ulp of the output where it keeps them in fp32 (as
    diffusers' from_pretrained keeps Wan's norms), as the fused blocks' modulation rows are. Where
    autograd must see it, the module itself."""
    if any_needs_grad(x, norm.weight, norm.bias):
        return norm(x.float()).type_as(x)
    rows = (x.shape[0], x.shape[-1])
    q, q_scale, y = layernorm_modulate_quantize_with_output(x, norm.bias.expand(rows), norm.weight.expand(rows),
                                                            norm.eps, None, scale_is_weight=True)
    PRODUCED.remember(y, q, q_scale)
    return y


def folded_affine_modulation(norm: nn.LayerNorm, shift: Tensor, scale: Tensor, dtype: torch.dtype):
    """A LayerNorm with weight w and bias b, modulated: (x_hat * w + b) * (1 + scale) + shift is x_hat * w' + b'
    with w' = w * (1 + scale) and b' = b * (1 + scale) + shift, a row pair per sample (shift and scale [B, K]
    or [B, 1, K]), each computed in fp32 and rounded once to ``dtype``: the kernel's own weight and bias
    (scale_is_weight). Returns (b', w')."""
    rows = (shift.shape[0], shift.shape[-1])
    factor = 1 + scale.reshape(rows).float()
    weight = norm.weight.float() * factor
    bias = norm.bias.float() * factor + shift.reshape(rows).float()
    return bias.to(dtype), weight.to(dtype)


def affine_modulated_norm(norm: nn.LayerNorm, x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """norm(x) * (1 + scale) + shift for a LayerNorm with its own weight and bias (CogVideoX's
    CogVideoXLayerNormZero), one row per sample, with its int8 rows recorded for its readers: the
    modulation kernel on folded_affine_modulation's rows, which rounds once where PyTorch rounds the
    norm, the product and the sum (and the folded rows are rounded to x's dtype: within an ulp). Where
    autograd must see it, the block's own ops."""
    rows = (x.shape[0], 1, x.shape[-1])
    if any_needs_grad(x, shift, scale, norm.weight, norm.bias):
        return norm(x) * (1 + scale.reshape(rows)) + shift.reshape(rows)
    bias, weight = folded_affine_modulation(norm, shift, scale, x.dtype)
    q, q_scale, y = layernorm_modulate_quantize_with_output(x, bias, weight, norm.eps, None, scale_is_weight=True)
    PRODUCED.remember(y, q, q_scale)
    return y


def has_affine(norm: nn.Module) -> bool:
    """A LayerNorm with its own weight and bias, whose modulation the kernels take folded into them
    (folded_affine_modulation; CogVideoX's block norms)."""
    return isinstance(norm, nn.LayerNorm) and norm.weight is not None and norm.bias is not None


def kernel_rows(norm: nn.Module, shift: Tensor, scale: Tensor, dtype: torch.dtype):
    """(shift, scale, scale_is_weight) as the modulation kernels take them: the block's rows for a norm
    without affine, the rows folded with the norm's weight and bias for one with them (has_affine)."""
    if has_affine(norm):
        return (*folded_affine_modulation(norm, shift, scale, dtype), True)
    return shift, scale, False


def residual_then_modulated_norm(norm: nn.Module, h: Tensor, update: Tensor, gate: Optional[Tensor],
                                  shift: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """(h + gate * update, the modulated norm of that), gate None meaning 1: the residual update a block
    makes right before its MLP's norm, fused into the norm's kernel (one pass instead of PyTorch's
    product, sum and the norm's read of the sum) where the tensors' layout allows, else as the block
    computes it. The sum is rounded once where PyTorch rounds the product first. A norm with its own
    weight and bias (has_affine) takes a row per sample."""
    if gated_residual_fits(h, update, gate, shift, scale) and not any_needs_grad(h, update, gate, shift, scale):
        kshift, kscale, as_weight = kernel_rows(norm, shift, scale, h.dtype)
        h, y, q, q_scale = gated_residual_layernorm_modulate(h, update, gate, kshift, kscale, norm.eps,
                                                             rms=is_rms_norm(norm), scale_is_weight=as_weight)
        PRODUCED.remember(y, q, q_scale)
        return h, y
    h = gated_add(h, gate, update)
    if has_affine(norm):
        return h, affine_modulated_norm(norm, h, shift, scale)
    return h, modulated_norm(norm, h, shift, scale)


def residual_then_mlp(norm: nn.Module, ff: nn.Module, h: Tensor, update: Tensor, gate: Optional[Tensor],
                       shift: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """(h + gate * update, ff(modulated norm of that)): as residual_then_modulated_norm, then the MLP.
    Where the MLP is int8dit's GeluMLP on an int8dit fc1, the norm's kernel writes only fc1's int8 rows,
    not the bf16 values no one would read (an [M, K] tensor: 19 MB a DiT-XL/2 block), and fc1 runs its
    GEMM on them."""
    fc1 = ff.int8_fc1() if isinstance(ff, GeluMLP) else None
    if fc1 is None or any_needs_grad(h, update, gate, shift, scale):
        h, y = residual_then_modulated_norm(norm, h, update, gate, shift, scale)
        return h, ff(y)
    smooth, rms = fc1._buffers["smooth"], is_rms_norm(norm)
    kshift, kscale, as_weight = kernel_rows(norm, shift, scale, h.dtype)
    if gated_residual_fits(h, update, gate, shift, scale, smooth):
        h, _, q, q_scale = gated_residual_layernorm_modulate(h, update, gate, kshift, kscale, norm.eps, want_y=False,
                                                             smooth=smooth, rms=rms, scale_is_weight=as_weight)
    else:  # (DiT's first block: the patch embedding's transposed view) the sum apart, then the norm
        h = gated_add(h, gate, update)
        q, q_scale, _ = layernorm_modulate_quantize_with_output(h, kshift, kscale, norm.eps, smooth, want_y=False,
                                                                rms=rms, scale_is_weight=as_weight)
    return h, ff.forward_on_rows(q, q_scale, h.dtype)


def residual_mlp_update(norm: nn.Module, ff: nn.Module, h: Tensor, update: Tensor, gate: Optional[Tensor],
                         shift: Tensor, scale: Tensor, gate_mlp: Optional[Tensor]) -> Tensor:
    """The second half of a block's stream: h + gate * update (the attention's), its modulated norm through
    the MLP (residual_then_mlp), and that sum + gate_mlp * the MLP's output (gated_add; gates None meaning 1)."""
    h, ff_output = residual_then_mlp(norm, ff, h, update, gate, shift, scale)
    return gated_add(h, gate_mlp, ff_output)


def gated_add(h: Tensor, gate: Optional[Tensor], update: Tensor) -> Tensor:
    """h + gate * update (gate None meaning 1) as one kernel: int8dit's gated_add where the tensors fit it
    (one FMA rounded once, 16-byte vectors), else torch.addcmul, which reads h, gate and the update and
    writes the sum rounded once but, with the gate broadcast over the tokens, does not vectorize
    (32.7 us a DiT-XL/2 block on the H200 for 57 MB). Either way the product and the sum are not two
    ops that write the product and read it back (an [M, N] tensor each way: 38 MB a DiT-XL/2 update).
    The sum takes the layout of the update, as the two ops give it."""
    if gate is None:
        return update + h
    if gated_add_fits(h, gate, update):
        return gated_residual_add(h, gate, update)
    if h.is_contiguous():
        return torch.addcmul(h, gate, update)
    # NOTE: addcmul's output would take h's layout: DiT's first block reads the patch embedding's
    # transposed view, and every later block would then get a residual stream the fused norms refuse.
    return gate * update + h


def gated_add_fits(h: Tensor, gate: Tensor, update: Tensor) -> bool:
    """Whether int8dit's gated_add takes this update (fused.gated_residual_add): plain eager CUDA tensors
    of one half dtype, h and the update contiguous [B, T, K], the gate one row per batch element or one
    per token (per_token_rows)."""
    return (h.is_cuda and h.dim() == 3 and h.dtype in FUSED_DTYPES and update.dtype == h.dtype and
            gate.dtype == h.dtype and update.shape == h.shape and gate.device == h.device and
            (gate.numel() == h.shape[0] * h.shape[2] or per_token_rows(gate, h)) and
            gate.shape[-1] == h.shape[2] and h.is_contiguous() and
            update.is_contiguous() and plain_eager_call(h) and not any_needs_grad(h, gate, update))


def fusable_input(x: Tensor) -> bool:
    return (x.dim() == 3 and x.dtype in FUSED_DTYPES and x.shape[-1] % 8 == 0 and plain_eager_call(x) and
            not x.is_inference() and not torch.is_inference_mode_enabled())


def per_batch_modulation(mod: Tensor, x: Tensor) -> bool:
    """Whether a modulation table holds one row per batch element of x ([B, n] or [B, 1, n])."""
    return mod.shape[0] == x.shape[0] and (mod.dim() == 2 or (mod.dim() == 3 and mod.shape[1] == 1))


def modulation_fits(mod: Tensor, batch: int, tokens: int) -> bool:
    """Whether a modulation table holds one row per sample ([B, n] or [B, 1, n]) or one per token
    ([B, T, n]) of a [batch, tokens, K] stream: the fused norms take either (FLUX.2's reference-image
    editing, KV-cache extract mode, blends a row per token)."""
    return mod.shape[0] == batch and (mod.dim() == 2 or (mod.dim() == 3 and mod.shape[1] in (1, tokens)))


def rounded_modulation(table: Tensor, temb: Tensor, dtype: torch.dtype) -> Tensor:
    """table + temb (broadcast) summed in fp32 and rounded once to ``dtype``, as ``(table + temb.float()).to(dtype)``
    gives it bit for bit, without that fp32 sum in memory: for per-token modulation (Wan 2.2 TI2V's [B, T, 6, K]
    rows at 720p) it would be a 2 GB tensor a block, written and read back. Where autograd must see the sum,
    that expression."""
    if torch.is_grad_enabled() and (table.requires_grad or temb.requires_grad):
        return (table + temb.float()).to(dtype)
    if temb.dtype == dtype and rows_plus_table_fits(temb, table):
        return rows_plus_table(temb, table)  # one vectorized kernel (PyTorch's mixed-dtype add is not)
    out = torch.empty(torch.broadcast_shapes(table.shape, temb.shape), dtype=dtype, device=temb.device)
    return torch.add(temb, table, out=out)


def unweighted_rms_norm(norm: Optional[nn.Module]) -> bool:
    """diffusers' RMSNorm without elementwise affine (Mochi's, inside its modulated norm modules)."""
    return (norm is not None and type(norm).__name__ == "RMSNorm" and getattr(norm, "weight", 0) is None and
            isinstance(getattr(norm, "eps", None), float))


def weighted_rms_norm(norm: Optional[nn.Module], dim: int) -> bool:
    """diffusers' RMSNorm with its weight over the last dimension (Z-Image's norms)."""
    weight = getattr(norm, "weight", None)
    return (norm is not None and type(norm).__name__ == "RMSNorm" and isinstance(weight, Tensor) and
            tuple(weight.shape) == (dim,) and getattr(norm, "bias", None) is None and
            isinstance(getattr(norm, "eps", None), float))


def scaled_rms_norm(norm: nn.Module, x: Tensor, scale: Tensor) -> Tensor:
    """norm(x) * scale (x [B, T, K], scale [B, 1, K]: a row per sample) with its int8 rows recorded for
    its readers: RMSNorm's weight times a sample's scale in fp32 is the weight of that sample's
    rmsnorm_quantize kernel (one call a sample), which rounds once where diffusers rounds the normalized
    rows, their product with the weight and the scaled value (and the product's weight is rounded to x's
    dtype once a call). Where autograd must see it, the block's own ops."""
    if any_needs_grad(x, scale, norm.weight):
        return (norm(x) * scale).to(x.dtype)  # (an fp32 scale, as Mochi's, would promote the product)
    batch = x.shape[0]
    weight = scale.reshape(batch, -1).float()
    if norm.weight is not None:  # (an RMSNorm without elementwise affine: the scale alone, as Mochi's)
        weight = norm.weight.float() * weight
    weight = weight[0] if batch == 1 else weight
    q, q_scale, y = rmsnorm_quantize_with_output(x, weight, norm.eps)
    PRODUCED.remember(y, q, q_scale)
    return y
