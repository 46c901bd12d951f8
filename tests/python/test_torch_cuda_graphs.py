"""int8dit.torch.use_cuda_graphs on the CPU: which calls replay a graph and which run eagerly, what a
replay returns. A CPU stand-in for the graph (the forward run again on the captured argument copies,
its results written into the captured outputs) keeps a replay's semantics: the graph reads the copies
it was captured on and writes the same output tensors every time. The real capture runs in
test_torch_gpu.py. Skips without PyTorch."""
from collections import namedtuple
from dataclasses import dataclass

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.torch.cuda_graphs import (GraphedForward, cuda_graphs_of, stop_cuda_graphs,  # noqa: E402
                                       use_cuda_graphs)


def _write_into(dst, src):
    """Copy src's tensors into dst's, structure by structure (what a replay does to the outputs)."""
    if isinstance(dst, torch.Tensor):
        dst.copy_(src)
    elif isinstance(dst, dict):
        for k in dst:
            _write_into(dst[k], src[k])
    elif isinstance(dst, (tuple, list)):
        for d, s in zip(dst, src):
            _write_into(d, s)


class _CpuGraph:
    def __init__(self, run, out):
        self.run, self.out = run, out

    def replay(self):
        _write_into(self.out, self.run())


class CpuGraphedForward(GraphedForward):
    captures = 0

    def _on_device(self, t):
        return True

    def _capture(self, run):
        for _ in range(self.warmup):
            run()
        CpuGraphedForward.captures += 1
        out = run()
        return _CpuGraph(run, out), out


