"""Sibling layers quantize a common input once under torch.compile too.

In eager mode, int8dit Linears that read the very same tensor (diffusers' to_q, to_k and to_v; Flux's
single-block proj_mlp beside them) quantize it once through the producers' table (produced.py), which
tracing cannot see: a compiled graph holds one ``int8dit::linear_layer`` per layer, each quantizing the
same input again (on Flux-dev's single blocks four passes over 4608 x 3072 where one would do).

``share_quantized_inputs`` rewrites a graph so that the ``linear_layer`` calls on one input (none with
a SmoothQuant divisor) become one ``int8dit::quantize_rows`` and a ``int8dit::gemm_layer`` each: the
same kernels as ``linear_layer`` runs, so the same bits. ``install_compile_pass`` adds it to
inductor's post-grad passes (``torch._inductor.config.post_grad_custom_pre_pass``, chained after a
pass already set there), which ``quantize_`` does where it shares sibling inputs.
"""
from __future__ import annotations

import operator
from typing import Optional

import torch

from . import ops  # noqa: F401  (registers the int8dit ops named below)

_LINEAR = torch.ops.int8dit.linear_layer.default
_QUANTIZE = torch.ops.int8dit.quantize_rows.default
_GEMM = torch.ops.int8dit.gemm_layer.default


def share_quantized_inputs(graph: torch.fx.Graph) -> int:
    """Rewrite ``graph`` in place (see the module docstring). Returns how many linear_layer calls now
    read a shared quantization."""
    groups: dict = {}
    for node in graph.nodes:
        if node.op == "call_function" and node.target is _LINEAR and len(node.args) >= 5 and node.args[4] is None:
            groups.setdefault(node.args[0], []).append(node)
    shared = 0
    for x, layers in groups.items():
        if len(layers) < 2:
            continue
        with graph.inserting_before(layers[0]):
            quantized = graph.call_function(_QUANTIZE, (x, None))
            q = graph.call_function(operator.getitem, (quantized, 0))
            scale = graph.call_function(operator.getitem, (quantized, 1))
        _set_fake_values(x, quantized, q, scale)
        for layer in layers:
            _, weight, weight_scale, bias, _ = layer.args[:5]
            out_dtype = _dtype_of(layer)
            if out_dtype is None:  # no metadata to take the output type from: leave this layer as it was
                continue
            with graph.inserting_before(layer):
                gemm = graph.call_function(_GEMM, (q, weight, scale, weight_scale, bias, out_dtype))
            # (only the output's value: the layer's other metadata, such as its eager input values, describe
            # linear_layer's arguments, which inductor would match against gemm_layer's schema)
            gemm.meta["val"] = layer.meta["val"]
            layer.replace_all_uses_with(gemm)
            graph.erase_node(layer)
            shared += 1
        if not q.users and not scale.users:  # no layer could take it after all
            for n in (scale, q, quantized):
                graph.erase_node(n)
    return shared


def _dtype_of(node: torch.fx.Node) -> Optional[torch.dtype]:
    return getattr(node.meta.get("val"), "dtype", None)


def _set_fake_values(x: torch.fx.Node, quantized: torch.fx.Node, q: torch.fx.Node, scale: torch.fx.Node) -> None:
    """The new nodes' metadata ("val"), as inductor's lowering reads it, from the fake implementation."""
    x_val = x.meta.get("val")
    mode = getattr(x_val, "fake_mode", None)
    if mode is None:
        return
    with mode:
        val = _QUANTIZE(x_val, None)
    quantized.meta["val"] = val
    q.meta["val"], scale.meta["val"] = val[0], val[1]


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
