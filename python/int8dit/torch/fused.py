"""Quantization fused into the op that produces a GEMM's input.

In a DiT block, LayerNorm + adaLN modulation produce the input of the q/k/v (or fc1) linears. The
fused kernel computes that row, quantizes it per token and writes int8 + scales once; each consumer
then runs only its GEMM (``Linear.forward_quantized``), so the activation is read once for all of
them instead of once per layer.

    int8dit::layernorm_modulate_quantize(x [B, T, K], shift [B, K], scale [B, K], eps, smooth?)
        -> (q int8 [B, T, K], q_scale fp32 [B, T])

Likewise GELU (tanh form) produces the input of an MLP's second linear; ``gelu_quantize`` computes
it from the first linear's output and quantizes it in the same pass, so the GELU output is never
written in bf16 (int8dit.torch.mlp wires it into diffusers' FeedForward):

    int8dit::gelu_quantize(x [..., K] bf16/fp16, smooth?) -> (q int8 [..., K], q_scale fp32 [...])

Flux's single-stream blocks feed proj_out with ``cat([attention output, GELU(proj_mlp output)], -1)``;
``concat_gelu_quantize`` reads both inputs once and writes only the int8 rows of that concatenation
(int8dit.torch.flux_single wires it into diffusers' FluxSingleTransformerBlock):

    int8dit::concat_gelu_quantize(a [..., Ka], h [..., Kh], smooth?) -> (q int8 [..., Ka + Kh], q_scale fp32 [...])

RMSNorm with its weight produces the input of the linears after it in T5-style encoders (no diffusers
DiT block feeds a quantized linear from one):

    int8dit::rmsnorm_quantize(x [..., K] bf16/fp16, weight [K], eps, smooth?) -> (q int8 [..., K], q_scale fp32 [...])

The gated residual update right before a block's MLP norm runs in the norm's kernel too
(gated_residual_layernorm_modulate; int8dit.torch.blocks uses it, eagerly: it is not a registered op),
and the one that ends a block in a kernel of its own (gated_residual_add, likewise eager only).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from .. import _C
from .checks import check_smooth
from .linear import Linear
from .ops import (_DTYPES, _check_device, _current_stream, _ptr, _rows_and_scales_like, _rows_of, off_current_device,
                  on_device_of, register_op, row_quantization_io)


def _modulation_rows(t: Tensor, batches: int, k: int, name: str, dtype: torch.dtype) -> Tensor:
    if t.dtype != dtype:
        t = t.to(dtype)
    t2 = t.reshape(batches, k) if t.dim() != 2 else t
    if t2.shape != (batches, k):
        raise ValueError(f"{name} has shape {tuple(t.shape)}; expected ({batches}, {k}): one row per batch element")
    # (a broadcast row, such as expand()'s, has a batch stride below k, which the kernels refuse)
    return t2 if t2.stride(-1) == 1 and (batches == 1 or t2.stride(0) >= k) else t2.contiguous()


def per_token_rows(t: Optional[Tensor], x: Tensor) -> bool:
    """Whether a modulation table (shift, scale or gate) holds one row per token of x [B, T, K] ([B, T, K]
    with T > 1: Wan 2.2 TI2V's per-token timesteps, LTX-Video's conditioning) rather than one per batch
    element ([B, K] or [B, 1, K])."""
    return t is not None and t.dim() == 3 and x.dim() == 3 and x.shape[1] > 1 and t.shape == x.shape


def _modulation_table(t: Tensor, x: Tensor, name: str) -> tuple[Tensor, int]:
    """(rows [n, K], tokens each row serves) of a modulation table for x [B, T, K]: one row per batch element
    (n = B, serving T tokens) or, per_token_rows, one per token (n = B * T, serving 1). The kernels read
    row r's table row r // tokens at a fixed row stride: a per-token table that is a view with one (a chunk
    of Wan's [B, T, 6, K] rows) is read in place, else copied."""
    b, tokens, k = x.shape
    if not per_token_rows(t, x):
        return _modulation_rows(t, b, k, name, x.dtype), tokens
    rows = (t if t.dtype == x.dtype else t.to(x.dtype)).reshape(b * tokens, k)
    return (rows if rows.stride(-1) == 1 and rows.stride(0) >= k else rows.contiguous()), 1


