"""Sibling layers quantize a common input once under torch.compile too.

In eager mode, int8dit Linears that read the very same tensor (diffusers' to_q, to_k and to_v; Flux's
single-block proj_mlp beside them) quantize it once through the producers' table (produced.py), which
tracing cannot see: a compiled graph holds one ``int8dit::linear_layer`` per layer, each quantizing the
same input again (on Flux-dev's single blocks four passes over 4608 x 3072 where one would do).

``share_quantized_inputs`` rewrites a graph so that the ``linear_layer`` calls on one input (none with
a SmoothQuant divisor) become one ``int8dit::linear_group`` call: the first layer's quantization and
GEMM, then the others' GEMMs on its int8 rows. The same kernels as before, so the same bits, and one
op call where there were several (host time, which the narrower compiled DiTs are bound by).
``install_compile_pass`` adds it to inductor's post-grad passes
(``torch._inductor.config.post_grad_custom_pre_pass``, chained after a pass already set there), which
``quantize_`` does where it shares sibling inputs; it then holds for the process, every compiled graph
(``uninstall_compile_pass`` takes it out).
"""
from __future__ import annotations

import operator
import torch

from . import ops  # registers the int8dit ops named below; its file is part of the pass's cache key

_LINEAR = torch.ops.int8dit.linear_layer.default
_GROUP = torch.ops.int8dit.linear_group.default


def share_quantized_inputs(graph: torch.fx.Graph) -> int:
    """Rewrite ``graph`` in place (see the module docstring). Returns how many linear_layer calls now
    read a quantization another made."""
    groups: dict = {}
    for node in graph.nodes:
        if (node.op == "call_function" and node.target is _LINEAR and len(node.args) >= 5 and node.args[4] is None
                and "val" in node.meta):
            groups.setdefault(node.args[0], []).append(node)
    order = {n: i for i, n in enumerate(graph.nodes)}
    shared = 0
    for x, layers in groups.items():
        if len(layers) < 2:
            continue
        # NOTE: the group goes at the first layer's place, so every layer's weights must be defined there:
        # an int8dit Linear's buffers are graph inputs or constants, defined before any layer.
        first = order[layers[0]]
        if any(isinstance(a, torch.fx.Node) and order[a] > first for layer in layers[1:] for a in layer.args[1:4]):
            continue
        # NOTE: the input as the first layer reads it now, not the key: a group rewritten before this one
        # may have replaced that node (y = a(x) and z = b(x), then c(y) and d(y)). The later layers'
        # outputs are made here too, so they live from the first layer on.
        with graph.inserting_before(layers[0]):
            group = graph.call_function(_GROUP, (layers[0].args[0], [n.args[1] for n in layers],
                                                 [n.args[2] for n in layers], [n.args[3] for n in layers]))
            outputs = [graph.call_function(operator.getitem, (group, i)) for i in range(len(layers))]
        group.meta["val"] = [layer.meta["val"] for layer in layers]
        for layer, out in zip(layers, outputs):
            # (only the output's value: the layer's other metadata, such as its eager input values, describe
            # linear_layer's arguments, which inductor would match against another schema)
            out.meta["val"] = layer.meta["val"]
            layer.replace_all_uses_with(out)
            graph.erase_node(layer)
        shared += len(layers) - 1
    return shared


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
            # (this file and ops.py, whose op schemas the cached code calls)
            mine = get_hash_for_files((__file__, ops.__file__))
            if self.previous is None:
                return mine
            # A previous pass that is no CustomGraphPass, or whose uuid is None, opts out of inductor's FX
            # graph cache: so does the chain, or a change in it would be served stale code.
            before = self.previous.uuid() if isinstance(self.previous, CustomGraphPass) else None
            return None if before is None else (before, mine)


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


def uninstall_compile_pass() -> None:
    """Put back the post-grad pass that was set before install_compile_pass (None if none was)."""
    if CustomGraphPass is None:
        return
    from torch._inductor import config

    current = config.post_grad_custom_pre_pass
    if isinstance(current, _SharePass):
        config.post_grad_custom_pre_pass = current.previous
