"""Activations that their producer already quantized.

A fused producer (int8dit.torch.adanorm: LayerNorm + adaLN modulation) writes its bf16 output ``y``
and, in the same kernel, ``y``'s int8 rows and per-token scales. It records them here; an int8dit
Linear called on that very tensor (same object, not written since, same stream, and both in or both
out of a CUDA graph capture) then runs only its GEMM, whichever module it belongs to (attention's
q/k/v, Flux's single-block MLP beside them). A
layer whose siblings read the same input (shared_input.py) records the quantization it makes of it
here too, for them.

Entries are held weakly: an entry goes when its tensor is freed, so no activation outlives its
forward because of this table and a new tensor at a recycled address is never mistaken for the old
one. At most ``_CAPACITY`` entries are kept (a joint block produces the image and the text stream's
before either is consumed); the oldest goes first.

The quantization a fused producer records is that of its fp32 value before the rounding to bf16, so
a consumer reads int8 values that may differ by one from quantizing ``y`` itself (DESIGN.md's
tolerance for the fused producers); a sibling's is that of ``y`` itself, bit for bit. Only layers
without a SmoothQuant divisor take them, since no producer divided by one.
"""
from __future__ import annotations

import weakref
from typing import Optional

import torch
from torch import Tensor

from .ops import _stream

_CAPACITY = 4

# Whether the current CUDA stream is capturing a graph (the raw call: ~0.1 us).
_capturing = getattr(torch._C, "_cuda_isCurrentStreamCapturing", lambda: False)


def _key(t: Tensor) -> tuple:
    """What must not have changed between a record and its use: the tensor's version, the stream, and
    whether that stream is capturing a CUDA graph. An entry recorded eagerly must not be read by a graph
    being captured (replays would read the eager rows, long freed), nor one recorded in a capture (rows
    of the graph's pool, not written until a replay) by an eager call."""
    if t.is_cuda:
        return t._version, _stream(t), _capturing()
    return t._version, 0, False


class _Entry:
    __slots__ = ("ref", "key", "q", "scale")

    def __init__(self, y: Tensor, q: Tensor, scale: Tensor, on_freed) -> None:
        self.ref = weakref.ref(y, on_freed)
        self.key = _key(y)
        self.q, self.scale = q, scale


class ProducedQuantizations:
    # NOTE: entries are found by id() and then confirmed by their weak reference (an id is reused once
    # its tensor is freed, and the entry goes with the tensor): one dict lookup a consumer call, where
    # scanning a list of weak references cost ~1 us more per sibling group (bench/host/python_overhead.py).
    def __init__(self) -> None:
        self._by_id: dict[int, _Entry] = {}  # insertion order: the oldest first
        self.hits = 0  # lookups served (for tests and curiosity)

    def __len__(self) -> int:
        return len(self._by_id)

    def holds_any(self) -> bool:
        """Whether any entry is recorded: what a consumer asks on every call (cheaper than len())."""
        return bool(self._by_id)

    def remember(self, y: Tensor, q: Tensor, scale: Tensor) -> None:
        """Record that (q, scale) are ``y``'s int8 rows and per-row scales."""
        entries = self._by_id
        entries.pop(id(y), None)
        if len(entries) >= _CAPACITY:
            del entries[next(iter(entries))]
        entries[id(y)] = _Entry(y, q, scale, self._on_freed)

    def lookup(self, x: Tensor) -> Optional[tuple[Tensor, Tensor]]:
        """``x``'s recorded (q, scale), or None when ``x`` has none or was written since."""
        e = self._by_id.get(id(x))
        if e is None or e.ref() is not x or e.key != _key(x):
            return None
        self.hits += 1
        return e.q, e.scale

    def clear(self) -> None:
        self._by_id = {}

    def _on_freed(self, ref: weakref.ref) -> None:
        for key, e in self._by_id.items():
            if e.ref is ref:
                del self._by_id[key]
                return


# One table for the process: producers and consumers meet on the tensor itself.
PRODUCED = ProducedQuantizations()
