"""int8dit operations as torch.library ops (registered per backend: register_op below).

Each op has a fake (meta) implementation, so torch.compile(fullgraph=True) traces through it and
CUDA graphs capture it. CUDA tensors run the GPU kernels on the current stream; CPU tensors run the
C++ reference (the CPU fallback). ``linear`` is quantize + GEMM in one op: in eager mode a quantized
layer launches two kernels (per-token quantization, then the fused GEMM) and nothing else.

    int8dit::quantize_rows(x, smooth?)                       -> (q int8 [..., K], scale fp32 [...])
    int8dit::gemm_w8a8(a, b, scale_a, scale_b, bias?, dtype) -> [..., N]
    int8dit::linear(x, weight, weight_scale, bias?, smooth?) -> [..., N] in x's dtype
    int8dit::linear_layer, int8dit::gemm_layer               linear and gemm_w8a8 without the operand
                                                             checks, for int8dit's own modules' traced calls
    int8dit::linear_group(x, weights[], weight_scales[], biases?[]) -> [[..., N_i]]
                                                             layers on one input, x quantized once
                                                             (graph_passes.py makes them in compiled graphs)

The fused producers' ops (layernorm_modulate_quantize, rmsnorm_quantize, gelu_quantize,
concat_gelu_quantize) are in fused.py.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .. import _C
from .checks import check_gemm, check_linear, check_smooth

_DTYPES = {
    torch.bfloat16: _C.DType.bf16,
    torch.float16: _C.DType.fp16,
    torch.float32: _C.DType.fp32,
    torch.int32: _C.DType.int32,
}

# The scales follow the int8 rows in linear_impl's scratch buffer at this alignment (the GEMM reads them
# in 16-byte vectors; the allocator's blocks start 512-byte aligned).
_SCRATCH_ALIGN = 256

# (device index, m, n, k, dtype, has bias) -> workspace bytes the dispatched GEMM configuration needs.
_workspace_bytes: dict = {}


def _ptr(t: Optional[Tensor]) -> int:
    return 0 if t is None else t.data_ptr()


# The current CUDA stream as an integer without building a torch.cuda.Stream object: what inductor's
# generated code calls. torch.cuda.current_stream(dev).cuda_stream took 5.7 us a call on an H200 host
# (scripts/device/host_overhead_probe.py, 2026-12-03), paid by every quantized layer.
_raw_current_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def _current_stream(device: torch.device) -> int:
    """The current stream of a CUDA device, as the integer the C++ entry points take."""
    if _raw_current_stream is not None:
        return _raw_current_stream(device.index)
    return torch.cuda.current_stream(device).cuda_stream


# The current CUDA device's index, without the torch.cuda wrapper's lazy-init checks (~0.1 us).
_raw_current_device = getattr(torch._C, "_cuda_getDevice", None)


def off_current_device(t: Tensor) -> bool:
    """A CUDA tensor on another device than the current one. The C++ entry points run on the current
    device (its kernels, SM count and tuning), as PyTorch's own ops do inside their device guard, so
    such a call must switch to the tensor's device first (on_device_of): a model moved to cuda:1 while
    cuda:0 is current."""
    return t.is_cuda and t.get_device() != _raw_current_device()


def on_device_of(t: Tensor, fn, *args, **kwargs):
    """fn(*args, **kwargs) with t's device current."""
    with torch.cuda.device(t.device):
        return fn(*args, **kwargs)


def _stream(t: Tensor) -> int:
    return _current_stream(t.device) if t.is_cuda else 0


def _check_device(t: Tensor, name: str) -> None:
    if not (t.is_cuda or t.is_cpu):
        raise ValueError(f"{name} is on {t.device}: int8dit runs on CUDA devices and on the CPU (reference)")


