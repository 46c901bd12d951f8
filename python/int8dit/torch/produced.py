"""Activations that their producer already quantized.

A fused producer (int8dit.torch.adanorm: LayerNorm + adaLN modulation) writes its bf16 output ``y``
and, in the same kernel, ``y``'s int8 rows and per-token scales. It records them here; an int8dit
Linear called on that very tensor (same object, not written since, same stream) then runs only its
GEMM, whichever module it belongs to (attention's q/k/v, Flux's single-block MLP beside them).

Entries are held weakly, as in shared_input.py: an entry goes when its tensor is freed, so no
activation outlives its forward because of this table and a new tensor at a recycled address is
never mistaken for the old one. At most ``_CAPACITY`` entries are kept (a joint block produces the
image and the text stream's before either is consumed); the oldest goes first.

The quantization recorded is that of the producer's fp32 value before its rounding to bf16, so a
consumer reads int8 values that may differ by one from quantizing ``y`` itself (DESIGN.md's
tolerance for the fused producers). Only layers without a SmoothQuant divisor take them, since the
producer divided by none.
"""
from __future__ import annotations

import weakref
from typing import Optional

from torch import Tensor

from .ops import _stream

_CAPACITY = 4


class _Entry:
    __slots__ = ("ref", "key", "q", "scale")

    def __init__(self, y: Tensor, q: Tensor, scale: Tensor, on_freed) -> None:
        self.ref = weakref.ref(y, on_freed)
        self.key = (y._version, _stream(y))
        self.q, self.scale = q, scale


class ProducedQuantizations:
    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self.hits = 0  # lookups served (for tests and curiosity)

    def __len__(self) -> int:
        return len(self._entries)

    def holds_any(self) -> bool:
        """Whether any entry is recorded: what a consumer asks on every call (cheaper than len())."""
        return bool(self._entries)

    def remember(self, y: Tensor, q: Tensor, scale: Tensor) -> None:
        """Record that (q, scale) are ``y``'s int8 rows and per-row scales."""
        self._entries = [e for e in self._entries if e.ref() is not y][-(_CAPACITY - 1):]
        self._entries.append(_Entry(y, q, scale, self._on_freed))

    def lookup(self, x: Tensor) -> Optional[tuple[Tensor, Tensor]]:
        """``x``'s recorded (q, scale), or None when ``x`` has none or was written since."""
        for e in self._entries:
            if e.ref() is x:
                if e.key != (x._version, _stream(x)):
                    return None
                self.hits += 1
                return e.q, e.scale
        return None

    def clear(self) -> None:
        self._entries = []

    def _on_freed(self, ref: weakref.ref) -> None:
        self._entries = [e for e in self._entries if e.ref is not ref]


# One table for the process: producers and consumers meet on the tensor itself.
PRODUCED = ProducedQuantizations()