def _row_stride(rows: Tensor) -> int:
    return rows.stride(0) if rows.shape[0] > 1 else rows.shape[1]


def layernorm_modulate_quantize_impl(x: Tensor, shift: Tensor, scale: Tensor, eps: float,
                                     smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    q, qs, _ = layernorm_modulate_quantize_with_output(x, shift, scale, eps, smooth, want_y=False)
    return q, qs


def layernorm_modulate_quantize_with_output(x: Tensor, shift: Tensor, scale: Tensor, eps: float,
                                            smooth: Optional[Tensor], want_y: bool = True, rms: bool = False,
                                            scale_is_weight: bool = False
                                            ) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    """(q, q_scale, y): as layernorm_modulate_quantize, and with ``want_y`` also the modulated rows
    themselves (x's dtype, [B, T, K], rounded once from the fp32 value that q quantizes). ``rms``: an
    RMSNorm without weight in place of the LayerNorm (no mean subtracted; LTX-Video's norms).
    ``scale_is_weight``: scale and shift are the norm's own weight and bias, y = layer_norm(x) * scale +
    shift (no 1 +: a LayerNorm with elementwise affine). Written for host time
    (bench/host/python_overhead.py): the blocks call it once per norm and forward."""
    q, qs, y, _ = _layernorm_modulate(x, shift, scale, eps, smooth, want_y, None, None, rms,
                                      scale_is_weight=scale_is_weight)
    return q, qs, y


def gated_residual_layernorm_modulate(x: Tensor, update: Tensor, gate: Optional[Tensor], shift: Tensor,
                                      scale: Tensor, eps: float, want_y: bool = True,
                                      smooth: Optional[Tensor] = None, rms: bool = False,
                                      scale_is_weight: bool = False
                                      ) -> tuple[Tensor, Optional[Tensor], Tensor, Tensor]:
    """(h, y, q, q_scale) of a DiT block's gated residual update and the modulated norm after it, in
    one kernel: h = x + gate * update (gate [B, K], [B, 1, K], [B, T, K] with shift and scale per token too,
    or None for 1; one fp32 FMA rounded once
    to x's dtype), y = layer_norm(h) * (1 + scale) + shift (None unless ``want_y``), and the int8 rows
    of y / smooth. The GPU kernel takes rows of K % 8 == 0 (K <= 16384) whose every tensor is 16-byte
    aligned with strides a multiple of 8 elements (gated_residual_fits says so); it refuses others.
    ``rms``: the norm is an RMSNorm without weight (no mean subtracted). ``scale_is_weight``: scale and shift
    are the norm's weight and bias, y = layer_norm(h) * scale + shift (layernorm_modulate_quantize_with_output's)."""
    q, qs, y, h = _layernorm_modulate(x, shift, scale, eps, smooth, want_y, update, gate, rms,
                                      scale_is_weight=scale_is_weight)
    return h, y, q, qs


def gated_residual_fits(x: Tensor, update: Tensor, gate: Optional[Tensor], shift: Tensor, scale: Tensor,
                        smooth: Optional[Tensor] = None) -> bool:
    """Whether gated_residual_layernorm_modulate takes these tensors on the GPU (see there): x and the
    update contiguous and 16-byte aligned, each per-batch row (gate, shift, scale) too, and the divisor."""
    if smooth is not None and smooth.data_ptr() % 16:
        return False
    k = x.shape[-1]
    if not (k % 8 == 0 and k <= 16384 and x.is_contiguous() and update.is_contiguous() and
            update.shape == x.shape and update.dtype == x.dtype and x.data_ptr() % 16 == 0 and
            update.data_ptr() % 16 == 0):
        return False
    batches, tokens = x.shape[0], x.shape[1]
    tables = (shift, scale) if gate is None else (gate, shift, scale)
    if per_token_rows(shift, x):
        # one row per token, each table alike: rows at one stride a multiple of 8 elements, read in place
        return all(per_token_rows(rows, x) and rows.dtype == x.dtype and rows.stride(-1) == 1 and
                   rows.stride(1) >= k and rows.stride(1) % 8 == 0 and
                   (batches == 1 or rows.stride(0) == tokens * rows.stride(1)) and rows.data_ptr() % 16 == 0
                   for rows in tables)
    for rows in tables:
        if not (rows.dtype == x.dtype and rows.stride(-1) == 1 and rows.numel() == batches * k and
                rows.data_ptr() % 16 == 0):
            return False
        # [B, K] or [B, 1, K]: each batch element's row its own, 16-byte aligned (not a broadcast view)
        if batches > 1 and not (rows.shape[0] == batches and rows.stride(0) >= k and rows.stride(0) % 8 == 0):
            return False
    return True


def _table_layout(x: Tensor, table: Tensor) -> Optional[tuple[int, int, tuple]]:
    """(j, i, the table's shape with x's rank): x's dimensions split as [:j] groups, [j:i] tokens, [i:] columns, where ``table`` matches x
    over the trailing columns, is 1 over the tokens (what it broadcasts over) and matches x or is 1 over
    the leading groups: x's elements are then [groups, tokens, cols] rows and the table one row of cols a
    group, the same for the group's tokens. None where the table does not broadcast so."""
    if table.dim() > x.dim():
        return None
    shape = (1,) * (x.dim() - table.dim()) + tuple(table.shape)
    i = x.dim()
    while i > 0 and shape[i - 1] == x.shape[i - 1] and shape[i - 1] != 1:
        i -= 1
    if i == x.dim():
        return None  # (no trailing run of columns: not a row table)
    j = i
    while j > 0 and shape[j - 1] == 1:
        j -= 1
    if any(shape[d] not in (1, x.shape[d]) for d in range(j)):
        return None
    return j, i, shape


def _rows_plus_table_layout(x: Tensor, table: Tensor):
    if x.dtype not in (torch.bfloat16, torch.float16) or not x.is_contiguous() or table.device != x.device:
        return None
    if not (x.is_cuda or x.is_cpu) or table.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return None
    return _table_layout(x, table)


def rows_plus_table_fits(x: Tensor, table: Tensor) -> bool:
    """Whether rows_plus_table takes these: x contiguous bf16/fp16 on the GPU or the CPU, and ``table``
    (fp32, bf16 or fp16 on x's device) broadcast over x as one row per group of x's tokens (_table_layout):
    Wan's and LTX-Video's [1, 1, 6, K] table over [B, T, 6, K], SkyReels-V2's [1, 6, 1, K] over [B, 6, T, K]."""
    return _rows_plus_table_layout(x, table) is not None


def rows_plus_table(x: Tensor, table: Tensor) -> Tensor:
    """(table + x.float()).to(x.dtype) for a ``table`` that broadcasts over x as rows_plus_table_fits says:
    each sum in fp32, rounded once, the same bits, in one int8dit kernel (gated_add with the table's rows
    as an fp32 gate, one a group of tokens, and no update) that moves 16-byte vectors, where PyTorch's
    mixed-dtype broadcast runs element by element (2.5 ms against ~0.7 for a Wan 2.2 TI2V block's
    per-token modulation at 720p on the H100) and the expression as written also writes an fp32 copy.
    A new contiguous tensor; on the CPU, the reference."""
    if off_current_device(x):
        return on_device_of(x, rows_plus_table, x, table)
    layout = _rows_plus_table_layout(x, table)
    if layout is None:
        raise ValueError(f"rows_plus_table: x {x.dtype} {tuple(x.shape)} (contiguous: {x.is_contiguous()}) and table "
                         f"{table.dtype} {tuple(table.shape)} do not fit: x must be a contiguous bf16 or fp16 tensor and "
                         "the table one row per group of x's tokens (its trailing dimensions x's, then 1s), on x's device")
    j, i, shape = layout
    groups, tokens, cols = math.prod(x.shape[:j]), math.prod(x.shape[j:i]), math.prod(x.shape[i:])
    # the table's rows without the token dimensions it broadcasts over, one a group (a small copy where a
    # leading dimension broadcasts: Wan's over the batch)
    gate = table.to(torch.float32).reshape(shape[:j] + shape[i:]).expand(*x.shape[:j], *x.shape[i:])
    gate = gate.contiguous().reshape(groups, cols)
    out = torch.empty_like(x)
    if x.numel() > 0:
        cuda = x.is_cuda
        _C.raw.gated_add(not cuda, _DTYPES[x.dtype], groups * tokens, cols, x.data_ptr(), cols, 0, cols, 0, cols,
                         tokens, out.data_ptr(), cols, _current_stream(x.device) if cuda else 0,
                         gate_fp32=gate.data_ptr())
    return out


def gated_residual_add(h: Tensor, gate: Optional[Tensor], update: Tensor) -> Tensor:
    """h + gate * update in one int8dit kernel (int8dit::gated_add): h and update [B, T, K] of one dtype
    (bf16 or fp16), gate [B, K] or [B, 1, K] (each batch element's row for its tokens), [B, T, K] (a row
    per token) or None for 1.
    One fp32 FMA rounded once, as the fused norm's update; a new contiguous tensor. The GPU kernel moves
    16-byte vectors where every row allows, else elements; on the CPU, the reference. Where PyTorch's
    broadcasting addcmul does not vectorize (1.7 TB/s on the H200 at DiT-XL/2's 8192 x 1152), this runs
    at the copy rate."""
    if off_current_device(h):
        return on_device_of(h, gated_residual_add, h, gate, update)
    _check_device(h, "h")
    _check_three_dims(h)
    if update.shape != h.shape or update.dtype != h.dtype or update.device != h.device:
        raise ValueError(f"gated_residual_add: the update is {update.dtype} {tuple(update.shape)} on {update.device}; "
                         f"it must be h's {h.dtype} {tuple(h.shape)} on {h.device}")
    if h.dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"gated_residual_add takes bf16 or fp16, got {h.dtype}")
    b, t, k = h.shape
    rows, m, ldx = _rows_of(h, k)
    urows, _, ld_update = _rows_of(update, k)
    g, tokens = None, t
    if gate is not None:
        if gate.device != h.device:
            raise ValueError(f"gated_residual_add: h is on {h.device} and the gate on {gate.device}: move them to one device")
        g, tokens = _modulation_table(gate, h, "gate")
    out = torch.empty((b, t, k), dtype=h.dtype, device=h.device)
    if m > 0 and k > 0:
        cuda = h.is_cuda
        _C.raw.gated_add(not cuda, _DTYPES[h.dtype], m, k, rows.data_ptr(), ldx, urows.data_ptr(), ld_update, _ptr(g),
                         0 if g is None else _row_stride(g), tokens, out.data_ptr(), k,
                         _current_stream(h.device) if cuda else 0)
    return out


