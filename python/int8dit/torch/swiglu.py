"""Gated (SwiGLU) MLPs whose second linear reads int8 straight from the gate.

Newer DiTs use a gated MLP: ``w2(silu(w1(x)) * w3(x))`` (Z-Image's FeedForward; Lumina2's,
AuraFlow's and Krea 2's under other names) or the same with w1 and w3 as the halves of one projection (FLUX.2's
Flux2FeedForward and FLUX.3's copy of it: ``linear_out(silu(h[:, :H]) * h[:, H:])`` with
``h = linear_in(x)``; diffusers'
FeedForward with a SwiGLU activation, Mochi's, with the gate in the second half). With int8dit
Linears that is the first GEMM(s), a SiLU pass and a product pass that each write bf16, and the
second linear's own quantization pass that reads the product back: on Z-Image at 1024 px (4608 tokens x 10240) ~0.5 GB of traffic a block that the data
does not need. ``swiglu_quantize`` reads gate and up once and writes the int8 rows the second GEMM
takes (one kernel, src/quant/swiglu_quantize.cu).

``fuse_swiglu_mlps(model)`` (``quantize_(fuse_swiglu=True)``) gives those modules a forward that does
so, keeping their children and state-dict keys. It takes the fused path where it computes the same
function: inference (no input needing a gradient), the second linear an int8dit Linear, the hidden
width a multiple of 8 of at most FUSED_GPU_COLS on the GPU (all the op takes: MAX_GPU_COLS = 24576;
rows over 16384 run a 512-thread kernel, which FLUX.2-dev's 18432-wide MLPs need), bf16 or fp16
activations. Anything else runs the original modules.

Numerics: the unfused path rounds SiLU's output and the product to bf16 before quantizing; the fused
one quantizes the fp32 product, so an int8 value may differ by one where those roundings cross a
quantization step (as GeluMLP; tests/python/test_torch_swiglu.py bounds the output's difference).

``concat_swiglu_quantize(a, gate, up)`` quantizes ``cat([a, silu(gate) * up], -1)`` the same way, for
FLUX.2's single-stream blocks, whose output projection reads the attention output joined with the
MLP's SwiGLU (int8dit.torch.flux2_attention uses it).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import _C
from .checks import check_smooth
from .instance_forward import hooks_around
from .linear import Linear
from .ops import (_DTYPES, _check_device, _current_stream, _ptr, _rows_and_scales_like, _rows_of, any_needs_grad,
                  off_current_device, on_device_of, plain_eager_call, register_op)

_FUSED_DTYPES = (torch.bfloat16, torch.float16)
MAX_GPU_COLS = 24576  # the row kernels hold a row in registers: at most 24576 columns (quantize.h)
# The widest hidden size the fused modules send to the GPU kernel: all the op takes (the 512-thread
# kernel's rows over 16384 passed their GPU tests on 2026-12-05; module docstring).
FUSED_GPU_COLS = MAX_GPU_COLS


def _gpu_rows(rows: Tensor, ld: int, k: int) -> tuple[Tensor, int]:
    """rows (an [M, k] view with row stride ld) as the GPU kernel takes them: 16-byte aligned rows and
    a row stride of a multiple of 8 elements; a contiguous copy where they are not."""
    if rows.data_ptr() % 16 == 0 and ld % 8 == 0:
        return rows, ld
    return rows.reshape(-1, k).contiguous(), k


def swiglu_quantize_impl(gate: Tensor, up: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    op = "swiglu_quantize"
    lead, dtype = gate.shape[:-1], gate.dtype
    if gate.shape != up.shape or dtype != up.dtype or gate.get_device() != up.get_device():
        raise ValueError(f"int8dit.{op}: gate is {gate.dtype} {tuple(gate.shape)} on {gate.device} and up {up.dtype} "
                         f"{tuple(up.shape)} on {up.device}; they must match in shape, dtype and device")
    if off_current_device(gate):
        return on_device_of(gate, swiglu_quantize_impl, gate, up, smooth)
    if not (gate.is_cuda or gate.is_cpu):
        _check_device(gate, "gate")
    if dtype not in _FUSED_DTYPES:
        raise ValueError(f"int8dit.{op}: gate and up are {dtype}; they must be bfloat16 or float16")
    k = gate.shape[-1]
    if k == 0:
        raise ValueError(f"int8dit.{op}: the inputs have no features; they need at least one")
    cuda = gate.is_cuda
    if cuda and (k % 8 or k > MAX_GPU_COLS):
        raise ValueError(f"int8dit.{op}: {k} features: the GPU kernel takes a multiple of 8 up to {MAX_GPU_COLS}; "
                         "compute F.silu(gate) * up and quantize that (int8dit.torch.quantize_rows)")
    if smooth is not None:
        check_smooth(op, smooth, k, gate)
    g_rows, m, ld_gate = _rows_of(gate, k)
    u_rows, _, ld_up = _rows_of(up, k)
    if cuda:
        g_rows, ld_gate = _gpu_rows(g_rows, ld_gate, k)
        u_rows, ld_up = _gpu_rows(u_rows, ld_up, k)
    q = torch.empty(gate.shape, dtype=torch.int8, device=gate.device)
    qs = torch.empty(lead, dtype=torch.float32, device=gate.device)
    if m > 0:
        _C.raw.swiglu_quantize(not cuda, g_rows.data_ptr(), ld_gate, u_rows.data_ptr(), ld_up, _DTYPES[dtype], m, k,
                               _ptr(smooth), q.data_ptr(), qs.data_ptr(), _current_stream(gate.device) if cuda else 0)
    return q, qs


register_op("swiglu_quantize", "(Tensor gate, Tensor up, Tensor? smooth=None) -> (Tensor, Tensor)",
            swiglu_quantize_impl, lambda gate, up, smooth=None: _rows_and_scales_like(gate))


def concat_swiglu_quantize_impl(a: Tensor, gate: Tensor, up: Tensor,
                                smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    op = "concat_swiglu_quantize"
    lead, dtype = a.shape[:-1], a.dtype
    if (gate.shape != up.shape or gate.shape[:-1] != lead or not dtype == gate.dtype == up.dtype or
            not a.get_device() == gate.get_device() == up.get_device()):
        raise ValueError(f"int8dit.{op}: a is {a.dtype} {tuple(a.shape)} on {a.device}, gate {gate.dtype} "
                         f"{tuple(gate.shape)} on {gate.device}, up {up.dtype} {tuple(up.shape)} on {up.device}; gate "
                         "and up must match in shape, and all three in every dimension but the last, in dtype and "
                         "in device (their rows are joined)")
    if off_current_device(a):
        return on_device_of(a, concat_swiglu_quantize_impl, a, gate, up, smooth)
    if not (a.is_cuda or a.is_cpu):
        _check_device(a, "a")
    if dtype not in _FUSED_DTYPES:
        raise ValueError(f"int8dit.{op}: the inputs are {dtype}; they must be bfloat16 or float16")
    ka, kh = a.shape[-1], gate.shape[-1]
    if ka == 0 or kh == 0:
        raise ValueError(f"int8dit.{op}: a has {ka} and gate {kh} features; each needs at least one")
    cuda = a.is_cuda
    if cuda and (ka % 8 or kh % 8 or ka + kh > MAX_GPU_COLS):
        raise ValueError(f"int8dit.{op}: {ka} + {kh} features: the GPU kernel takes multiples of 8, up to "
                         f"{MAX_GPU_COLS} in all; compute cat([a, F.silu(gate) * up], -1) and quantize that "
                         "(int8dit.torch.quantize_rows)")
    if smooth is not None:
        check_smooth(op, smooth, ka + kh, a)
    a_rows, m, lda = _rows_of(a, ka)
    g_rows, _, ld_gate = _rows_of(gate, kh)
    u_rows, _, ld_up = _rows_of(up, kh)
    if cuda:
        a_rows, lda = _gpu_rows(a_rows, lda, ka)
        g_rows, ld_gate = _gpu_rows(g_rows, ld_gate, kh)
        u_rows, ld_up = _gpu_rows(u_rows, ld_up, kh)
    q = torch.empty((*lead, ka + kh), dtype=torch.int8, device=a.device)
    qs = torch.empty(lead, dtype=torch.float32, device=a.device)
    if m > 0:
        _C.raw.concat_swiglu_quantize(not cuda, a_rows.data_ptr(), ka, lda, g_rows.data_ptr(), ld_gate,
                                      u_rows.data_ptr(), ld_up, kh, _DTYPES[dtype], m, _ptr(smooth), q.data_ptr(),
                                      qs.data_ptr(), _current_stream(a.device) if cuda else 0)
    return q, qs


register_op("concat_swiglu_quantize", "(Tensor a, Tensor gate, Tensor up, Tensor? smooth=None) -> (Tensor, Tensor)",
            concat_swiglu_quantize_impl,
            lambda a, gate, up, smooth=None: _rows_and_scales_like(a, a.shape[-1] + gate.shape[-1]))


def concat_swiglu_quantize(a: Tensor, gate: Tensor, up: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """``cat([a, silu(gate) * up], -1)`` (bf16 or fp16; gate and up the same shape, a the same leading
    shape; the product in fp32, not rounded), divided by ``smooth`` where given, quantized per row
    without the product or the concatenation ever being written: int8 [..., Ka + Kh] and fp32 scales
    [...] (torch.ops.int8dit.concat_swiglu_quantize). On the GPU Ka and Kh must be multiples of 8, at
    most 24576 in all."""
    return torch.ops.int8dit.concat_swiglu_quantize(a, gate, up, smooth)


def swiglu_quantize(gate: Tensor, up: Tensor, smooth: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """``silu(gate) * up`` (bf16 or fp16, the same shape [..., K]; in fp32, not rounded), divided by
    ``smooth`` where given, quantized per row without the product ever being written: int8 [..., K] and
    fp32 scales [...] (torch.ops.int8dit.swiglu_quantize). On the GPU K must be a multiple of 8 of at
    most 24576 (over 16384: a 512-thread kernel, one CTA a row)."""
    return torch.ops.int8dit.swiglu_quantize(gate, up, smooth)


def _fused_fits(h: Tensor, second: nn.Module) -> bool:
    """Whether the product of gate and up (each [..., K] like h) may go through swiglu_quantize."""
    if not isinstance(second, Linear) or h.dtype not in _FUSED_DTYPES or any_needs_grad(h):
        return False
    k = second.in_features
    return h.is_cpu or (h.is_cuda and k % 8 == 0 and k <= FUSED_GPU_COLS)


def _second_linear(second: Linear, gate: Tensor, up: Tensor) -> Tensor:
    smooth = second._buffers["smooth"]
    if plain_eager_call(gate):  # skip the dispatcher (ops.py says why)
        q, scale = swiglu_quantize_impl(gate, up, smooth)
    else:
        q, scale = torch.ops.int8dit.swiglu_quantize(gate, up, smooth)
    return second.gemm_on_own_rows(q, scale, gate.dtype)


class SwigluMLP(nn.Module):
    """A gated MLP ``down(silu(gate(x)) * up(x))`` with the gate fused into down's quantization (module
    docstring). Holds the three linears of the module it replaced under their names there (Z-Image:
    w1, w3, w2; Lumina2: linear_1, linear_3, linear_2; AuraFlow: linear_1, linear_2, out_projection),
    so its checkpoint keys are that module's."""

    def __init__(self, linears: dict, gate: str, up: str, down: str) -> None:
        super().__init__()
        for name, module in linears.items():
            self.add_module(name, module)
        self._roles = (gate, up, down)

    def forward(self, x: Tensor) -> Tensor:
        modules = self._modules
        gate_name, up_name, down_name = self._roles
        gate, up, down = modules[gate_name](x), modules[up_name](x), modules[down_name]
        if _fused_fits(gate, down):
            return _second_linear(down, gate, up)
        return down(F.silu(gate) * up)


