"""GELU fused into fc2's quantization (int8dit.torch.gelu_quantize, GeluMLP, quantize_'s fuse_gelu) on
CPU tensors, through the C++ reference. The modules below copy the structure of diffusers'
FeedForward(activation_fn="gelu-approximate") so that these tests need no diffusers; the GPU tests
run the real one where diffusers is installed. Skips without PyTorch."""
import numpy as np
import pytest

from helpers import quantize_rows_numpy, torch_or_skip

torch = torch_or_skip()

from torch import nn  # noqa: E402

from int8dit.torch import GeluMLP, Linear, fuse_gelu_mlps, quantize_  # noqa: E402

BF16 = torch.bfloat16


class GELU(nn.Module):  # diffusers.models.activations.GELU, as far as GeluMLP relies on it
    def __init__(self, dim_in, dim_out, approximate="none"):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)
        self.approximate = approximate

    def gelu(self, gate):
        return nn.functional.gelu(gate, approximate=self.approximate)

    def forward(self, x):
        return self.gelu(self.proj(x))


class FeedForward(nn.Module):  # diffusers.models.attention.FeedForward with a GELU activation
    def __init__(self, dim, inner, approximate="tanh", dropout=0.0, final_dropout=False):
        super().__init__()
        self.net = nn.ModuleList([GELU(dim, inner, approximate), nn.Dropout(dropout), nn.Linear(inner, dim)])
        if final_dropout:
            self.net.append(nn.Dropout(dropout))

    def forward(self, x, *args, **kwargs):
        for module in self.net:
            x = module(x)
        return x


class Block(nn.Module):
    def __init__(self, dim=128, inner=512, **ff_args):
        super().__init__()
        self.ff = FeedForward(dim, inner, **ff_args)
        self.ff_context = FeedForward(dim, inner, approximate="none")  # exact GELU: not fused

    def forward(self, x):
        return self.ff(x) + self.ff_context(x)


def gelu_tanh_numpy(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


def cos(a, b):
    return nn.functional.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0).item()


def test_gelu_quantize_op_quantizes_gelu_of_each_row():
    torch.manual_seed(0)
    x = (torch.randn(3, 7, 256) * 4).to(BF16)
    q, scale = torch.ops.int8dit.gelu_quantize(x, None)
    assert q.shape == x.shape and q.dtype == torch.int8 and scale.shape == (3, 7) and scale.dtype == torch.float32
    q_ref, s_ref = quantize_rows_numpy(gelu_tanh_numpy(x.float().reshape(-1, 256).numpy()))
    np.testing.assert_allclose(scale.reshape(-1).numpy(), s_ref, rtol=1e-5)
    diff = np.abs(q.reshape(-1, 256).numpy().astype(np.int32) - q_ref.astype(np.int32))
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-3


def test_gelu_quantize_divides_by_the_smoothing_factor():
    torch.manual_seed(1)
    x = (torch.randn(5, 128) * 3).to(BF16)
    smooth = torch.rand(128) + 0.5
    q, scale = torch.ops.int8dit.gelu_quantize(x, smooth)
    q_ref, s_ref = quantize_rows_numpy(gelu_tanh_numpy(x.float().numpy()).astype(np.float32), smooth.numpy())
    np.testing.assert_allclose(scale.numpy(), s_ref, rtol=1e-5)
    assert np.abs(q.numpy().astype(np.int32) - q_ref.astype(np.int32)).max() <= 1


def test_gelu_quantize_passes_opcheck_and_refuses_fp32_with_the_fix():
    torch.library.opcheck(torch.ops.int8dit.gelu_quantize.default, (torch.randn(4, 64, dtype=BF16), None))
    with pytest.raises(Exception, match=r"bf16 or fp16"):
        torch.ops.int8dit.gelu_quantize(torch.randn(4, 64), None)


def quantized_blocks(**ff_args):
    torch.manual_seed(2)
    fused = Block(**ff_args).to(BF16).eval()
    plain = Block(**ff_args).to(BF16).eval()
    plain.load_state_dict(fused.state_dict())
    reference = Block(**ff_args).to(BF16).eval()
    reference.load_state_dict(fused.state_dict())
    report = quantize_(fused, min_features=64)
    quantize_(plain, min_features=64, fuse_gelu=False)
    return fused, plain, reference, report


def test_quantize_fuses_the_tanh_gelu_feed_forward_only_and_keeps_its_state_dict():
    fused, plain, _, report = quantized_blocks()
    assert report.gelu_mlps == 1 and "1 GELU MLPs" in str(report)
    assert isinstance(fused.ff, GeluMLP) and type(fused.ff_context).__name__ == "FeedForward"
    assert isinstance(fused.ff.fc2, Linear) and isinstance(fused.ff.fc1, Linear)
    assert fused.state_dict().keys() == plain.state_dict().keys()
    assert fuse_gelu_mlps(fused) == 0  # already fused: nothing left to rewrite


def test_fused_mlp_matches_the_unfused_int8_path_and_the_float_model():
    fused, plain, reference, _ = quantized_blocks()
    x = (torch.randn(2, 40, 128) * 2).to(BF16)
    with torch.no_grad():
        out, unfused, want = fused.ff(x), plain.ff(x), reference.ff(x)
    assert out.shape == want.shape and out.dtype == BF16
    # The two int8 paths differ only where GELU's bf16 rounding (unfused) moves an int8 step.
    assert cos(out, unfused) > 0.9999
    assert cos(out, want) > 0.999


def test_fused_mlp_runs_the_modules_as_they_are_where_fusing_would_change_the_result():
    fused, plain, _, _ = quantized_blocks(dropout=0.5, final_dropout=True)
    x = torch.randn(2, 8, 128).to(BF16)
    fused.train()
    plain.train()
    torch.manual_seed(3)
    a = fused.ff(x)
    torch.manual_seed(3)
    b = plain.ff(x)
    assert torch.equal(a, b)  # training with dropout: the original modules, the same random mask
    fused.eval()
    fused32 = fused.ff.float()
    x32 = torch.randn(2, 8, 128)
    with torch.no_grad():
        manual = x32
        for m in fused32.net:
            manual = m(manual)
        assert torch.equal(fused32(x32), manual)  # fp32 activations: the kernel reads bf16/fp16 only


def test_fused_mlp_traces_fullgraph():
    fused, _, _, _ = quantized_blocks()
    x = torch.randn(2, 16, 128).to(BF16)
    with torch.no_grad():
        eager = fused.ff(x)
        compiled = torch.compile(fused.ff, fullgraph=True, backend="aot_eager")(x)
    assert torch.equal(eager, compiled)


def test_a_fused_mlp_saves_and_loads_into_a_plain_skeleton_fused_again(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    import int8dit

    fused, _, _, _ = quantized_blocks()
    path = str(tmp_path / "mlp.safetensors")
    int8dit.save_quantized(fused, path)
    skeleton = int8dit.load_quantized(Block().to(BF16).eval(), path)
    assert isinstance(skeleton.ff, GeluMLP) and type(skeleton.ff_context).__name__ == "FeedForward"
    x = torch.randn(2, 8, 128).to(BF16)
    with torch.no_grad():
        assert torch.equal(skeleton(x), fused(x))
