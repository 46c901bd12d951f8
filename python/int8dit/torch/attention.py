"""The query/key preparation of a rotary-embedding DiT's attention, in one kernel.

Flux (and Qwen-Image, HunyuanVideo, Wan, ...) normalize each head of q and k with an RMSNorm and then
rotate it (the rotary embedding) before attention. PyTorch runs that as a norm kernel and some eight
elementwise kernels, and joins the text and image tokens with a copy. ``qk_norm_rope`` reads each
row once and writes it once, into a token slice of the joined buffer where one is given:

    int8dit::qk_norm_rope(x [B, T, H, D] bf16/fp16, weight [D]?, eps, (cos, sin) fp32 [S, D]?,
                          out [B, T, H, D]?, rope_offset) -> out

``join_heads`` is the same kernel without the norm or the rotation: it moves [B, T, H, D] rows into any
layout (SD3's joint attention joins q, k and v into [B, H, S, D]).

The numerics (include/int8dit/attention.h): n = round((x * rstd) * w) with rstd = 1 / sqrt(mean(x^2)
+ eps), then diffusers' apply_rotary_emb on pairs (use_real_unbind_dim=-1): out_2i = a cos - b sin,
out_2i+1 = b cos + a sin in fp32, rounded once. PyTorch's fused rms_norm uses an approximate rsqrt, so
outputs may differ from it by one unit in the last place. ``layer_norm=True`` subtracts the row's mean
first (LayerNorm: torch's layer_norm up to its rsqrt and its Welford statistics; ``bias`` its bias),
and ``split_halves=True`` pairs element i with i + D/2 (use_real_unbind_dim=-2, CogView4's); the GPU
kernel takes those for head_dim 64 and 128 (EXTENDED_HEAD_DIMS).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from .. import _C
from .ops import _DTYPES, _check_device, _current_stream, _ptr, off_current_device, on_device_of

_TYPES = (torch.bfloat16, torch.float16)
HEAD_DIMS = (16, 32, 64, 128, 256)
EXTENDED_HEAD_DIMS = (64, 128)  # the GPU kernel's head dims for layer_norm and split_halves


def _gpu_ready(t: Tensor, vector: int) -> Tensor:
    """t with its last dimension contiguous and, on the GPU, the 16-byte alignment the kernel needs
    (its data and every stride a multiple of `vector` elements): t itself where it has them, else a
    contiguous copy."""
    aligned = t.stride(-1) == 1 and (not t.is_cuda or (
        t.data_ptr() % 16 == 0 and all(s % vector == 0 for s in t.stride()[:-1])))
    return t if aligned else t.contiguous()


def qk_norm_rope(x: Tensor, weight: Optional[Tensor], eps: float,
                 rotary: Optional[Sequence[Tensor]] = None, *, out: Optional[Tensor] = None,
                 rope_offset: int = 0, normalize: bool = True, layer_norm: bool = False,
                 split_halves: bool = False, bias: Optional[Tensor] = None, norm_heads: int = 1) -> Tensor:
    """Per-head RMSNorm with ``weight`` (x's dtype or float32, for a norm kept in fp32; None: none;
    ``normalize=False``: no norm at all, the rows as
    they are, so that the call only moves them: a join) and the rotary embedding ``rotary = (cos, sin)``
    (fp32 [S, D], diffusers' ``image_rotary_emb``; None: no rotation) of x [B, T, H, D] (bf16 or fp16,
    any strides; the GPU kernel needs 16-byte aligned rows, others are copied first). Token t takes
    rotary row ``rope_offset + t``. Written into ``out`` (a [B, T, H, D] tensor of x's dtype, any
    strides, e.g. a token slice of a joined buffer; x itself for in place) or a new contiguous tensor;
    returns it. ``layer_norm``: LayerNorm's statistics (the mean subtracted); ``bias``: the norm's bias
    (x's dtype, [D]), added after the weight; ``split_halves``: the rotation pairs element i with i + D/2
    rather than 2i with 2i + 1 (on the GPU the three for head_dim 64 and 128). ``norm_heads``: the RMSNorm's
    statistics across that many consecutive heads of a token (H: Wan's and LTX-Video's norm over the whole
    [H * D] row), the weight then [norm_heads * D]; the rotary tables may then also be [S, H * D], a value
    for every channel of the token (LTX-Video's) rather than a row every head shares (on the GPU for head_dim
    64 and 128 with norm_heads * D / 8 a multiple of 32, at most 1024). On the CPU, the C++ reference."""
    if off_current_device(x):
        return on_device_of(x, qk_norm_rope, x, weight, eps, rotary, out=out, rope_offset=rope_offset,
                            normalize=normalize, layer_norm=layer_norm, split_halves=split_halves, bias=bias,
                            norm_heads=norm_heads)
    _check_device(x, "x")
    if x.dim() != 4:
        raise ValueError(f"qk_norm_rope takes x as [batch, tokens, heads, head_dim], got shape {tuple(x.shape)}")
    if x.dtype not in _TYPES:
        raise ValueError(f"qk_norm_rope takes bf16 or fp16, got {x.dtype}")
    b, t, h, d = x.shape
    if d not in HEAD_DIMS:
        raise ValueError(f"qk_norm_rope: head_dim {d} is not supported: it must be one of {HEAD_DIMS}")
    tensors = {"x": x}
    if norm_heads != 1:
        if norm_heads < 1 or h % norm_heads:
            raise ValueError(f"qk_norm_rope: norm_heads {norm_heads} must divide the {h} heads")
        if not normalize or layer_norm or split_halves or bias is not None:
            raise ValueError("qk_norm_rope: norm_heads > 1 takes the RMSNorm alone (normalize, no layer_norm, "
                             "split_halves or bias)")
        if x.is_cuda and (d not in EXTENDED_HEAD_DIMS or (norm_heads * d // 8) % 32 or norm_heads * d // 8 > 1024):
            raise ValueError(f"qk_norm_rope: the norm across heads runs on the GPU for head_dim {EXTENDED_HEAD_DIMS} "
                             f"with norm_heads * head_dim / 8 a multiple of 32, at most 1024; got {norm_heads} heads "
                             f"of {d}")
    if layer_norm and not normalize:
        raise ValueError("qk_norm_rope: layer_norm=True with normalize=False: the mean is the LayerNorm's")
    if split_halves and rotary is None:
        raise ValueError("qk_norm_rope: split_halves=True without rotary tables: it says how the rotation pairs a row")
    if (layer_norm or split_halves or bias is not None) and x.is_cuda and d not in EXTENDED_HEAD_DIMS:
        raise ValueError(f"qk_norm_rope: layer_norm, split_halves and a bias run on the GPU for head_dim "
                         f"{EXTENDED_HEAD_DIMS}, not {d}")
    if bias is not None:
        if not normalize:
            raise ValueError("qk_norm_rope: a bias was given with normalize=False: the bias is the norm's")
        if bias.shape != (d,) or bias.dtype != x.dtype:
            raise ValueError(f"qk_norm_rope: the bias is {bias.dtype} {tuple(bias.shape)}; it must be x's {x.dtype}, "
                             f"shaped ({d},)")
        bias = _gpu_ready(bias, 8)
        tensors["bias"] = bias
    if weight is not None and not normalize:
        raise ValueError("qk_norm_rope: a weight was given with normalize=False: the weight is the RMSNorm's")
    weight_fp32 = None
    if weight is not None:
        if weight.shape != (norm_heads * d,) or weight.dtype not in (x.dtype, torch.float32):
            raise ValueError(f"qk_norm_rope: the weight is {weight.dtype} {tuple(weight.shape)}; it must be "
                             f"x's {x.dtype} or float32, shaped ({norm_heads * d},)")
        if weight.dtype != x.dtype:  # (a norm kept in fp32: the kernel multiplies by the fp32 values)
            weight, weight_fp32 = None, _gpu_ready(weight, 4)
            tensors["weight"] = weight_fp32
        else:
            weight = _gpu_ready(weight, 8)
            tensors["weight"] = weight
    cos = sin = None
    if rotary is not None:
        if len(rotary) != 2:
            raise ValueError("qk_norm_rope: rotary must be the pair (cos, sin)")
        cos, sin = rotary
        for name, table in (("cos", cos), ("sin", sin)):
            if table.dim() != 2 or table.shape[1] not in (d, h * d) or table.dtype != torch.float32:
                raise ValueError(f"qk_norm_rope: {name} is {table.dtype} {tuple(table.shape)}; it must be "
                                 f"float32 [positions, {d}] (a row every head shares) or [positions, {h * d}] (a "
                                 "value a channel of every head)")
        if cos.shape != sin.shape:
            raise ValueError(f"qk_norm_rope: cos {tuple(cos.shape)} and sin {tuple(sin.shape)} differ in shape")
        cos, sin = _gpu_ready(cos, 4), _gpu_ready(sin, 4)
        if cos.stride(0) != sin.stride(0):
            cos, sin = cos.contiguous(), sin.contiguous()
        tensors["cos"], tensors["sin"] = cos, sin
    if out is None:
        out = torch.empty((b, t, h, d), dtype=x.dtype, device=x.device)
    elif out.shape != x.shape or out.dtype != x.dtype:
        raise ValueError(f"qk_norm_rope: out is {out.dtype} {tuple(out.shape)}; it must be x's "
                         f"{x.dtype} {tuple(x.shape)}")
    tensors["out"] = out
    for name, tensor in tensors.items():
        if tensor.device != x.device:
            raise ValueError(f"qk_norm_rope: x is on {x.device} and {name} on {tensor.device}: move them to one device")
    if out.stride(-1) != 1:
        raise ValueError("qk_norm_rope: out's last dimension must be contiguous (stride 1)")
    if x.numel() == 0:
        return out
    if x is not out:
        x = _gpu_ready(x, 8)
    cuda = x.is_cuda
    _C.raw.qk_norm_rope(not cuda, _DTYPES[x.dtype], b, t, h, d, x.data_ptr(), x.stride(0), x.stride(1), x.stride(2),
                        _ptr(weight), float(eps), _ptr(cos), _ptr(sin), 0 if cos is None else cos.stride(0),
                        0 if cos is None else cos.shape[0], int(rope_offset), out.data_ptr(), out.stride(0),
                        out.stride(1), out.stride(2), _current_stream(x.device) if cuda else 0, normalize,
                        _ptr(weight_fp32), bool(layer_norm), bool(split_halves), _ptr(bias), int(norm_heads),
                        d if cos is not None and cos.shape[1] == h * d and h > 1 else 0)
    return out


def join_heads(x: Tensor, out: Tensor) -> Tensor:
    """out[...] = x for x [B, T, H, D] and out a [B, T, H, D] view with any strides (a token slice of a
    joined buffer, or of a [B, H, S, D] one seen through a transpose): qk_norm_rope without the norm or
    the rotation, 16-byte vectors a row where PyTorch's copy of a transposed view moves elements."""
    return qk_norm_rope(x, None, 0.0, None, out=out, normalize=False)