def _rows_of(x: Tensor, k: int) -> tuple[Tensor, int, int]:
    """(rows, row count, row stride): x's rows of k elements as a tensor the caller must keep until the
    C++ call has read it (it may be a copy): x itself where contiguous (no reshape: ~1 us of host time
    a call), else its [M, k] view, or a contiguous copy where the rows are not evenly strided."""
    if x.is_contiguous():
        return x, (x.numel() // k if k else 0), k
    x2 = x.reshape(-1, k)
    if x2.stride(-1) != 1 or (x2.shape[0] > 1 and x2.stride(0) < k):  # (a broadcast view: rows overlap)
        x2 = x2.contiguous()
    m = x2.shape[0]
    return x2, m, x2.stride(0) if m > 1 else k


_FLOAT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def _out_dtype(x: Tensor) -> torch.dtype:
    return x.dtype if x.dtype in _FLOAT_DTYPES else torch.bfloat16


def _workspace(m: int, n: int, k: int, a_ptr: int, b_ptr: int, sa_ptr: int, sb_ptr: int, bias, d: Tensor):
    if d.device.type == "cpu":
        return None, 0
    key = (d.device.index, m, n, k, d.dtype, bias is not None)
    size = _workspace_bytes.get(key)
    if size is None:
        size = _C.raw.gemm_workspace_size(m, n, k, a_ptr, b_ptr, sa_ptr, sb_ptr, _ptr(bias), d.data_ptr(),
                                          _DTYPES[d.dtype])
        _workspace_bytes[key] = size
    if size == 0:
        return None, 0
    return torch.empty(size, dtype=torch.uint8, device=d.device), size


def _scratch_layout(m: int, k: int, workspace_bytes: int) -> tuple[int, int, int]:
    """linear_impl's one scratch allocation: the int8 rows [m, k], then their fp32 scales, then the
    GEMM's workspace, each at a _SCRATCH_ALIGN offset. Returns (total bytes, scales offset, workspace
    offset)."""
    # NOTE: rounded up inline: this runs once per layer call, and a Python call costs ~0.5 us.
    scales = -(-m * k // _SCRATCH_ALIGN) * _SCRATCH_ALIGN
    workspace = scales - (-4 * m // _SCRATCH_ALIGN) * _SCRATCH_ALIGN
    return workspace + workspace_bytes, scales, workspace


def row_quantization_io(op: str, x: Tensor, smooth: Optional[Tensor]
                        ) -> tuple[Tensor, int, int, int, Tensor, Tensor]:
    """For a per-row quantization op on ``x`` [..., K]: x's device and divisor checked, then (rows, M,
    row stride, K, int8 output [..., K], fp32 scales [...]). ``rows`` may be a copy: keep it until the
    C++ call has read it. Written for host time (bench/host/python_overhead.py)."""
    if not (x.is_cuda or x.is_cpu):
        _check_device(x, "x")
    k = x.shape[-1]
    if smooth is not None:
        check_smooth(op, smooth, k, x)
    rows, m, ldx = _rows_of(x, k)
    dev = x.device
    return (rows, m, ldx, k, torch.empty(x.shape, dtype=torch.int8, device=dev),
            torch.empty(x.shape[:-1], dtype=torch.float32, device=dev))


def quantize_rows_impl(x: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    if off_current_device(x):
        return on_device_of(x, quantize_rows_impl, x, smooth)
    cuda = x.is_cuda
    if cuda and x.dtype == torch.float32:
        # NOTE: the GPU quantization kernel reads bf16/fp16; fp32 activations are rounded to bf16 first.
        x = x.to(torch.bfloat16)
    rows, m, ldx, k, q, scale = row_quantization_io("quantize_rows", x, smooth)
    if m > 0:
        _C.raw.quantize_rows(not cuda, rows.data_ptr(), _DTYPES[x.dtype], m, k, ldx, _ptr(smooth), q.data_ptr(), k,
                             scale.data_ptr(), _current_stream(x.device) if cuda else 0)
    return q, scale


def gemm_w8a8_impl(a: Tensor, b: Tensor, scale_a: Tensor, scale_b: Tensor, bias: Optional[Tensor],
                   out_dtype: torch.dtype) -> Tensor:
    _check_device(a, "a")
    check_gemm("gemm_w8a8", a, b, scale_a, scale_b, bias, out_dtype)
    return gemm_unchecked(a, b, scale_a, scale_b, bias, out_dtype)


def gemm_unchecked(a: Tensor, b: Tensor, scale_a: Tensor, scale_b: Tensor, bias: Optional[Tensor],
                   out_dtype: torch.dtype) -> Tensor:
    """gemm_w8a8_impl without the operand checks, for callers whose operands fit by construction
    (an int8dit Linear's own weight, scales from the kernel that quantized a): ~1-2 us of host time
    a layer that a host-bound eager forward would feel. Written for host time (bench/host/
    python_overhead.py): one device lookup, no reshape or view where the tensors already fit."""
    if off_current_device(a):
        return on_device_of(a, gemm_unchecked, a, b, scale_a, scale_b, bias, out_dtype)
    k = a.shape[-1]
    n = b.shape[0]
    dev = a.device
    cuda = a.is_cuda
    rows, m, lda = _rows_of(a, k)
    a_ptr = rows.data_ptr()
    d = torch.empty((*a.shape[:-1], n), dtype=out_dtype, device=dev)
    if m > 0:
        raw = out_dtype == torch.int32
        sa = None if raw else (scale_a if scale_a.dim() == 1 else scale_a.reshape(-1))
        sb = None if raw else (scale_b if scale_b.dim() == 1 else scale_b.reshape(-1))
        ws, ws_bytes = None, 0
        if cuda and not raw:
            ws, ws_bytes = _workspace(m, n, k, a_ptr, b.data_ptr(), sa.data_ptr(), sb.data_ptr(), bias, d)
        _C.raw.gemm_w8a8(not cuda, m, n, k, a_ptr, lda, b.data_ptr(), b.stride(0),
                         0 if sa is None else sa.data_ptr(), sa is not None and m != 1 and sa.numel() == 1,
                         0 if sb is None else sb.data_ptr(), sb is not None and n != 1 and sb.numel() == 1,
                         0 if bias is None else bias.data_ptr(), d.data_ptr(), _DTYPES[out_dtype], n,
                         0 if ws is None else ws.data_ptr(), ws_bytes,
                         _current_stream(dev) if cuda else 0)
    return d


def linear_impl(x: Tensor, weight: Tensor, weight_scale: Tensor, bias: Optional[Tensor],
                smooth: Optional[Tensor]) -> Tensor:
    _check_device(x, "x")
    check_linear("linear", x, weight, weight_scale, bias, smooth)
    return linear_unchecked(x, weight, weight_scale, bias, smooth)


def linear_unchecked(x: Tensor, weight: Tensor, weight_scale: Tensor, bias: Optional[Tensor],
                     smooth: Optional[Tensor]) -> Tensor:
    """linear_impl without the operand checks, for an int8dit Linear's eager calls: its weight,
    scales, bias and divisor fit each other by construction, and it checks x itself. Written for host
    time (bench/host/python_overhead.py): one device lookup, no reshape or view where x is contiguous,
    the output allocated in its final shape."""
    return linear_keeping_rows(x, weight, weight_scale, bias, smooth, keep=False)[0]


def linear_keeping_rows(x: Tensor, weight: Tensor, weight_scale: Tensor, bias: Optional[Tensor],
                        smooth: Optional[Tensor], keep: bool = True
                        ) -> tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """linear_unchecked that also returns x's int8 rows [..., K] and scales [...] where ``keep`` (None
    where x has no rows), for a layer whose siblings read the same input: one C++ call instead of a
    quantization call and a GEMM call."""
    if off_current_device(x):
        return on_device_of(x, linear_keeping_rows, x, weight, weight_scale, bias, smooth, keep)
    dtype = x.dtype
    out_dtype = dtype if dtype in _FLOAT_DTYPES else torch.bfloat16
    cuda = x.is_cuda
    if cuda and dtype == torch.float32:
        # NOTE: the GPU quantization kernel reads bf16/fp16; fp32 activations are rounded to bf16 first.
        x = x.to(torch.bfloat16)
    dev = x.device
    k = x.shape[-1]
    n = weight.shape[0]
    rows, m, ldx = _rows_of(x, k)
    x_ptr = rows.data_ptr()
    d = torch.empty((*x.shape[:-1], n), dtype=out_dtype, device=dev)
    if m > 0:
        # The int8 rows, their scales and the GEMM's workspace live only during this call: one scratch
        # allocation holds all three (each torch.empty is a few microseconds of host time, per layer
        # and forward). The workspace size is known from the second call of a shape on.
        key = (dev.index, m, n, k, out_dtype, bias is not None)
        ws_bytes = _workspace_bytes.get(key, 0) if cuda else 0
        if keep:  # rows and scales as tensors of their own (views of the scratch cost ~7 us more)
            q, scale = torch.empty(x.shape, dtype=torch.int8, device=dev), torch.empty(x.shape[:-1], dtype=torch.float32,
                                                                                       device=dev)
            q_ptr, sx_ptr = q.data_ptr(), scale.data_ptr()
            scratch = torch.empty(ws_bytes, dtype=torch.int8, device=dev) if ws_bytes else None
            ws_ptr = 0 if scratch is None else scratch.data_ptr()
        else:
            total, sx_off, ws_off = _scratch_layout(m, k, ws_bytes)
            scratch = torch.empty(total, dtype=torch.int8, device=dev)
            q_ptr = scratch.data_ptr()
            sx_ptr = q_ptr + sx_off
            ws_ptr = q_ptr + ws_off if ws_bytes else 0
        extra = None
        if cuda and key not in _workspace_bytes:  # first call of this shape: ask the dispatcher
            extra, ws_bytes = _workspace(m, n, k, q_ptr, weight.data_ptr(), sx_ptr, weight_scale.data_ptr(), bias, d)
            ws_ptr = _ptr(extra)
        _C.raw.linear(not cuda, x_ptr, _DTYPES[x.dtype], m, k, ldx, 0 if smooth is None else smooth.data_ptr(),
                      q_ptr, sx_ptr, weight.data_ptr(), n, weight_scale.data_ptr(),
                      0 if bias is None else bias.data_ptr(), d.data_ptr(), _DTYPES[out_dtype], ws_ptr, ws_bytes,
                      _current_stream(dev) if cuda else 0)
        if keep:
            return d, q, scale
    return d, None, None


# NOTE: every op is registered with the low-level torch.library API, not @custom_op: every call of a
# @custom_op op runs Python wrappers around the implementation (the autograd kernel and a redispatch,
# then a backend wrapper with an aliasing check), and on the H200 the compiled int8dit paths spent
# 72-91 us of host time per quantized layer in them (bench/results/h200/README.md), more than the
# GEMM itself takes; on the development machine a compiled GeluMLP (gelu_quantize + gemm_w8a8) took
# 51 us of host time against 28 for the unfused MLP's two linear calls (bench/host/python_overhead.py).
# Registered per backend, the dispatcher calls the implementation directly; without an autograd
# kernel of their own, calls that need no gradient pass PyTorch's C++ autograd fallback (linear_w8a8
# routes the ones that do through _LinearFunction). Every implementation returns new tensors, as the
# schemas (no alias annotations) say.
_lib = torch.library.Library("int8dit", "FRAGMENT")


def register_op(name: str, schema: str, impl, fake) -> None:
    """Define int8dit::<name><schema>, implemented by ``impl`` on CPU and CUDA tensors, with ``fake``
    (output shapes and dtypes) for tracing."""
    _lib.define(name + schema)
    _lib.impl(name, impl, "CPU")
    _lib.impl(name, impl, "CUDA")
    torch.library.register_fake("int8dit::" + name)(fake)


def _rows_and_scales_like(x: Tensor, k: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """The fake outputs of a row quantization of x (k columns, x's by default)."""
    return (x.new_empty((*x.shape[:-1], x.shape[-1] if k is None else k), dtype=torch.int8),
            x.new_empty(x.shape[:-1], dtype=torch.float32))


register_op("quantize_rows", "(Tensor x, Tensor? smooth=None) -> (Tensor, Tensor)", quantize_rows_impl,
            lambda x, smooth=None: _rows_and_scales_like(x))
register_op("gemm_w8a8", "(Tensor a, Tensor b, Tensor scale_a, Tensor scale_b, Tensor? bias, ScalarType out_dtype) "
            "-> Tensor", gemm_w8a8_impl,
            lambda a, b, scale_a, scale_b, bias, out_dtype: a.new_empty((*a.shape[:-1], b.shape[0]), dtype=out_dtype))


# int8dit::gemm_layer is int8dit::gemm_w8a8 without the operand checks, for the traced calls of
# int8dit's own modules (GeluMLP's fc2, Flux's proj_out) on the int8 rows and scales one of int8dit's
# quantization ops just wrote, with the layer's own weight: they fit by construction.
register_op("gemm_layer", "(Tensor a, Tensor b, Tensor scale_a, Tensor scale_b, Tensor? bias, ScalarType out_dtype) "
            "-> Tensor", gemm_unchecked,
            lambda a, b, scale_a, scale_b, bias, out_dtype: a.new_empty((*a.shape[:-1], b.shape[0]), dtype=out_dtype))


def quantize_rows(x: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """Per-row int8 quantization of ``x`` [..., K] (bf16/fp16; fp32 on the CPU), divided by ``smooth``
    where given: int8 [..., K] and fp32 scales [...] (torch.ops.int8dit.quantize_rows)."""
    return torch.ops.int8dit.quantize_rows(x, smooth)


def gemm_w8a8(a: Tensor, b: Tensor, scale_a: Tensor, scale_b: Tensor, bias: Optional[Tensor],
              out_dtype: torch.dtype) -> Tensor:
    """The fused W8A8 GEMM: float(a @ b.T) * scale_a[m] * scale_b[n] + bias[n] in ``out_dtype``
    (torch.int32: the raw accumulators) (torch.ops.int8dit.gemm_w8a8)."""
    return torch.ops.int8dit.gemm_w8a8(a, b, scale_a, scale_b, bias, out_dtype)


_lin_fake = lambda x, weight, weight_scale, bias, smooth: x.new_empty(  # noqa: E731
    (*x.shape[:-1], weight.shape[0]), dtype=_out_dtype(x))
register_op("linear", "(Tensor x, Tensor weight, Tensor weight_scale, Tensor? bias, Tensor? smooth) -> Tensor",
            linear_impl, _lin_fake)
linear = torch.ops.int8dit.linear.default


# int8dit::linear_layer is int8dit::linear without the operand checks, for an int8dit Linear's own
# traced calls (torch.compile): its buffers fit each other by construction, and its forward checks x's
# features and device while tracing, on which the compiled graph is guarded. A compiled layer paid
# ~3 us of host time a call for the checks on the development machine (bench/host/python_overhead.py).
register_op("linear_layer", "(Tensor x, Tensor weight, Tensor weight_scale, Tensor? bias, Tensor? smooth) -> Tensor",
            linear_unchecked, _lin_fake)


def linear_group_impl(x: Tensor, weights: list[Tensor], weight_scales: list[Tensor],
                      biases: list[Optional[Tensor]]) -> list[Tensor]:
    """Layers without a divisor on one input: x quantized once (in the first layer's call) and every
    layer's GEMM on those int8 rows; the same bits as each layer alone. One op call for the group, and
    one scratch allocation (rows, scales, the largest workspace) for all of it: the compiled paths'
    host time (graph_passes.py; bench/host/python_overhead.py, compiled_siblings)."""
    if off_current_device(x):
        return on_device_of(x, linear_group_impl, x, weights, weight_scales, biases)
    out_dtype = _out_dtype(x)
    cuda = x.is_cuda
    dev = x.device
    k = x.shape[-1]
    m = x.numel() // k if k else 0
    ws_bytes = 0
    if cuda and m > 0:  # the largest workspace of the layers' GEMM configurations, known from a shape's second call on
        sizes = [_workspace_bytes.get((dev.index, m, w.shape[0], k, out_dtype, b is not None))
                 for w, b in zip(weights, biases)]
        if None in sizes:  # a first call: the layers one by one (on x as given), which ask the dispatcher
            d, q, scale = linear_keeping_rows(x, weights[0], weight_scales[0], biases[0], None)
            return [d] + [gemm_unchecked(q, w, scale, ws, b, out_dtype)
                          for w, ws, b in zip(weights[1:], weight_scales[1:], biases[1:])]
        ws_bytes = max(sizes)
    if cuda and x.dtype == torch.float32:
        # NOTE: the GPU quantization kernel reads bf16/fp16; fp32 activations are rounded to bf16 first.
        x = x.to(torch.bfloat16)
    rows, m, ldx = _rows_of(x, k)
    outs = [torch.empty((*x.shape[:-1], w.shape[0]), dtype=out_dtype, device=dev) for w in weights]
    if m == 0:
        return outs
    total, sx_off, ws_off = _scratch_layout(m, k, ws_bytes)
    scratch = torch.empty(total, dtype=torch.int8, device=dev)
    q_ptr = scratch.data_ptr()
    sx_ptr, ws_ptr = q_ptr + sx_off, (q_ptr + ws_off if ws_bytes else 0)
    stream = _current_stream(dev) if cuda else 0
    out_type = _DTYPES[out_dtype]
    w, n = weights[0], weights[0].shape[0]
    _C.raw.linear(not cuda, rows.data_ptr(), _DTYPES[x.dtype], m, k, ldx, 0, q_ptr, sx_ptr, w.data_ptr(), n,
                  weight_scales[0].data_ptr(), _ptr(biases[0]), outs[0].data_ptr(), out_type, ws_ptr, ws_bytes, stream)
    for w, ws, b, d in zip(weights[1:], weight_scales[1:], biases[1:], outs[1:]):
        n = w.shape[0]  # (scales per row and per column: neither is per tensor)
        _C.raw.gemm_w8a8(not cuda, m, n, k, q_ptr, k, w.data_ptr(), w.stride(0), sx_ptr, False, ws.data_ptr(), False,
                         _ptr(b), d.data_ptr(), out_type, n, ws_ptr, ws_bytes, stream)
    return outs


# int8dit::linear_group: the layers of a compiled graph that read one input (graph_passes.py).
register_op("linear_group", "(Tensor x, Tensor[] weights, Tensor[] weight_scales, Tensor?[] biases) -> Tensor[]",
            linear_group_impl,
            lambda x, weights, weight_scales, biases: [_lin_fake(x, w, None, None, None) for w in weights])


class _LinearFunction(torch.autograd.Function):
    """int8dit::linear with the gradient with respect to the input, through the dequantized weight
    (straight-through for the activation rounding), so that adapters trained on top of a quantized
    model get gradients. The weights are buffers: they get none."""

    @staticmethod
    def forward(ctx, x, weight, weight_scale, bias, smooth):
        ctx.save_for_backward(weight, weight_scale, smooth)
        ctx.x_dtype = x.dtype
        return torch.ops.int8dit.linear(x, weight, weight_scale, bias, smooth)

    @staticmethod
    def backward(ctx, grad):
        weight, weight_scale, smooth = ctx.saved_tensors
        w = weight.to(torch.float32) * weight_scale[:, None]
        if smooth is not None:
            w = w / smooth[None, :]
        return (grad.to(torch.float32) @ w).to(ctx.x_dtype), None, None, None, None


def linear_w8a8(x: Tensor, weight: Tensor, weight_scale: Tensor, bias: Optional[Tensor] = None,
                smooth: Optional[Tensor] = None) -> Tensor:
    """The quantized linear layer. Eager calls skip the dispatcher (a few microseconds per layer that
    a DiT with hundreds of layers would feel); traced calls go through the registered op, and calls
    that need the input's gradient through _LinearFunction."""
    if x.requires_grad and torch.is_grad_enabled():
        return _LinearFunction.apply(x, weight, weight_scale, bias, smooth)
    if not plain_eager_call(x):
        return torch.ops.int8dit.linear(x, weight, weight_scale, bias, smooth)
    return linear_impl(x, weight, weight_scale, bias, smooth)


def any_needs_grad(*tensors: Optional[Tensor]) -> bool:
    """Whether autograd records an op on these tensors: grad mode on and any of them (None skipped)
    requiring a gradient, as the output of a LoRA adapter or of a trainable adaLN linear does. The
    fused producers' outputs have no autograd history, so such calls must take PyTorch's ops."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def plain_eager_call(x: Tensor) -> bool:
    """True outside tracing for a plain tensor that needs no gradient: the calls that may skip the
    dispatcher. Fake and functional tensors (tracing outside dynamo, e.g. make_fx) are Tensor
    subclasses; an input that needs a gradient goes through the op's autograd formula."""
    return not (torch.compiler.is_compiling() or type(x) is not torch.Tensor or
                (x.requires_grad and torch.is_grad_enabled()))
