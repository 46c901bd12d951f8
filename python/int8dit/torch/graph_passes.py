"""Sibling layers quantize a common input once under torch.compile too.

In eager mode, int8dit Linears that read the very same tensor (diffusers' to_q, to_k and to_v; Flux's
single-block proj_mlp beside them) quantize it once through the producers' table (produced.py), which
tracing cannot see: a compiled graph holds one ``int8dit::linear_layer`` per layer, each quantizing the
same input again (on Flux-dev's single blocks four passes over 4608 x 3072 where one would do).

``share_quantized_inputs`` rewrites a graph so that of the ``linear_layer`` calls on one input (none
with a SmoothQuant divisor) the first becomes ``int8dit::linear_keeping_rows`` (the same call, which
also returns the int8 rows and scales it made) and the others ``int8dit::gemm_layer`` on those: the
same kernels as before, so the same bits, and no more op calls (host time) than before. ``install_compile_pass`` adds it to
inductor's post-grad passes (``torch._inductor.config.post_grad_custom_pre_pass``, chained after a
pass already set there), which ``quantize_`` does where it shares sibling inputs.
"""
from __future__ import annotations

import operator
from typing import Optional

import torch

from . import ops  # noqa: F401  (registers the int8dit ops named below)

_LINEAR = torch.ops.int8dit.linear_layer.default
_KEEPING = torch.ops.int8dit.linear_keeping_rows.default
_GEMM = torch.ops.int8dit.gemm_layer.default


def share_quantized_inputs(graph: torch.fx.Graph) -> int:
    """Rewrite ``graph`` in place (see the module docstring). Returns how many linear_layer calls now
    read a quantization another made."""
    groups: dict = {}
    for node in graph.nodes:
        if (node.op == "call_function" and node.target is _LINEAR and len(node.args) >= 5 and node.args[4] is None
                and _dtype_of(node) is not None):
            groups.setdefault(node.args[0], []).append(node)
    shared = 0
    for x, layers in groups.items():
        if len(layers) < 2:
            continue
        first = layers[0]
        with graph.inserting_before(first):
            kept = graph.call_function(_KEEPING, tuple(first.args[:5]))
            out, q, scale = (graph.call_function(operator.getitem, (kept, i)) for i in range(3))
        _set_fake_values(first, kept, (out, q, scale))
        first.replace_all_uses_with(out)
        graph.erase_node(first)
        for layer in layers[1:]:
            _, weight, weight_scale, bias, _ = layer.args[:5]
            with graph.inserting_before(layer):
                gemm = graph.call_function(_GEMM, (q, weight, scale, weight_scale, bias, _dtype_of(layer)))
            # (only the output's value: the layer's other metadata, such as its eager input values, describe
            # linear_layer's arguments, which inductor would match against gemm_layer's schema)
            gemm.meta["val"] = layer.meta["val"]
            layer.replace_all_uses_with(gemm)
            graph.erase_node(layer)
            shared += 1
    return shared


def _dtype_of(node: torch.fx.Node) -> Optional[torch.dtype]:
    return getattr(node.meta.get("val"), "dtype", None)


def _set_fake_values(first: torch.fx.Node, kept: torch.fx.Node, items) -> None:
    """The new nodes' metadata ("val"), as inductor's lowering reads it, from the op's fake implementation
    (where the graph carries fake values at all)."""
    vals = [a.meta.get("val") for a in first.args[:5] if isinstance(a, torch.fx.Node)]
    mode = getattr(vals[0] if vals else None, "fake_mode", None)
    if mode is None:
        return
    args = [a.meta["val"] if isinstance(a, torch.fx.Node) else a for a in first.args[:5]]
    with mode:
        val = _KEEPING(*args)
    kept.meta["val"] = val
    for item, v in zip(items, val):
        item.meta["val"] = v


try:  # inductor's pass type, with the identity its FX graph cache keys on
    from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files
except ImportError:  # an older PyTorch: install_compile_pass says so
    CustomGraphPass = None


if CustomGraphPass is not None:
    class _SharePass(CustomGraphPass):
        """share_quantized_inputs as an inductor post-grad pass, after ``previous`` where one was set."""

        def __init__(self, previous=None) -> None:
            self.previous = previous

        def __call__(self, graph: torch.fx.Graph) -> None:
            if self.previous is not None:
                self.previous(graph)
            share_quantized_inputs(graph)

        def uuid(self):
            mine = get_hash_for_files((__file__,))
            before = self.previous.uuid() if hasattr(self.previous, "uuid") else None
            return (before, mine) if self.previous is not None else mine


def install_compile_pass() -> bool:
    """Add share_quantized_inputs to inductor's post-grad passes, once per process. Returns whether it is
    installed (False on a PyTorch without custom post-grad passes)."""
    if CustomGraphPass is None:
        return False
    from torch._inductor import config

    current = config.post_grad_custom_pre_pass
    if isinstance(current, _SharePass):
        return True
    config.post_grad_custom_pre_pass = _SharePass(current)
    return True
