"""Array-level entry points that allocate their outputs for numpy inputs.

For host (numpy) arrays the outputs are new numpy arrays and the C++ reference computes them. For
device arrays (torch, cupy, jax), pass preallocated outputs to ``int8dit._C.quantize_rows`` /
``int8dit._C.gemm_w8a8`` directly, or use ``int8dit.torch``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _C


def _as_host_array(x, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name}: int8dit.{name.split('.')[0]} allocates numpy outputs and takes numpy arrays; for device "
            f"arrays call int8dit._C with preallocated outputs, or use int8dit.torch"
        )
    return x


def quantize_rows(x: np.ndarray, smooth: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Quantize each row of ``x`` [rows, cols] (float16 or float32) to int8 with one float32 scale per row.

    ``smooth`` (float32, one per column) divides ``x`` before quantization (SmoothQuant).
    Returns ``(q, scale)``: q int8 [rows, cols], scale float32 [rows].
    """
    x = _as_host_array(x, "quantize_rows.x")
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D array [rows, cols], got shape {x.shape}")
    q = np.empty(x.shape, dtype=np.int8)
    scale = np.empty((x.shape[0],), dtype=np.float32)
    _C.quantize_rows(x, q, scale, smooth)
    return q, scale


def gemm_w8a8(
    a: np.ndarray,
    b: np.ndarray,
    scale_a: Optional[np.ndarray] = None,
    scale_b: Optional[np.ndarray] = None,
    bias: Optional[np.ndarray] = None,
    out_dtype=np.float32,
) -> np.ndarray:
    """``(a @ b.T) * (scale_a[:, None] * scale_b[None, :]) + bias`` with int8 ``a`` [M, K], ``b`` [N, K].

    ``out_dtype`` float32 or float16 (one rounding of the fp32 epilogue), or int32 for the raw
    accumulator (then no scales or bias).
    """
    a = _as_host_array(a, "gemm_w8a8.a")
    b = _as_host_array(b, "gemm_w8a8.b")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be 2-D, got shapes {a.shape} and {b.shape}")
    d = np.empty((a.shape[0], b.shape[0]), dtype=out_dtype)
    _C.gemm_w8a8(a, b, d, scale_a, scale_b, bias)
    return d
