"""Sibling layers that read the same input quantize it once.

diffusers' attention computes ``to_q(x)``, ``to_k(x)`` and ``to_v(x)`` on one tensor (and, in joint
attention, ``add_q_proj``/``add_k_proj``/``add_v_proj`` on another). Each int8dit Linear quantizes its
own input, so that input was quantized three times: on DiT-XL/2 (8192 tokens x 1152) about 30 us a
block of the ~130 us that quantization costs there. quantize_ gives the int8dit Linears that are
children of one module, have the same in_features and no SmoothQuant divisor, one
SharedInputQuantization: a member called with the very tensor the group quantized last (same object,
same version counter, same stream) reuses its int8 rows and scales. Results are bit-identical: the
quantization of a tensor does not depend on which layer asks for it.

The group holds its input only weakly: the int8 copy is dropped when the input is freed, so no
activation outlives its forward because of the cache, and a new tensor at a recycled address is never
mistaken for the old one. Only plain eager calls share; traced calls (torch.compile, make_fx), inputs
that need a gradient and inference-mode tensors (which keep no version counter, so an in-place write
between two siblings could not be seen) take the layer's usual path.
"""
from __future__ import annotations

import weakref
from typing import Optional

import torch
from torch import Tensor

from .ops import _stream, quantize_rows_impl


class SharedInputQuantization:
    def __init__(self) -> None:
        self._clear()
        self.hits = 0  # calls served from the cache (for tests and curiosity)

    def _clear(self) -> None:
        self._ref: Optional[weakref.ref] = None
        self._key = None
        self._q: Optional[Tensor] = None
        self._scale: Optional[Tensor] = None

    def quantized(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(int8 rows, fp32 per-row scales) of ``x``: the cached ones when ``x`` is what was last
        quantized and has not been written since, else freshly computed (and cached)."""
        key = (x._version, _stream(x))
        if self._ref is not None and self._ref() is x and self._key == key:
            self.hits += 1
            return self._q, self._scale
        q, scale = quantize_rows_impl(x)
        self._ref = weakref.ref(x, self._on_input_freed)
        self._key, self._q, self._scale = key, q, scale
        return q, scale

    def _on_input_freed(self, ref: weakref.ref) -> None:
        if ref is self._ref:  # not an older input dying after a newer one replaced it
            self._clear()

    def __deepcopy__(self, memo):
        # A copied model (e.g. int8dit.bench's variants) gets an empty cache of its own, one per group:
        # the memo hands the same new object to every member of the group.
        new = SharedInputQuantization()
        memo[id(self)] = new
        return new

    def __reduce__(self):  # pickling keeps the grouping, not the cached tensors
        return (SharedInputQuantization, ())


def share_sibling_inputs(model: torch.nn.Module) -> int:
    """Give every group of >= 2 int8dit Linears that are children of one module, with the same
    in_features and device and no SmoothQuant divisor, a SharedInputQuantization. Returns the number
    of groups."""
    from .linear import Linear

    groups = 0
    for parent in model.modules():
        by_key: dict = {}
        for child in parent.children():
            if isinstance(child, Linear) and child.smooth is None:
                by_key.setdefault((child.in_features, child.weight.device), []).append(child)
        for members in by_key.values():
            if len(members) < 2:
                continue
            share = SharedInputQuantization()
            for m in members:
                m.input_share = share
            groups += 1
    return groups