def layernorm_modulate_quantize_into(x: Tensor, shift: Tensor, scale: Tensor, eps: float, q: Tensor,
                                     q_scale: Tensor, y: Tensor, rms: bool = False) -> None:
    """layernorm_modulate_quantize_with_output writing into given outputs: q (int8) and y (x's dtype)
    shaped as x, q_scale (fp32) as x's rows, each holding its rows one after another (contiguous; views
    of a larger tensor's consecutive rows are): FLUX.3's joint blocks normalize the text and the image
    tokens straight into the halves of their concatenation."""
    for name, out, dtype, shape in (("q", q, torch.int8, x.shape), ("q_scale", q_scale, torch.float32, x.shape[:-1]),
                                    ("y", y, x.dtype, x.shape)):
        if out.dtype != dtype or out.shape != shape or not out.is_contiguous() or out.device != x.device:
            raise ValueError(f"layernorm_modulate_quantize_into: {name} must be a contiguous {dtype} tensor of "
                             f"shape {tuple(shape)} on {x.device}, got {out.dtype} {tuple(out.shape)} on "
                             f"{out.device}{'' if out.is_contiguous() else ' (not contiguous)'}")
    _layernorm_modulate(x, shift, scale, eps, None, True, None, None, rms, out=(q, q_scale, y))


