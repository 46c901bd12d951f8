"""Operand checks of the PyTorch ops.

The C++ library takes raw pointers with row counts and strides: it cannot see that a SmoothQuant
divisor has fewer than K elements, that a weight is narrower than the activation, or that a scale
vector is short, and would read past the end. The ops check every tensor's size, dtype and device
here, before anything is allocated or launched, and say what was wrong and what they take. Devices
are compared by index (get_device(): -1 for the CPU), not as torch.device objects, which cost ~0.8 us
a comparison; the public ops run them on every call (bench/host/python_overhead.py).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def _fail(op: str, msg: str) -> None:
    raise ValueError(f"int8dit.{op}: {msg}")


def _vector(op: str, name: str, t: Tensor, sizes: tuple[int, ...], what: str, x: Tensor) -> None:
    """``t`` is a float32 vector on ``x``'s device with one of ``sizes`` elements, unit stride. ``what``
    says what it takes, with {} for the last of ``sizes`` (formatted only for the message: an f-string
    built on every call cost ~0.4 us)."""
    if t.dtype != torch.float32:
        _fail(op, f"{name} is {t.dtype}; it must be float32")
    if t.get_device() != x.get_device():
        _fail(op, f"{name} is on {t.device} and the activations on {x.device}: move it there")
    if t.numel() not in sizes:
        _fail(op, f"{name} has {t.numel()} elements; it takes {what.format(sizes[-1])}")
    if not t.is_contiguous():
        _fail(op, f"{name} is a strided view: pass {name}.contiguous()")


def check_smooth(op: str, smooth: Optional[Tensor], k: int, x: Tensor) -> None:
    """``smooth``, where given, is one float32 divisor per input feature on ``x``'s device."""
    if smooth is not None:
        _vector(op, "smooth", smooth, (k,), "one SmoothQuant divisor per input feature ({})", x)


def check_gemm(op: str, a: Tensor, b: Tensor, scale_a: Tensor, scale_b: Tensor, bias: Optional[Tensor],
               out_dtype: torch.dtype) -> None:
    if a.dtype != torch.int8 or b.dtype != torch.int8:
        _fail(op, f"a and b must be int8 (got {a.dtype} and {b.dtype}): quantize them first")
    if b.dim() != 2 or b.shape[1] != a.shape[-1]:
        _fail(op, f"b has shape {tuple(b.shape)}; it must be [N, K] with K = {a.shape[-1]}, a's last dimension")
    if b.get_device() != a.get_device():
        _fail(op, f"b is on {b.device} and a on {a.device}: move it there")
    if b.stride(1) != 1:
        _fail(op, "b's rows are not contiguous: pass b.contiguous()")
    if out_dtype == torch.int32:
        return  # raw accumulators: no scales, no bias
    m = a.numel() // a.shape[-1] if a.shape[-1] else 0
    n = b.shape[0]
    _vector(op, "scale_a", scale_a, (1, m), "1 (per tensor) or one per row of a ({})", a)
    _vector(op, "scale_b", scale_b, (1, n), "1 (per tensor) or one per row of b ({})", a)
    if bias is not None:
        _vector(op, "bias", bias, (n,), "one per output feature ({})", a)


def check_linear(op: str, x: Tensor, weight: Tensor, weight_scale: Tensor, bias: Optional[Tensor],
                 smooth: Optional[Tensor]) -> None:
    k = x.shape[-1]
    if weight.dtype != torch.int8 or weight.dim() != 2 or weight.shape[1] != k:
        _fail(op, f"weight is {weight.dtype} {tuple(weight.shape)}; it must be int8 [N, K] with K = {k}, x's last "
                  "dimension (int8dit.torch.quantize_weight makes it)")
    if weight.get_device() != x.get_device():
        _fail(op, f"weight is on {weight.device} and x on {x.device}: move it there")
    if not weight.is_contiguous():
        _fail(op, "weight is not contiguous: pass weight.contiguous()")
    n = weight.shape[0]
    _vector(op, "weight_scale", weight_scale, (n,), "one per output feature ({})", x)
    if bias is not None:
        _vector(op, "bias", bias, (n,), "one per output feature ({})", x)
    check_smooth(op, smooth, k, x)
