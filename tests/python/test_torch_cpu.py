"""The PyTorch layer on CPU tensors (the C++ reference fallback): ops, Linear, quantize_, SmoothQuant,
torch.compile and save/load. Skips without PyTorch."""
import copy

import numpy as np
import pytest

from helpers import quantize_rows_numpy, torch_or_skip

torch = torch_or_skip()

import int8dit  # noqa: E402
from int8dit.torch import Linear, quantize_, quantize_weight  # noqa: E402


def cos(a, b):
    return torch.nn.functional.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0).item()


def test_weight_quantization_equals_the_library_bit_for_bit():
    w = torch.randn(96, 256) * torch.rand(96, 1) * 10
    w[3] = 0
    w[5, 7] = float("inf")
    q, scale = quantize_weight(w)
    q_ref, scale_ref = quantize_rows_numpy(w.numpy())
    np.testing.assert_array_equal(q.numpy(), q_ref)
    np.testing.assert_array_equal(scale.numpy(), scale_ref)


def test_quantize_rows_op_equals_numpy_semantics():
    x = torch.randn(2, 5, 64)
    q, scale = torch.ops.int8dit.quantize_rows(x, None)
    assert q.shape == x.shape and scale.shape == (2, 5)
    q_ref, s_ref = quantize_rows_numpy(x.reshape(-1, 64).numpy())
    np.testing.assert_array_equal(q.reshape(-1, 64).numpy(), q_ref)
    np.testing.assert_array_equal(scale.reshape(-1).numpy(), s_ref)


@pytest.mark.parametrize("shape", [(3, 8, 128), (5, 128), (1, 128)])  # 5 x 128 int8 rows: a padded scratch
def test_linear_is_quantize_then_gemm(shape):
    lin = torch.nn.Linear(128, 64)
    q = Linear.from_float(lin)
    x = torch.randn(*shape)
    qx, sx = torch.ops.int8dit.quantize_rows(x, None)
    expect = torch.ops.int8dit.gemm_w8a8(qx, q.weight, sx, q.weight_scale, q.bias, torch.float32)
    assert torch.equal(q(x), expect)
    assert cos(q(x), lin(x)) > 0.999


@pytest.mark.parametrize("m,k,ws", [(1, 16, 0), (7, 24, 0), (4608, 3072, 0), (333, 1536, 4096), (5, 8, 100)])
def test_linear_scratch_holds_rows_scales_and_workspace_aligned_and_apart(m, k, ws):
    from int8dit.torch.ops import _SCRATCH_ALIGN, _scratch_layout

    total, scales, workspace = _scratch_layout(m, k, ws)
    assert scales % _SCRATCH_ALIGN == 0 and workspace % _SCRATCH_ALIGN == 0
    assert scales >= m * k  # the int8 rows fit before the scales
    assert workspace >= scales + 4 * m  # the fp32 scales fit before the workspace
    assert total == workspace + ws


def test_raw_gemm_op_is_exact():
    a = torch.randint(-127, 128, (16, 64), dtype=torch.int8)
    b = torch.randint(-127, 128, (8, 64), dtype=torch.int8)
    acc = torch.ops.int8dit.gemm_w8a8(a, b, torch.empty(0), torch.empty(0), None, torch.int32)
    assert torch.equal(acc, a.int() @ b.int().T)