def _layernorm_modulate(x: Tensor, shift: Tensor, scale: Tensor, eps: float, smooth: Optional[Tensor],
                        want_y: bool, update: Optional[Tensor], gate: Optional[Tensor], rms: bool = False,
                        out: Optional[tuple[Tensor, Tensor, Tensor]] = None, scale_is_weight: bool = False):
    if off_current_device(x):
        return on_device_of(x, _layernorm_modulate, x, shift, scale, eps, smooth, want_y, update, gate, rms, out,
                            scale_is_weight)
    if not (x.is_cuda or x.is_cpu):
        _check_device(x, "x")
    _check_three_dims(x)
    b, t, k = x.shape
    if not x.is_cuda:  # (the CPU reference would read a CUDA tensor's pointer as host memory; the GPU
        # entry point checks its pointers itself)
        for name, other in (("shift", shift), ("scale", scale), ("update", update), ("gate", gate)):
            if other is not None and not other.is_cpu:
                raise ValueError(f"layernorm_modulate_quantize: x is on {x.device} and {name} on {other.device}: "
                                 "move them to one device")
    if smooth is not None:
        check_smooth("layernorm_modulate_quantize", smooth, k, x)
    dtype = x.dtype
    rows, m, ldx = _rows_of(x, k)
    sh, tokens = _modulation_table(shift, x, "shift")
    sc, scale_tokens = _modulation_table(scale, x, "scale")
    if scale_tokens != tokens:
        raise ValueError(f"layernorm_modulate_quantize: shift {tuple(shift.shape)} and scale {tuple(scale.shape)} "
                         "must both hold one row per batch element or both one row per token")
    if _row_stride(sh) != _row_stride(sc):
        sc = sc.contiguous()
        sh = sh.contiguous()
    dev = x.device
    if out is None:
        q = torch.empty((b, t, k), dtype=torch.int8, device=dev)
        qs = torch.empty((b, t), dtype=torch.float32, device=dev)
        y = torch.empty((b, t, k), dtype=dtype, device=dev) if want_y else None
    else:
        q, qs, y = out
    h = g = None
    if update is not None:
        if update.shape != x.shape or update.dtype != dtype:
            raise ValueError(f"the residual update is {update.dtype} {tuple(update.shape)}; it must be x's "
                             f"{dtype} {tuple(x.shape)}")
        update = update if update.is_contiguous() else update.contiguous()
        h = torch.empty((b, t, k), dtype=dtype, device=dev)
        g = None
        if gate is not None:
            g, gate_tokens = _modulation_table(gate, x, "gate")
            if gate_tokens != tokens:
                raise ValueError(f"the gate {tuple(gate.shape)} must hold one row per batch element or per token "
                                 f"as shift {tuple(shift.shape)} does")
    if m > 0:
        cuda = x.is_cuda
        extra = (0, 0, 0, 0, 0, 0) if update is None else (
            update.data_ptr(), k, _ptr(g), 0 if g is None else _row_stride(g), h.data_ptr(), k)
        _C.raw.layernorm_modulate_quantize(not cuda, rows.data_ptr(), _DTYPES[dtype], m, k, ldx, float(eps), tokens,
                                           sh.data_ptr(), sc.data_ptr(), _row_stride(sh), _ptr(smooth),
                                           q.data_ptr(), qs.data_ptr(), _ptr(y), _current_stream(dev) if cuda else 0,
                                           *extra, rms, scale_is_weight)
    return q, qs, y, h


