"""Replay a module's forward from CUDA graphs: one graph per input signature, captured on first use.

An eager DiT forward is host-bound on the narrower models: each of its ~200-340 quantized layers is a
Python call and two or three kernel launches, and the GPU waits for them (DiT-XL/2 at 512, batch 8, on
the H200: 51.3 ms a forward eagerly, 14.0 ms replayed from a CUDA graph; docs/python.md, "What to
expect"). A diffusion pipeline calls its transformer with the same shapes at every step, so one
captured graph serves the whole loop::

    pipe = diffusers.DiTPipeline.from_pretrained(...).to("cuda")
    int8dit.quantize_(pipe.transformer)
    int8dit.torch.use_cuda_graphs(pipe.transformer)   # the forward now replays CUDA graphs
    images = pipe(...).images

What a call does: the tensors among its arguments (nested in tuples, lists and dicts too) and the
other arguments' values make its signature (shapes, strides, dtypes, devices; None, bools, numbers,
strings). The first call of a signature runs the forward ``warmup`` times on a side stream (first-use
costs: libraries' handles, int8dit's lazy set-up), then captures it on copies of the arguments'
tensors; every call of that signature copies its tensors into those copies, replays the graph and
returns a copy of the outputs (``clone_outputs=False``: the captured outputs themselves, which the
next call overwrites). The module keeps its attributes and hooks; ``stop_cuda_graphs`` frees the
graphs and restores the eager forward.

A call runs eagerly instead, with the same results, where a graph cannot serve it: autograd on
(capture inference only: call under ``torch.no_grad()`` or ``torch.inference_mode()``), an argument
tensor not on the GPU, an argument of another kind (an object, a callable), ``max_graphs`` signatures
already captured, or a capture that failed (the forward synchronized, read a tensor's value on the
host, ...: warned once, with the reason; the diffusers modules that copy a host tensor to the GPU in
every forward are rewritten first, see int8dit.torch.capturable). Numbers are part of a signature, so a forward called with a
new Python float each step (a timestep as a float, not a tensor) captures a graph per value until
``max_graphs`` and then runs eagerly: pass such values as tensors.

NOTE: the graph replays the kernels the capture recorded. A forward whose work depends on something
other than its arguments' shapes and the values above (a module attribute changed between calls, a
Python branch on the time of day) replays the capture's choice; so does one that changes its
parameters' storage (load new weights with ``copy_``, which the graph sees; never by replacing the
tensors). Not for concurrent calls from several threads.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from .capturable import make_capturable

_VALUE_TYPES = (type(None), bool, int, float, str, torch.dtype, torch.device)


class _NotCapturable(Exception):
    """An argument a graph cannot take (its reason in str())."""


def _signature(obj: Any, tensors: list, on_device: Callable[[Tensor], bool]) -> tuple:
    """The signature of an argument (nested tuples, lists, dicts), appending its tensors to `tensors`."""
    if isinstance(obj, Tensor):
        if not on_device(obj):
            raise _NotCapturable(f"a tensor on {obj.device}: a CUDA graph replays GPU work only")
        tensors.append(obj)
        return ("T", tuple(obj.shape), obj.stride(), obj.dtype, obj.device)
    if isinstance(obj, _VALUE_TYPES):
        return ("V", type(obj).__name__, obj)
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__, tuple(_signature(o, tensors, on_device) for o in obj))
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise _NotCapturable("a dict with keys that are not strings")
        return ("dict", tuple((k, _signature(obj[k], tensors, on_device)) for k in sorted(obj)))
    raise _NotCapturable(f"an argument of type {type(obj).__name__}")


def _rebuild(obj: Any, tensors: list, pos: list) -> Any:
    """`obj` with its tensors replaced, in _signature's order, by `tensors` (pos: [next index])."""
    if isinstance(obj, Tensor):
        pos[0] += 1
        return tensors[pos[0] - 1]
    if isinstance(obj, (tuple, list)):
        items = [_rebuild(o, tensors, pos) for o in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    if isinstance(obj, dict):
        return {k: _rebuild(obj[k], tensors, pos) for k in sorted(obj)}
    return obj


def _clone_outputs(out: Any) -> Any:
    """The outputs with every tensor copied: tensors in tuples, lists, dicts and diffusers' output
    classes (dicts that are dataclasses), rebuilt as their own type."""
    if isinstance(out, Tensor):
        return out.clone()
    if isinstance(out, (tuple, list)):
        items = [_clone_outputs(o) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else type(out)(items)
    if isinstance(out, dict):
        cloned = {k: _clone_outputs(v) for k, v in out.items()}
        # diffusers' outputs take their fields as keywords; a mapping with other keys, as a mapping
        return type(out)(**cloned) if all(isinstance(k, str) for k in cloned) else type(out)(cloned)
    return out


class _Captured:
    """One signature's graph: the arguments' tensors it reads and the outputs it writes."""

    def __init__(self, graph, static_tensors: list, static_out: Any):
        self.graph, self.static_tensors, self.static_out = graph, static_tensors, static_out


class GraphedForward:
    """A module's forward that replays CUDA graphs (use_cuda_graphs installs it as ``module.forward``)."""

    def __init__(self, forward: Callable, max_graphs: int, warmup: int, clone_outputs: bool):
        if max_graphs < 1 or warmup < 1:
            raise ValueError(f"use_cuda_graphs: max_graphs ({max_graphs}) and warmup ({warmup}) must be >= 1: "
                             "a graph is captured after the forward ran at least once")
        self.eager = forward
        self.max_graphs, self.warmup, self.clone_outputs = max_graphs, warmup, clone_outputs
        self.graphs: dict = {}
        self.failed: dict = {}  # signature -> why its capture failed (that signature runs eagerly)
        self.replays = 0
        self.eager_calls = 0
        self._warned_full = False

    # What a graph may read, and how one is captured: overridden by the CPU tests, which stand a replay in
    # by a rerun of the forward on the static tensors.
    def _on_device(self, t: Tensor) -> bool:
        return t.is_cuda

    def _capture(self, run: Callable[[], Any]):
        """(graph, outputs): `run` warmed up on a side stream (as torch.cuda.graph requires), then captured."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = run()
        return graph, out

    def __call__(self, *args, **kwargs):
        if torch.is_grad_enabled():
            return self._eager(args, kwargs)
        tensors: list = []
        try:
            key = _signature((args, kwargs), tensors, self._on_device)
        except _NotCapturable:
            return self._eager(args, kwargs)
        captured = self.graphs.get(key)
        if captured is None:
            if key in self.failed:
                return self._eager(args, kwargs)
            if len(self.graphs) >= self.max_graphs:
                if not self._warned_full:
                    warnings.warn(f"use_cuda_graphs: {self.max_graphs} signatures captured (max_graphs): calls of "
                                  "new signatures run eagerly. Pass values that change between calls as tensors, "
                                  "or raise max_graphs (each graph keeps its forward's activations).", stacklevel=2)
                    self._warned_full = True
                return self._eager(args, kwargs)
            static = [torch.empty_like(t).copy_(t) for t in tensors]
            static_args, static_kwargs = _rebuild((args, kwargs), static, [0])
            try:
                graph, out = self._capture(lambda: self.eager(*static_args, **static_kwargs))
            except Exception as e:  # noqa: BLE001 - any failure leaves this signature eager
                self.failed[key] = f"{type(e).__name__}: {e}"
                warnings.warn(f"use_cuda_graphs: the forward could not be captured for this signature, which runs "
                              f"eagerly from now on ({self.failed[key]})", stacklevel=2)
                return self._eager(args, kwargs)
            captured = self.graphs[key] = _Captured(graph, static, out)
        else:
            for dst, src in zip(captured.static_tensors, tensors):
                dst.copy_(src)
        captured.graph.replay()
        self.replays += 1
        return _clone_outputs(captured.static_out) if self.clone_outputs else captured.static_out

    def _eager(self, args, kwargs):
        self.eager_calls += 1
        return self.eager(*args, **kwargs)


def use_cuda_graphs(module: nn.Module, *, max_graphs: int = 4, warmup: int = 2, clone_outputs: bool = True,
                    _forward_class: type = GraphedForward) -> nn.Module:
    """Make ``module``'s forward replay CUDA graphs, one per input signature (this module's docstring says
    what a call does and when it runs eagerly instead). Returns the module, changed in place; calling it
    again on the same module changes nothing. ``stop_cuda_graphs(module)`` undoes it. The diffusers
    submodules that copy a host tensor to the GPU in every forward (Chroma's timestep embedding) get a
    forward that makes it on the GPU, with the same values (int8dit.torch.capturable); those stay."""
    if isinstance(module.__dict__.get("forward"), GraphedForward):
        return module
    make_capturable(module)
    module.forward = _forward_class(module.forward, max_graphs, warmup, clone_outputs)
    return module


def cuda_graphs_of(module: nn.Module) -> Optional[GraphedForward]:
    """The GraphedForward that use_cuda_graphs installed on ``module`` (its graphs, replay and eager-call
    counts, failed captures), or None."""
    forward = module.__dict__.get("forward")
    return forward if isinstance(forward, GraphedForward) else None


def stop_cuda_graphs(module: nn.Module) -> nn.Module:
    """Restore ``module``'s eager forward and drop its graphs (their memory returns to PyTorch's allocator
    once nothing else holds the outputs of clone_outputs=False). A module without graphs is returned as is."""
    if cuda_graphs_of(module) is not None:
        del module.__dict__["forward"]
    return module