def test_bf16_inputs_give_bf16_outputs():
    lin = torch.nn.Linear(64, 32).to(torch.bfloat16)
    y = Linear.from_float(lin)(torch.randn(4, 64, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and y.shape == (4, 32)


def test_from_float_refuses_shapes_the_gemm_cannot_run():
    with pytest.raises(ValueError, match=r"in_features = 30 is not a multiple of 16"):
        Linear.from_float(torch.nn.Linear(30, 64))


@pytest.mark.parametrize("op", ["quantize_rows", "gemm_w8a8", "gemm_layer", "linear", "linear_layer",
                                "linear_group"])
def test_custom_ops_pass_opcheck(op):
    lin = Linear.from_float(torch.nn.Linear(64, 32))
    x = torch.randn(8, 64)
    qx, sx = torch.ops.int8dit.quantize_rows(x, None)
    args = {
        "quantize_rows": (x, None),
        "gemm_w8a8": (qx, lin.weight, sx, lin.weight_scale, lin.bias, torch.float32),
        "gemm_layer": (qx, lin.weight, sx, lin.weight_scale, lin.bias, torch.float32),
        "linear": (x, lin.weight, lin.weight_scale, lin.bias, None),
        "linear_layer": (x, lin.weight, lin.weight_scale, lin.bias, None),
        "linear_group": (x, [lin.weight, lin.weight], [lin.weight_scale, lin.weight_scale], [lin.bias, None]),
    }[op]
    torch.library.opcheck(getattr(torch.ops.int8dit, op).default, args)


class TinyBlock(torch.nn.Module):
    """DiT-shaped names: an adaLN modulation, attention projections, an MLP, a narrow output."""

    def __init__(self, d=256):
        super().__init__()
        self.time_text_embed = torch.nn.Sequential(torch.nn.Linear(256, d))
        self.norm1 = torch.nn.Module()
        self.norm1.linear = torch.nn.Linear(d, 6 * d)
        self.to_q = torch.nn.Linear(d, d)
        self.ff = torch.nn.Sequential(torch.nn.Linear(d, 4 * d), torch.nn.GELU(), torch.nn.Linear(4 * d, d))
        self.proj_out = torch.nn.Linear(d, 64)

    def forward(self, x, t):
        mod = self.norm1.linear(torch.nn.functional.silu(self.time_text_embed(t)))[:, None, :]
        shift, scale = mod[..., :256], mod[..., 256:512]
        h = torch.nn.functional.layer_norm(x, (256,)) * (1 + scale) + shift
        h = h + self.ff(self.to_q(h))
        return self.proj_out(h)


def test_quantize_defaults_keep_embedders_and_narrow_layers_in_float():
    m = TinyBlock()
    report = quantize_(m)
    assert set(report.quantized) == {"norm1.linear", "to_q", "ff.0", "ff.2"}
    assert "time_text_embed.0" in report.skipped and "matched by exclude" in report.skipped["time_text_embed.0"]
    assert "min_features" in report.skipped["proj_out"]
    assert isinstance(m.ff[0], Linear) and type(m.proj_out) is torch.nn.Linear


def test_quantize_to_a_device_leaves_the_float_layers_as_they_were():
    """quantize_(device=...) quantizes a copy of each float weight there: a model sharing its float
    tensors with the quantized one (int8dit.bench.e2e's variants of FLUX.2-dev held in host memory)
    keeps them where and as they were, and the int8 layers are those quantize_ makes in place."""
    from int8dit.bench.e2e import shared_copy

    m = TinyBlock()
    before = m.ff[0].weight.detach().clone()
    streamed = shared_copy(m)
    assert streamed.ff[0].weight is m.ff[0].weight
    quantize_(streamed, device="cpu")
    assert type(m.ff[0]) is torch.nn.Linear and torch.equal(m.ff[0].weight, before)
    in_place = copy.deepcopy(m)
    quantize_(in_place)
    assert isinstance(streamed.ff[0], Linear) and streamed.ff[0].weight.device.type == "cpu"
    assert torch.equal(streamed.ff[0].weight, in_place.ff[0].weight)
    assert torch.equal(streamed.ff[0].weight_scale, in_place.ff[0].weight_scale)
    assert torch.equal(streamed.ff[0].bias, in_place.ff[0].bias)
    with pytest.raises(RuntimeError):
        Linear.from_float(torch.nn.Linear(256, 256), device="no_such_device")


def test_include_and_exclude_select_layers():
    m = TinyBlock()
    report = quantize_(m, include=["ff.*"], exclude=["ff.2"])
    assert report.quantized == ["ff.0"]


def test_documented_sd3_context_stream_exclusion_keeps_exactly_those_layers_in_bf16():
    """docs/python.md's example: SD3's text-stream linears by name, the image stream still quantized."""
    from int8dit.torch import DIT_DEFAULT_EXCLUDE

    def lin():
        return torch.nn.Linear(256, 256)

    attn = torch.nn.Module()
    for name in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"):
        setattr(attn, name, lin())
    attn.to_out = torch.nn.ModuleList([lin()])
    block = torch.nn.Module()
    block.attn = attn
    for ff in ("ff", "ff_context"):
        mlp = torch.nn.Module()
        mlp.net = torch.nn.ModuleList([torch.nn.Module(), torch.nn.GELU(), lin()])
        mlp.net[0].proj = lin()
        setattr(block, ff, mlp)
    model = torch.nn.Module()
    model.transformer_blocks = torch.nn.ModuleList([block])

    report = quantize_(model, exclude=DIT_DEFAULT_EXCLUDE + ("*.add_*_proj", "*.to_add_out", "*.ff_context.*"))
    prefix = "transformer_blocks.0."
    assert sorted(report.quantized) == sorted(prefix + n for n in (
        "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.net.0.proj", "ff.net.2"))
    assert sorted(report.skipped) == sorted(prefix + n for n in (
        "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out", "ff_context.net.0.proj",
        "ff_context.net.2"))


def test_quantized_model_compiles_fullgraph_and_matches_eager():
    torch.manual_seed(0)
    m = TinyBlock()
    x, t = torch.randn(2, 16, 256), torch.randn(2, 256)
    ref = m(x, t)
    quantize_(m)
    eager = m(x, t)
    with torch.no_grad():
        compiled = torch.compile(m, fullgraph=True)(x, t)
    # Inductor fuses the norm and modulation differently, so the quantized inputs may differ by a rounding.
    assert cos(eager, compiled) > 0.9999
    assert cos(eager, ref) > 0.99


def test_input_gradients_flow_through_the_dequantized_weight_eager_and_compiled():
    torch.manual_seed(0)
    lin = Linear.from_float(torch.nn.Linear(64, 32), smooth=torch.rand(64) + 0.5)
    w = lin.dequantized_weight()
    for fn in (lin, torch.compile(lin, fullgraph=True)):
        x = torch.randn(5, 64, requires_grad=True)
        grad = torch.randn(5, 32)
        fn(x).backward(grad)
        torch.testing.assert_close(x.grad, grad @ w, rtol=1e-5, atol=1e-5)


def test_the_linear_op_has_no_python_autograd_kernel_on_its_inference_path():
    # Calls that need no gradient must reach linear_impl through the dispatcher's C++ fallback alone:
    # a Python autograd kernel (what @custom_op registers) cost 72-91 us a layer on the H200's host.
    assert not torch._C._dispatch_has_kernel_for_dispatch_key("int8dit::linear", "Autograd")
    assert torch._C._dispatch_has_kernel_for_dispatch_key("int8dit::linear", "CPU")
    assert torch._C._dispatch_has_kernel_for_dispatch_key("int8dit::linear", "CUDA")


def test_smoothquant_reduces_error_with_outlier_channels():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.GELU(), torch.nn.Linear(512, 256))

    def batch():
        x = torch.randn(64, 512)
        x[:, [3, 77, 300]] *= 80.0  # outlier channels, as DiT activations have
        return x

    calib, test = [batch() for _ in range(4)], batch()
    ref = model(test)
    plain, smooth = copy.deepcopy(model), copy.deepcopy(model)
    quantize_(plain, min_features=0)
    report = int8dit.calibrate(smooth, calib, alpha=0.5, min_features=0)
    assert len(report.quantized) == 2 and smooth[0].smooth is not None
    err = lambda m: ((m(test) - ref).norm() / ref.norm()).item()  # noqa: E731
    assert err(smooth) < 0.7 * err(plain)


def test_save_and_load_round_trip(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    torch.manual_seed(0)
    m = TinyBlock()
    int8dit.calibrate(m, [(torch.randn(2, 16, 256), torch.randn(2, 256))])
    path = str(tmp_path / "q.safetensors")
    int8dit.save_quantized(m, path)
    with torch.device("meta"):
        skeleton = TinyBlock()
    int8dit.load_quantized(skeleton, path)
    x, t = torch.randn(2, 16, 256), torch.randn(2, 256)
    assert torch.equal(m(x, t), skeleton(x, t))
    assert skeleton.ff[0].smooth is not None


def test_loading_into_another_architecture_fails_clearly(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    from int8dit.serialization import FormatError

    m = TinyBlock()
    quantize_(m)
    path = str(tmp_path / "q.safetensors")
    int8dit.save_quantized(m, path)
    other = TinyBlock()
    other.ff[0] = torch.nn.Linear(256, 512)
    with pytest.raises(FormatError, match=r"layer 'ff.0' is 256 -> 1024 in the file but 256 -> 512"):
        int8dit.load_quantized(other, path)
    with pytest.raises(FormatError, match=r"not an int8dit checkpoint"):
        from safetensors.torch import save_file

        plain = str(tmp_path / "plain.safetensors")
        save_file({"w": torch.zeros(2)}, plain)
        int8dit.load_quantized(TinyBlock(), plain)


def test_fused_layernorm_modulation_feeds_several_layers():
    from int8dit.torch import modulated_linears

    torch.manual_seed(0)
    b, t, k = 2, 24, 256
    bf16 = torch.bfloat16  # the fused producers read bf16/fp16
    x = (torch.randn(b, t, k) * 3 + 1).to(bf16)
    shift, scale = (torch.randn(b, k) * 0.5).to(bf16), (torch.randn(b, k) * 0.5).to(bf16)
    lins = [torch.nn.Linear(k, 128).to(bf16), torch.nn.Linear(k, 64).to(bf16)]
    qlins = [Linear.from_float(lin) for lin in lins]
    h = torch.nn.functional.layer_norm(x, (k,), eps=1e-6) * (1 + scale[:, None]) + shift[:, None]
    fused = modulated_linears(x, shift, scale, qlins)
    for out, ql, lin in zip(fused, qlins, lins):
        assert out.shape == (b, t, lin.out_features)
        assert cos(out, ql(h)) > 0.9999  # the same quantized layer on the unfused input
        assert cos(out, lin(h)) > 0.999


def test_fused_op_passes_opcheck_and_refuses_mixed_smoothing():
    from int8dit.torch import modulated_linears

    x, shift, scale = (torch.randn(2, 8, 64, dtype=torch.bfloat16), torch.randn(2, 64, dtype=torch.bfloat16),
                       torch.randn(2, 64, dtype=torch.bfloat16))
    torch.library.opcheck(torch.ops.int8dit.layernorm_modulate_quantize.default, (x, shift, scale, 1e-6, None))
    a = Linear.from_float(torch.nn.Linear(64, 32), smooth=torch.rand(64) + 0.5)
    c = Linear.from_float(torch.nn.Linear(64, 32))
    with pytest.raises(ValueError, match=r"different SmoothQuant divisors"):
        modulated_linears(x, shift, scale, [a, c])