def _check_three_dims(x: Tensor) -> None:
    if x.dim() != 3:
        raise ValueError(f"x must be [batch, tokens, features], got shape {tuple(x.shape)}")


def _layernorm_modulate_quantize_fake(x: Tensor, shift: Tensor, scale: Tensor, eps: float,
                                      smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    _check_three_dims(x)  # as the implementation: a traced call fails where the eager one would
    return _rows_and_scales_like(x)


register_op("layernorm_modulate_quantize", "(Tensor x, Tensor shift, Tensor scale, float eps, Tensor? smooth=None) "
            "-> (Tensor, Tensor)", layernorm_modulate_quantize_impl, _layernorm_modulate_quantize_fake)


def layernorm_modulate_quantize(x: Tensor, shift: Tensor, scale: Tensor, eps: float,
                                smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """LayerNorm without affine of ``x`` [B, T, K], modulated by one shift and scale row per batch
    element ([B, K] or [B, 1, K]) or per token ([B, T, K]), divided by ``smooth`` where given, quantized per token: int8 [B, T, K] and fp32 scales
    [B, T] (torch.ops.int8dit.layernorm_modulate_quantize)."""
    return torch.ops.int8dit.layernorm_modulate_quantize(x, shift, scale, eps, smooth)


def gelu_quantize_impl(x: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    if off_current_device(x):
        return on_device_of(x, gelu_quantize_impl, x, smooth)
    rows, m, ldx, k, q, qs = row_quantization_io("gelu_quantize", x, smooth)
    if m > 0:
        cuda = x.is_cuda
        _C.raw.gelu_quantize(not cuda, rows.data_ptr(), _DTYPES[x.dtype], m, k, ldx, _ptr(smooth), q.data_ptr(),
                             qs.data_ptr(), _current_stream(x.device) if cuda else 0)
    return q, qs


register_op("gelu_quantize", "(Tensor x, Tensor? smooth=None) -> (Tensor, Tensor)", gelu_quantize_impl,
            lambda x, smooth=None: _rows_and_scales_like(x))


def gelu_quantize(x: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """GELU (tanh approximation) of ``x`` (bf16 or fp16, [..., K]), divided by ``smooth`` where given,
    quantized per row: int8 [..., K] and fp32 scales [...] (torch.ops.int8dit.gelu_quantize)."""
    return torch.ops.int8dit.gelu_quantize(x, smooth)


def rmsnorm_quantize_impl(x: Tensor, weight: Tensor, eps: float,
                          smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    q, qs, _ = rmsnorm_quantize_with_output(x, weight, eps, smooth, want_y=False)
    return q, qs


def rmsnorm_quantize_with_output(x: Tensor, weight: Tensor, eps: float, smooth: Optional[Tensor] = None,
                                 want_y: bool = True) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    """(q, q_scale, y): as rmsnorm_quantize, and with ``want_y`` also the normalized rows themselves (x's
    dtype and shape, contiguous; rounded once from the fp32 value that q quantizes).

    ``weight`` is [K], or [G, K] for x [G, ..., K]: one weight per leading index (a sample's modulation
    folded into its norm's weight), each applied to that index's rows by a kernel call of its own."""
    if off_current_device(x):
        return on_device_of(x, rmsnorm_quantize_with_output, x, weight, eps, smooth, want_y)
    if x.dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"int8dit.rmsnorm_quantize: x is {x.dtype}; it must be bfloat16 or float16")
    rows, m, ldx, k, q, qs = row_quantization_io("rmsnorm_quantize", x, smooth)
    groups = x.shape[0] if weight.dim() == 2 and x.dim() >= 2 else 1
    expected = (k,) if weight.dim() == 1 else (groups, k)
    if weight.dim() not in (1, 2) or tuple(weight.shape) != expected or weight.get_device() != x.get_device():
        raise ValueError(f"int8dit.rmsnorm_quantize: weight is {tuple(weight.shape)} on {weight.device}; it takes one "
                         f"value per feature ({k},), or a row of them per leading index of x ({x.shape[0]}, {k}), "
                         f"on x's device ({x.device})")
    # NOTE: the kernels read the weight in x's dtype (diffusers keeps RMSNorm weights in the model's dtype;
    # an fp32 weight is rounded here, once a call).
    w = weight if weight.dtype == x.dtype and weight.is_contiguous() else weight.to(x.dtype).contiguous()
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device) if want_y else None
    if m > 0:
        cuda = x.is_cuda
        stream = _current_stream(x.device) if cuda else 0
        per = m // groups  # rows of each leading index: rows, q, scales and y hold them one index after another
        for g in range(groups):
            _C.raw.rmsnorm_quantize(not cuda, rows.data_ptr() + g * per * ldx * rows.element_size(), _DTYPES[x.dtype],
                                    per, k, ldx, float(eps), w.data_ptr() + g * k * w.element_size(), _ptr(smooth),
                                    q.data_ptr() + g * per * k, qs.data_ptr() + g * per * 4, stream,
                                    _ptr(y) + g * per * k * y.element_size() if y is not None else 0)
    return q, qs, y


register_op("rmsnorm_quantize", "(Tensor x, Tensor weight, float eps, Tensor? smooth=None) -> (Tensor, Tensor)",
            rmsnorm_quantize_impl, lambda x, weight, eps, smooth=None: _rows_and_scales_like(x))


def rmsnorm_quantize(x: Tensor, weight: Tensor, eps: float, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """RMSNorm of ``x`` (bf16 or fp16, [..., K]) with its weight [K] (x / sqrt(mean(x^2) + eps) * weight,
    the weight in x's dtype), divided by ``smooth`` where given, quantized per row: int8 [..., K] and fp32
    scales [...] (torch.ops.int8dit.rmsnorm_quantize). For linears that read an RMSNorm's output, through
    Linear.forward_quantized."""
    return torch.ops.int8dit.rmsnorm_quantize(x, weight, eps, smooth)


def concat_gelu_quantize_impl(a: Tensor, h: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    # Written for host time, as ops.linear_unchecked: each Flux single-stream block calls it per forward.
    op = "concat_gelu_quantize"
    lead = a.shape[:-1]
    dtype = a.dtype
    if lead != h.shape[:-1] or dtype != h.dtype or a.get_device() != h.get_device():
        raise ValueError(f"int8dit.{op}: a is {a.dtype} {tuple(a.shape)} on {a.device} and h {h.dtype} "
                         f"{tuple(h.shape)} on {h.device}; they must match in every dimension but the last, in dtype "
                         "and in device (their rows are concatenated)")
    if off_current_device(a):
        return on_device_of(a, concat_gelu_quantize_impl, a, h, smooth)
    if not (a.is_cuda or a.is_cpu):
        _check_device(a, "a")
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"int8dit.{op}: a and h are {dtype}; they must be bfloat16 or float16")
    ka, kh = a.shape[-1], h.shape[-1]
    if ka == 0 or kh == 0:
        raise ValueError(f"int8dit.{op}: a has {ka} and h {kh} features; each needs at least one")
    if smooth is not None:
        check_smooth(op, smooth, ka + kh, a)
    a_rows, m, lda = _rows_of(a, ka)
    h_rows, _, ldh = _rows_of(h, kh)
    dev = a.device
    q = torch.empty((*lead, ka + kh), dtype=torch.int8, device=dev)
    qs = torch.empty(lead, dtype=torch.float32, device=dev)
    if m > 0:
        cuda = a.is_cuda
        _C.raw.concat_gelu_quantize(not cuda, a_rows.data_ptr(), ka, lda, h_rows.data_ptr(), kh, ldh, _DTYPES[dtype], m,
                                    _ptr(smooth),
                                    q.data_ptr(), qs.data_ptr(), _current_stream(dev) if cuda else 0)
    return q, qs


register_op("concat_gelu_quantize", "(Tensor a, Tensor h, Tensor? smooth=None) -> (Tensor, Tensor)",
            concat_gelu_quantize_impl, lambda a, h, smooth=None: _rows_and_scales_like(a, a.shape[-1] + h.shape[-1]))


def concat_gelu_quantize(a: Tensor, h: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """``cat([a, GELU(h)], -1)`` (GELU's tanh form; a and h bf16 or fp16 with the same leading shape),
    divided by ``smooth`` where given, quantized per row without the concatenation ever being written:
    int8 [..., Ka + Kh] and fp32 scales [...] (torch.ops.int8dit.concat_gelu_quantize)."""
    return torch.ops.int8dit.concat_gelu_quantize(a, h, smooth)


def modulated_linears(x: Tensor, shift: Tensor, scale: Tensor, layers: Sequence[Linear],
                      eps: float = 1e-6) -> list[Tensor]:
    """``[layer(layer_norm(x) * (1 + scale) + shift) for layer in layers]`` with the norm, the
    modulation and the quantization done once, in one kernel. The layers must share their SmoothQuant
    divisor (or have none), since the quantized input is shared."""
    smooth = layers[0].smooth
    for layer in layers[1:]:
        same = (smooth is None and layer.smooth is None) or (
            smooth is not None and layer.smooth is not None and torch.equal(smooth, layer.smooth))
        if not same:
            raise ValueError("modulated_linears: the layers have different SmoothQuant divisors, so they cannot "
                             "share one quantized input; calibrate them with one divisor or call them one by one")
    q, qs = torch.ops.int8dit.layernorm_modulate_quantize(x, shift, scale, eps, smooth)
    return [layer.forward_quantized(q, qs, x.dtype) for layer in layers]