class PackedSwigluMLP(nn.Module):
    """A gated MLP whose gate and up are the halves of one projection, ``linear_out(act_fn(linear_in(x)))``
    with act_fn the SwiGLU of the halves, gate first (FLUX.2's Flux2FeedForward), with the gate fused
    into linear_out's quantization (module docstring). Holds the original linear_in, act_fn and
    linear_out."""

    def __init__(self, linear_in: nn.Module, act_fn: nn.Module, linear_out: nn.Module) -> None:
        super().__init__()
        self.linear_in, self.act_fn, self.linear_out = linear_in, act_fn, linear_out

    def forward(self, x: Tensor) -> Tensor:
        modules = self._modules
        h = modules["linear_in"](x)
        half = h.shape[-1] // 2
        if _fused_fits(h, modules["linear_out"]):
            return _second_linear(modules["linear_out"], h[..., :half], h[..., half:])
        return modules["linear_out"](modules["act_fn"](h))


class SwigluFeedForward(nn.Module):
    """diffusers' FeedForward built with activation_fn="swiglu" (Mochi): ``net`` = [SwiGLU, Dropout,
    Linear (, Dropout)], where SwiGLU's projection gives [hidden | gate] (gate second) and returns
    hidden * silu(gate); with the gate fused into the Linear's quantization. Keeps ``net``."""

    def __init__(self, net: nn.ModuleList) -> None:
        super().__init__()
        self.net = net

    def forward(self, hidden_states: Tensor, *args, **kwargs) -> Tensor:
        # (extra arguments accepted and ignored, as FeedForward does)
        net = self._modules["net"]._modules
        if not (self.training and any(m.p > 0 for i, m in enumerate(self.net) if i not in (0, 2))):
            h = net["0"]._modules["proj"](hidden_states)
            half = h.shape[-1] // 2
            if _fused_fits(h, net["2"]):
                return _second_linear(net["2"], h[..., half:], h[..., :half])
        for module in self.net:
            hidden_states = module(hidden_states)
        return hidden_states


