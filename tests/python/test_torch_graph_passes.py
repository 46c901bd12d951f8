"""int8dit.torch.graph_passes: under torch.compile, int8dit Linears reading one input quantize it once.
The pass runs on the AOT (post-grad-like) graph through aot_autograd with the CPU reference, and once
through inductor itself (CPU code generation), installed as quantize_ installs it. Skips without
PyTorch."""
from helpers import torch_or_skip

torch = torch_or_skip()

from torch import nn  # noqa: E402

from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.graph_passes import (install_compile_pass, share_quantized_inputs,  # noqa: E402
                                        uninstall_compile_pass)

OPS = torch.ops.int8dit


class Block(nn.Module):
    """q, k and v of one tensor (siblings), a projection of another, a layer with a SmoothQuant divisor."""

    def __init__(self):
        super().__init__()
        self.to_q, self.to_k, self.to_v = nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 32)
        self.proj = nn.Linear(64, 64)

    def forward(self, x, c):
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        return q * k, v, self.proj(c)


def compile_with_pass(module, rewrite=True):
    """torch.compile through aot_autograd, the forward graph rewritten by the pass (as inductor's post-grad
    pass would), and the targets of the graph's calls recorded."""
    from torch._dynamo.backends.common import aot_autograd

    seen = {}

    def forward_compiler(gm, example_inputs):
        if rewrite:
            seen["shared"] = share_quantized_inputs(gm.graph)
            gm.graph.lint()
            gm.recompile()
        seen["targets"] = [n.target for n in gm.graph.nodes if n.op == "call_function"]
        return gm.forward

    return torch.compile(module, fullgraph=True, backend=aot_autograd(fw_compiler=forward_compiler)), seen


@torch.no_grad()
def test_siblings_share_one_quantization_in_a_compiled_graph_and_give_the_same_bits():
    torch.manual_seed(0)
    block = Block().to(torch.bfloat16)
    quantize_(block, exclude=(), min_features=0)
    x, c = torch.randn(2, 5, 64, dtype=torch.bfloat16), torch.randn(2, 3, 64, dtype=torch.bfloat16)
    eager = block(x, c)
    compiled, seen = compile_with_pass(block)
    got = compiled(x, c)
    assert seen["shared"] == 2  # k and v read q's rows
    targets = seen["targets"]
    assert targets.count(OPS.linear_group.default) == 1
    assert targets.count(OPS.linear_layer.default) == 1  # proj reads another input
    for g, e in zip(got, eager):
        assert torch.equal(g, e)


@torch.no_grad()
def test_layers_with_a_divisor_and_lone_layers_keep_their_own_quantization():
    torch.manual_seed(1)
    block = Block().to(torch.bfloat16)
    smooth = {"to_k": torch.rand(64) + 0.5}
    quantize_(block, exclude=(), min_features=0, smoothing=smooth)
    x, c = torch.randn(4, 64, dtype=torch.bfloat16), torch.randn(4, 64, dtype=torch.bfloat16)
    eager = block(x, c)
    compiled, seen = compile_with_pass(block)
    got = compiled(x, c)
    assert seen["shared"] == 1  # v reads q's rows; k divides by its own factors
    assert seen["targets"].count(OPS.linear_layer.default) == 2 and seen["targets"].count(OPS.linear_group.default) == 1
    for g, e in zip(got, eager):
        assert torch.equal(g, e)


def test_quantize_installs_the_pass_in_inductor_once_after_a_pass_already_there():
    from torch._inductor import config

    from int8dit.torch.graph_passes import _SharePass

    saved = config.post_grad_custom_pre_pass
    calls = []
    try:
        config.post_grad_custom_pre_pass = None
        quantize_(Block(), exclude=(), min_features=0)
        assert isinstance(config.post_grad_custom_pre_pass, _SharePass)
        config.post_grad_custom_pre_pass = lambda graph: calls.append(graph)  # someone else's pass
        assert install_compile_pass() and install_compile_pass()
        installed = config.post_grad_custom_pre_pass
        assert isinstance(installed, _SharePass) and not isinstance(installed.previous, _SharePass)
        installed(torch.fx.Graph())
        assert len(calls) == 1  # the earlier pass still runs, first
        assert installed.uuid() is None  # a plain callable opts out of the FX graph cache; the chain must too
        assert _SharePass().uuid() is not None
        uninstall_compile_pass()
        assert config.post_grad_custom_pre_pass is installed.previous
    finally:
        config.post_grad_custom_pre_pass = saved


def test_a_graph_without_int8dit_siblings_is_left_alone():
    def f(x):
        return torch.relu(x) + 1

    gm = torch.fx.symbolic_trace(f)
    before = str(gm.graph)
    assert share_quantized_inputs(gm.graph) == 0 and str(gm.graph) == before


@torch.no_grad()
def test_inductor_runs_the_pass_and_the_compiled_block_gives_the_same_bits(monkeypatch):
    # The real hook: inductor (CPU code generation here, ~15 s) calls the installed post-grad pass, and
    # the rewritten graph lowers (the new nodes carry the values inductor reads).
    import int8dit.torch.graph_passes as graph_passes
    from torch._inductor import config

    shared = []
    real = graph_passes.share_quantized_inputs
    monkeypatch.setattr(graph_passes, "share_quantized_inputs", lambda graph: shared.append(real(graph)) or shared[-1])
    saved = config.post_grad_custom_pre_pass
    try:
        torch.manual_seed(2)
        block = Block().to(torch.bfloat16)
        quantize_(block, exclude=(), min_features=0)
        x, c = torch.randn(2, 5, 64, dtype=torch.bfloat16), torch.randn(2, 3, 64, dtype=torch.bfloat16)
        eager = block(x, c)
        torch._dynamo.reset()
        with config.patch(fx_graph_cache=False):  # a cached graph would skip the passes
            got = torch.compile(block, fullgraph=True)(x, c)
    finally:
        config.post_grad_custom_pre_pass = saved
        torch._dynamo.reset()
    assert shared == [2]
    for g, e in zip(got, eager):
        assert torch.equal(g, e)


@torch.no_grad()
def test_a_group_whose_input_another_group_rewrote_compiles():
    # y = a(x) and z = b(x) share x; c(y) and d(y) share y, which the first rewrite replaced.
    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c, self.d = (nn.Linear(64, 64) for _ in range(4))

        def forward(self, x):
            y, z = self.a(x), self.b(x)
            return self.c(y), self.d(y), z

    torch.manual_seed(3)
    chain = Chain().to(torch.bfloat16)
    quantize_(chain, exclude=(), min_features=0)
    x = torch.randn(5, 64, dtype=torch.bfloat16)
    eager = chain(x)
    compiled, seen = compile_with_pass(chain)
    got = compiled(x)
    assert seen["shared"] == 2 and seen["targets"].count(OPS.linear_group.default) == 2
    for g, e in zip(got, eager):
        assert torch.equal(g, e)