class Scale(torch.nn.Module):
    """y = x * w (+ b), with a few argument kinds a diffusers forward takes."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(3.0))
        self.calls = 0

    def forward(self, x, bias=None, return_tuple=False, extra=None):
        self.calls += 1
        y = x * self.w + (bias if bias is not None else 0)
        if extra is not None:
            y = y + extra["shift"]
        return (y,) if return_tuple else y


def graphed(module, **kw):
    return use_cuda_graphs(module, _forward_class=CpuGraphedForward, **kw)


@torch.no_grad()
def test_one_signature_captures_once_and_replays_on_the_new_values():
    m = graphed(Scale())
    x1, x2 = torch.randn(4, 8), torch.randn(4, 8)
    y1 = m(x1)
    y2 = m(x2)
    assert torch.equal(y1, x1 * 3) and torch.equal(y2, x2 * 3)
    g = cuda_graphs_of(m)
    assert len(g.graphs) == 1 and g.replays == 2 and g.eager_calls == 0
    assert m.calls == 2 + 1 + 2  # two warm-up runs, the capture, one rerun a replay (the stand-in's)
    assert not torch.equal(y1, y2)  # the first result was a copy: the second replay did not overwrite it


@torch.no_grad()
def test_a_new_shape_stride_dtype_or_value_is_a_new_signature():
    m = graphed(Scale(), max_graphs=8)
    x = torch.randn(4, 8)
    m(x)
    m(torch.randn(5, 8))                       # shape
    m(torch.randn(8, 4).t())                   # strides
    m(x.double())                              # dtype
    m(x, return_tuple=True)                    # a keyword's value
    m(x, bias=torch.ones(8))                   # a tensor where there was None
    assert len(cuda_graphs_of(m).graphs) == 6
    out = m(x, return_tuple=True)
    assert isinstance(out, tuple) and torch.equal(out[0], x * 3)
    assert len(cuda_graphs_of(m).graphs) == 6


@torch.no_grad()
def test_nested_arguments_are_copied_into_the_graph_and_outputs_keep_their_types():
    m = graphed(Scale())
    x = torch.randn(2, 3)
    for shift in (1.0, -2.0):
        y = m(x, extra={"shift": torch.full((3,), shift)})
        assert torch.equal(y, x * 3 + shift)
    assert len(cuda_graphs_of(m).graphs) == 1 and cuda_graphs_of(m).replays == 2

    Pair = namedtuple("Pair", "a b")

    @dataclass
    class Output(dict):  # diffusers' BaseOutput is a dict and a dataclass
        sample: torch.Tensor

        def __post_init__(self):
            self["sample"] = self.sample

    class Multi(torch.nn.Module):
        def forward(self, x):
            return Pair(x + 1, [x * 2]), Output(sample=x - 1), {0: x * 3}

    g = graphed(Multi())
    for _ in range(2):
        x = torch.randn(3)
        pair, out, by_index = g(x)
        assert type(pair) is Pair and torch.equal(pair.a, x + 1) and torch.equal(pair.b[0], x * 2)
        assert torch.equal(by_index[0], x * 3)
        assert type(out) is Output and torch.equal(out.sample, x - 1) and torch.equal(out["sample"], x - 1)


@torch.no_grad()
def test_without_clone_outputs_a_replay_returns_the_captured_tensors():
    m = graphed(Scale(), clone_outputs=False)
    a = m(torch.ones(2))
    b = m(torch.full((2,), 2.0))
    assert a is b and torch.equal(a, torch.full((2,), 6.0))  # the next call overwrote the first result


def test_calls_a_graph_cannot_serve_run_eagerly_with_the_same_results():
    class One:  # an argument of a kind no signature takes
        def __radd__(self, t):
            return t + 1

    m = graphed(Scale())
    x = torch.randn(3)
    with torch.enable_grad():
        y = m(x)  # autograd on: a graph captures inference only
    assert y.requires_grad and torch.equal(y.detach(), x * 3)
    with torch.no_grad():
        assert torch.equal(m(x, bias=One()), x * 3 + 1)
        assert torch.equal(m(x, extra={"shift": One()}), x * 3 + 1)  # nested too
    g = cuda_graphs_of(m)
    assert g.eager_calls == 3 and not g.graphs


@torch.no_grad()
def test_arguments_of_other_kinds_and_cpu_tensors_for_the_real_class_run_eagerly():
    class Takes(torch.nn.Module):
        def forward(self, x, fn=None):
            return fn(x) if fn else x + 1

    m = graphed(Takes())
    assert torch.equal(m(torch.zeros(2), fn=lambda t: t - 1), -torch.ones(2))
    assert cuda_graphs_of(m).eager_calls == 1 and not cuda_graphs_of(m).graphs
    real = use_cuda_graphs(Takes())  # the real class: a CPU tensor is not capturable, so nothing is captured
    assert torch.equal(real(torch.zeros(2)), torch.ones(2))
    assert cuda_graphs_of(real).eager_calls == 1 and not cuda_graphs_of(real).graphs


@torch.no_grad()
def test_max_graphs_then_eager_with_one_warning():
    m = graphed(Scale(), max_graphs=2)
    m(torch.randn(1))
    m(torch.randn(2))
    with pytest.warns(UserWarning, match="max_graphs"):
        y = m(torch.ones(3))
    assert torch.equal(y, torch.full((3,), 3.0))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m(torch.ones(4))  # warned once
    g = cuda_graphs_of(m)
    assert len(g.graphs) == 2 and g.eager_calls == 2


@torch.no_grad()
def test_a_failed_capture_warns_once_and_leaves_that_signature_eager():
    class Fails(CpuGraphedForward):
        def _capture(self, run):
            raise RuntimeError("operation not permitted when stream is capturing")

    m = use_cuda_graphs(Scale(), _forward_class=Fails)
    with pytest.warns(UserWarning, match="could not be captured.*not permitted"):
        assert torch.equal(m(torch.ones(2)), torch.full((2,), 3.0))
    assert torch.equal(m(torch.ones(2)), torch.full((2,), 3.0))  # not tried again
    g = cuda_graphs_of(m)
    assert g.eager_calls == 2 and len(g.failed) == 1 and not g.graphs


def test_install_once_keep_the_module_and_undo():
    m = Scale()
    seen = []
    m.register_forward_hook(lambda mod, args, out: seen.append(out))
    assert graphed(m) is m and graphed(m) is m
    first = cuda_graphs_of(m)
    use_cuda_graphs(m)
    assert cuda_graphs_of(m) is first  # a second call changes nothing
    with torch.no_grad():
        m(torch.ones(2))
    assert len(seen) == 1 and m.w.item() == 3.0  # hooks and attributes as before
    assert stop_cuda_graphs(m) is m and cuda_graphs_of(m) is None
    with torch.no_grad():
        assert torch.equal(m(torch.ones(2)), torch.full((2,), 3.0))
    assert stop_cuda_graphs(m) is m  # nothing to undo


def test_bad_settings_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="max_graphs .0. and warmup .2. must be >= 1"):
        use_cuda_graphs(Scale(), max_graphs=0)
    with pytest.raises(ValueError, match="warmup .0."):
        use_cuda_graphs(Scale(), warmup=0)


@torch.no_grad()
def test_quantized_diffusers_transformers_go_through_as_a_pipeline_calls_them():
    # The argument kinds and output classes of real forwards: DiT's (class labels, return_dict) and
    # PixArt's (a dict of Nones among the keywords), quantized, bf16 on the CPU; every step the same
    # shapes with new latents and timesteps, as a pipeline's loop makes them.
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")
    from test_torch_diffusers_fusions import DIT, PIXART, dit_inputs, pixart_inputs

    from int8dit.torch import quantize_

    for config, cls, inputs in ((DIT, diffusers.DiTTransformer2DModel, dit_inputs),
                                (PIXART, diffusers.PixArtTransformer2DModel, pixart_inputs)):
        torch.manual_seed(0)
        model = cls(**config).to(torch.bfloat16).eval()
        quantize_(model, min_features=64)
        steps = [inputs() for _ in range(3)]
        for s, t in zip(steps, (900, 500, 100)):
            s["timestep"] = torch.tensor([t, t])
        expect = [model(**s)[0] for s in steps]
        graphed(model)
        for s, e in zip(steps, expect):
            assert torch.equal(model(**s)[0], e)
        out = model(**dict(steps[0], return_dict=True))  # the output class, rebuilt around copies
        assert type(out).__name__ == "Transformer2DModelOutput" and torch.equal(out.sample, expect[0])
        g = cuda_graphs_of(model)
        assert len(g.graphs) == 2 and g.replays == 4 and g.eager_calls == 0, cls.__name__


def test_the_capture_warms_up_on_a_side_stream_then_captures_once(monkeypatch):
    # GraphedForward._capture against a stand-in torch.cuda that records the calls: torch.cuda.graph's
    # own requirement (warm-up on a side stream that waited for the current one, the current stream
    # waiting for it before the capture), and one run of the forward under the capture.
    from contextlib import contextmanager
    from types import SimpleNamespace

    from int8dit.torch import cuda_graphs

    events = []

    class Graph:
        def replay(self):
            events.append("replay")

    @contextmanager
    def on(_what, name):
        events.append(f"enter {name}")
        yield
        events.append(f"exit {name}")

    side, current = SimpleNamespace(name="side"), SimpleNamespace(name="current")
    side.wait_stream = lambda other: events.append(f"side waits for {other.name}")
    current.wait_stream = lambda other: events.append(f"current waits for {other.name}")
    fake_cuda = SimpleNamespace(Stream=lambda: side, current_stream=lambda: current, CUDAGraph=Graph,
                                stream=lambda s: on(s, f"{s.name} stream"), graph=lambda g: on(g, "capture"))
    monkeypatch.setattr(cuda_graphs, "torch", SimpleNamespace(cuda=fake_cuda))
    runs = []

    def run():
        runs.append(events[-1])
        return f"output {len(runs)}"

    graph, out = GraphedForward(run, max_graphs=1, warmup=2, clone_outputs=True)._capture(run)
    assert runs == ["enter side stream", "enter side stream", "enter capture"]
    assert out == "output 3" and isinstance(graph, Graph)
    assert events == ["side waits for current", "enter side stream", "exit side stream", "current waits for side",
                      "enter capture", "exit capture"]
