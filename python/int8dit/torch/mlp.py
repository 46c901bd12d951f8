"""GELU MLPs whose second linear reads int8 straight from the GELU.

diffusers' FeedForward with ``activation_fn="gelu-approximate"`` (Flux, SD3, PixArt, DiT) runs
``fc2(dropout(gelu(fc1(x))))``. With int8dit Linears that is fc1's GEMM, a PyTorch GELU that writes
its bf16 output, and fc2's own quantization pass that reads it back: on DiT-XL/2's 8192 x 4608
activation, 75 MB written and read once more than needed. ``GeluMLP`` runs fc1, then
``gelu_quantize`` (GELU and the per-token quantization in one kernel, reading fc1's output once),
then fc2's GEMM on the int8 rows.

The module keeps FeedForward's ``net`` (same children, same state-dict keys, so checkpoints written
before or after the rewrite load either way). It takes the fused path only where it computes the
same function: inference (no dropout that acts, no input needing a gradient), fc2 an int8dit Linear,
fc1's output bf16 or fp16. Anything else runs the original modules one after the other.

Numerics: the unfused path rounds GELU's output to bf16 before quantizing it; the fused one
quantizes the fp32 GELU value, so int8 values may differ by one where that rounding crosses a
quantization step (tests/python/test_torch_cpu.py bounds the difference in the output).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .fused import gelu_quantize_impl
from .instance_forward import hooks_around
from .linear import Linear
from .ops import any_needs_grad, plain_eager_call

_FUSED_DTYPES = (torch.bfloat16, torch.float16)


def _is_tanh_gelu_feed_forward(module: nn.Module) -> bool:
    """diffusers' FeedForward built with activation_fn="gelu-approximate" and an int8dit fc2: net is
    [GELU(proj, approximate="tanh"), Dropout, fc2] plus an optional final Dropout. Matched by
    structure and class names, so diffusers need not be importable here."""
    if type(module).__name__ != "FeedForward":
        return False
    net = getattr(module, "net", None)
    if not isinstance(net, nn.ModuleList) or len(net) not in (3, 4):
        return False
    act = net[0]
    return (type(act).__name__ == "GELU" and getattr(act, "approximate", None) == "tanh" and
            isinstance(getattr(act, "proj", None), nn.Module) and isinstance(net[1], nn.Dropout) and
            isinstance(net[2], Linear) and (len(net) == 3 or isinstance(net[3], nn.Dropout)))


class GeluMLP(nn.Module):
    """A tanh-GELU FeedForward (see the module docstring) with GELU fused into fc2's quantization."""

    def __init__(self, net: nn.ModuleList) -> None:
        super().__init__()
        self.net = net

    @property
    def fc1(self) -> nn.Module:
        return self.net[0].proj

    @property
    def fc2(self) -> Linear:
        return self.net[2]

    def _dropouts_act(self) -> bool:
        return self.training and any(m.p > 0 for i, m in enumerate(self.net) if i not in (0, 2))

    def forward(self, hidden_states: Tensor, *args, **kwargs) -> Tensor:
        # Extra arguments are accepted and ignored, as FeedForward does (its deprecated ``scale``).
        if self._dropouts_act():
            return self._unfused(hidden_states)
        # NOTE: the children are read from _modules and the buffers from _buffers, not as attributes
        # (each nn.Module.__getattr__ costs ~0.4 us; bench/host/python_overhead.py); those dicts are
        # what assignment, .to() and load_state_dict update, so they hold the current modules and tensors.
        net = self._modules["net"]._modules
        return self._after_fc1(net["0"]._modules["proj"](hidden_states), net)

    def int8_fc1(self) -> Optional[Linear]:
        """fc1, where forward_on_rows can take its input as int8 rows: an int8dit Linear, and no dropout
        that acts."""
        fc1 = self._modules["net"]._modules["0"]._modules["proj"]
        return fc1 if isinstance(fc1, Linear) and not self._dropouts_act() else None

    def forward_on_rows(self, q: Tensor, scale: Tensor, out_dtype: torch.dtype) -> Tensor:
        """The MLP on an input that int8dit's own quantization kernel wrote as int8 rows for fc1 (divided
        by fc1's ``smooth`` where it has one): fc1's GEMM, then as forward. Only where int8_fc1() is fc1."""
        net = self._modules["net"]._modules
        return self._after_fc1(net["0"]._modules["proj"].gemm_on_own_rows(q, scale, out_dtype), net)

    def _after_fc1(self, h: Tensor, net) -> Tensor:
        if h.dtype not in _FUSED_DTYPES or any_needs_grad(h):
            return self._unfused_after_fc1(h)
        fc2 = net["2"]
        smooth = fc2._buffers["smooth"]
        if plain_eager_call(h):  # skip the dispatcher (ops.py says why)
            q, scale = gelu_quantize_impl(h, smooth)
        else:
            q, scale = torch.ops.int8dit.gelu_quantize(h, smooth)
        return fc2.gemm_on_own_rows(q, scale, h.dtype)

    def _unfused(self, x: Tensor) -> Tensor:
        for module in self.net:
            x = module(x)
        return x

    def _unfused_after_fc1(self, h: Tensor) -> Tensor:
        h = self.net[0].gelu(h)
        for module in self.net[1:]:
            h = module(h)
        return h


def fuse_gelu_mlps(model: nn.Module) -> int:
    """Replace, in place, every diffusers FeedForward of ``model`` that uses the tanh GELU and whose
    second linear is an int8dit Linear by a GeluMLP holding the same modules. Returns how many."""
    targets = [name for name, m in model.named_modules()
               if name and _is_tanh_gelu_feed_forward(m) and not hooks_around(m)]  # (a hooked one stays)
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, child)
        new = GeluMLP(old.net)
        new.train(old.training)
        setattr(parent, child, new)
    return len(targets)