# Gated MLPs with the three linears as children: class name -> (gate, up, down)
_SEPARATE = {"FeedForward": ("w1", "w3", "w2"), "LuminaFeedForward": ("linear_1", "linear_3", "linear_2"),
             "AuraFlowFeedForward": ("linear_1", "linear_2", "out_projection"), "Krea2SwiGLU": ("gate", "up", "down"),
             # HiDream-I1's dense, shared and routed experts: w2(silu(w1(x)) * w3(x))
             "HiDreamImageFeedForwardSwiGLU": ("w1", "w3", "w2"),
             # Qwen-Image 2.1: out(silu(gate_layer(x)) * proj(x))
             "QwenImage21SwiGLUFeedForward": ("gate_layer", "proj", "out")}


def _separate_roles(m: nn.Module):
    """(gate, up, down) child names where ``m`` is one of the gated MLPs above with an int8dit down
    projection (matched by class name and children, so diffusers need not be importable here)."""
    roles = _SEPARATE.get(type(m).__name__)
    if roles is None or not all(isinstance(m._modules.get(n), nn.Module) for n in roles):
        return None
    if type(m).__name__ == "FeedForward" and not callable(getattr(m, "_forward_silu_gating", None)):
        return None  # (diffusers' own FeedForward: net, below)
    return roles if isinstance(m._modules[roles[2]], Linear) else None


