"""int8dit.torch.Linear: a drop-in for nn.Linear computing with int8 weights and activations."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .ops import _out_dtype, gemm_unchecked, linear_keeping_rows, linear_unchecked, linear_w8a8, plain_eager_call
from .produced import PRODUCED
from .weights import quantize_weight

# K must be a multiple of 16 (16-byte int8 rows for TMA/cp.async); N a multiple of 8 (16-byte bf16 output rows).
K_MULTIPLE = 16
N_MULTIPLE = 8


def unsupported_reason(in_features: int, out_features: int) -> Optional[str]:
    """Why a linear layer of this shape cannot be quantized, or None when it can."""
    if in_features % K_MULTIPLE:
        return f"in_features = {in_features} is not a multiple of {K_MULTIPLE}"
    if out_features % N_MULTIPLE:
        return f"out_features = {out_features} is not a multiple of {N_MULTIPLE}"
    return None


class Linear(nn.Module):
    """y = x W^T + b with W int8 per output channel and x quantized per token at run time.

    ``weight`` int8 [N, K] is a parameter that takes no gradient; ``weight_scale`` fp32 [N], ``bias``
    fp32 [N] (optional) and ``smooth`` fp32 [K] (optional SmoothQuant divisor, already folded into
    ``weight``) are buffers. The weight is a parameter because diffusers reads a module's dtype from
    its first parameter, and takes int8 to mean a quantized module (Wan's time embedder:
    ``next(iter(self.time_embedder.parameters())).dtype``, StopIteration on a module whose weights were
    all buffers), as bitsandbytes' int8 layers have it. The output
    has the input's dtype (bf16 or fp16 on the GPU; fp32 inputs are rounded to bf16 before
    quantization there). CPU tensors run the C++ reference.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, smooth: bool = False,
                 device=None) -> None:
        super().__init__()
        reason = unsupported_reason(in_features, out_features)
        if reason:
            raise ValueError(f"int8dit.torch.Linear({in_features}, {out_features}): {reason}; keep this layer in "
                             "bf16 (quantize_ skips it) or pad the features")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.zeros(out_features, in_features, dtype=torch.int8, device=device),
                                   requires_grad=False)
        self.register_buffer("weight_scale", torch.zeros(out_features, dtype=torch.float32, device=device))
        self.register_buffer("bias", torch.zeros(out_features, dtype=torch.float32, device=device) if bias else None)
        self.register_buffer("smooth", torch.ones(in_features, dtype=torch.float32, device=device) if smooth else None)

    @classmethod
    @torch.no_grad()
    def from_float(cls, linear: nn.Linear, smooth: Optional[Tensor] = None, device=None) -> "Linear":
        """Quantize an nn.Linear (any float dtype). ``smooth`` [K]: SmoothQuant factors s (activations are
        divided by s, the weight columns multiplied by it). ``device``: where the int8 layer is built
        (default: the float weight's device); the float weight is copied there for the quantization
        and ``linear`` itself is left as it was (a model held in host memory, quantized onto the GPU a
        layer at a time: quantize_(device=...))."""
        w = linear.weight if device is None else linear.weight.to(device)
        q = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, smooth=smooth is not None,
                device=w.device)
        if smooth is not None:
            if smooth.shape != (linear.in_features,):
                raise ValueError(f"smooth has shape {tuple(smooth.shape)}; expected ({linear.in_features},), one "
                                 "factor per input feature")
            q.smooth.copy_(smooth.to(torch.float32))
        qw, scale = quantize_weight(w, q.smooth)
        q.weight.copy_(qw)
        q.weight_scale.copy_(scale)
        if linear.bias is not None:
            q.bias.copy_(linear.bias.to(torch.float32))
        return q

    # True where quantize_ found siblings reading the same input (shared_input.py): a quantization this
    # layer makes of its input is then recorded for them in the producers' table (produced.py).
    shares_input = False

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"input has {x.shape[-1]} features; this layer takes {self.in_features}")
        # NOTE: inference-mode tensors keep no version counter, so an in-place write between two
        # siblings could not be seen: they take the usual path.
        if not plain_eager_call(x):  # traced, or the input needs a gradient: the op's own paths
            if (x.requires_grad and torch.is_grad_enabled()) or x.get_device() != self.weight.get_device():
                # (a device mismatch: the checked op says so while tracing)
                return linear_w8a8(x, self.weight, self.weight_scale, self.bias, self.smooth)
            return torch.ops.int8dit.linear_layer(x, self.weight, self.weight_scale, self.bias, self.smooth)
        # Eager: this layer's tensors fit each other by construction, so only x is checked here and the
        # operand checks of the public ops (checks.py) are skipped.
        # NOTE: the tensors are read from _parameters and _buffers: `self.weight` goes through
        # nn.Module.__getattr__, ~0.4 us each, four of them per call (bench/host/python_overhead.py).
        # Those dicts are what .to(), load_state_dict and registration update, so this reads the current
        # tensors.
        buffers = self._buffers
        weight = self._parameters["weight"]
        weight_scale, bias, smooth = buffers["weight_scale"], buffers["bias"], buffers["smooth"]
        if x.get_device() != weight.get_device():  # (comparing torch.device objects costs ~0.8 us)
            raise ValueError(f"input is on {x.device} and this layer on {weight.device}: move one of them")
        shares = self.shares_input
        if smooth is None and (shares or PRODUCED.holds_any()) and not x.is_inference():
            # A fused producer or a sibling may have quantized x already (produced.py).
            hit = PRODUCED.lookup(x)
            if hit is None and shares:  # quantize it in this layer's own call, and record the rows for the siblings
                d, q, scale = linear_keeping_rows(x, weight, weight_scale, bias, smooth)
                if q is not None:
                    PRODUCED.remember(x, q, scale)
                return d
            if hit is not None:
                return gemm_unchecked(hit[0], weight, hit[1], weight_scale, bias, _out_dtype(x))
        return linear_unchecked(x, weight, weight_scale, bias, smooth)

    def gemm_on_own_rows(self, q: Tensor, scale: Tensor, out_dtype: torch.dtype) -> Tensor:
        """forward_quantized for int8dit's own fused modules, whose ``q`` and ``scale`` come straight from
        one of int8dit's quantization kernels for this layer: no operand checks but the device, eager or
        traced."""
        b, weight = self._buffers, self._parameters["weight"]
        if q.get_device() != weight.get_device():  # the GEMM checks no pointer: a foreign one would fault
            raise ValueError(f"int8 rows on {q.device} for a layer on {weight.device}: move one of them")
        if plain_eager_call(q):
            return gemm_unchecked(q, weight, scale, b["weight_scale"], b["bias"], out_dtype)
        return torch.ops.int8dit.gemm_layer(q, weight, scale, b["weight_scale"], b["bias"], out_dtype)

    def forward_quantized(self, q: Tensor, scale: Tensor, out_dtype: torch.dtype = torch.bfloat16) -> Tensor:
        """The layer on an input already quantized per token (int8 ``q`` [..., K], fp32 ``scale`` [...]),
        as the fused producers (int8dit.torch.fused) write it. The producer must have divided by this
        layer's ``smooth`` when it has one."""
        if q.shape[-1] != self.in_features:
            raise ValueError(f"input has {q.shape[-1]} features; this layer takes {self.in_features}")
        return torch.ops.int8dit.gemm_w8a8(q, self.weight, scale, self.weight_scale, self.bias, out_dtype)

    def dequantized_weight(self) -> Tensor:
        """The weight this layer multiplies by, in fp32 (with any smoothing factors divided back out)."""
        w = self.weight.to(torch.float32) * self.weight_scale[:, None]
        return w if self.smooth is None else w / self.smooth[None, :]

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"smoothquant={self.smooth is not None}")
