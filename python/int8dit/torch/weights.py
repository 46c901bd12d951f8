"""Offline per-output-channel weight quantization (DESIGN.md "Semantics"), in torch fp32 arithmetic.

The steps are the library's own: amax = max|w|, scale = amax / 127, inv = 127 / amax,
q = clamp(round_half_even(w * inv), -127, 127), each an IEEE fp32 operation, so the result equals
int8dit's quantize_weights bit for bit (tests check it against the C++ reference). Doing it in torch
lets fp32 master weights and SmoothQuant folding (w * s) skip a rounding to bf16 first.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


@torch.no_grad()
def quantize_weight(weight: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """Quantize ``weight`` [N, K] per output channel. ``smooth`` [K], the SmoothQuant factors, is folded
    in first (``weight[:, k] * smooth[k]``), as the activations will be divided by it.
    Returns ``(q int8 [N, K], scale fp32 [N])``. A zero row gives zeros and scale 0; a row holding
    NaN or Inf gives scale NaN, so that layer's outputs are NaN rather than silently wrong."""
    w = weight.detach().to(torch.float32)
    if smooth is not None:
        w = w * smooth.to(device=w.device, dtype=torch.float32)[None, :]
    finite = torch.isfinite(w).all(dim=1)
    amax = w.abs().amax(dim=1)
    scale = torch.where(finite, amax / 127.0, torch.nan)
    inv = 127.0 / amax
    q = torch.round(w * inv[:, None]).clamp_(-127, 127)
    # NOTE: a zero row makes 0 * inf = NaN, where the semantics say zeros; non-finite rows are zeros too.
    q = torch.nan_to_num_(q, nan=0.0).masked_fill_(~finite[:, None], 0.0)
    return q.to(torch.int8), scale