def _is_flux2_feed_forward(m: nn.Module) -> bool:
    # FLUX.3's Flux3FeedForward / Flux3SwiGLU are diffusers' copies of FLUX.2's
    return (type(m).__name__ in ("Flux2FeedForward", "Flux3FeedForward") and
            type(getattr(m, "act_fn", None)).__name__ in ("Flux2SwiGLU", "Flux3SwiGLU") and
            isinstance(getattr(m, "linear_in", None), nn.Module) and isinstance(getattr(m, "linear_out", None), Linear))


def _is_swiglu_feed_forward(m: nn.Module) -> bool:
    net = getattr(m, "net", None)
    if type(m).__name__ != "FeedForward" or not isinstance(net, nn.ModuleList) or len(net) not in (3, 4):
        return False
    return (type(net[0]).__name__ == "SwiGLU" and isinstance(getattr(net[0], "proj", None), nn.Module) and
            isinstance(net[1], nn.Dropout) and isinstance(net[2], Linear) and
            (len(net) == 3 or isinstance(net[3], nn.Dropout)))


def _fused_module(m: nn.Module) -> Optional[nn.Module]:
    roles = _separate_roles(m)
    if roles is not None:
        return SwigluMLP({n: c for n, c in m._modules.items()}, *roles)
    if _is_flux2_feed_forward(m):
        return PackedSwigluMLP(m.linear_in, m.act_fn, m.linear_out)
    if _is_swiglu_feed_forward(m):
        return SwigluFeedForward(m.net)
    return None


def fuse_swiglu_mlps(model: nn.Module) -> int:
    """Replace, in place, every gated MLP of ``model`` that this module knows (Z-Image's FeedForward,
    Lumina2's LuminaFeedForward, AuraFlow's AuraFlowFeedForward, FLUX.2's Flux2FeedForward, diffusers'
    FeedForward with a SwiGLU activation) whose down projection is an int8dit Linear, by the module
    that runs it through swiglu_quantize, holding the same children. Returns how many."""
    targets = [(name, m) for name, m in model.named_modules() if name and not isinstance(
        m, (SwigluMLP, PackedSwigluMLP, SwigluFeedForward))]
    count = 0
    for name, old in targets:
        new = None if hooks_around(old) else _fused_module(old)  # (a hooked one stays: replacing drops its hooks)
        if new is None:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        new.train(old.training)
        setattr(parent, child, new)
        count += 1
    return count
