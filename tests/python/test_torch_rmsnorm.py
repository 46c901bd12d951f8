"""int8dit::rmsnorm_quantize on CPU tensors (the C++ reference): RMSNorm with its weight, then per-token
quantization, against PyTorch's RMSNorm and quantize_rows; its registration and its refusals."""
import pytest

from helpers import assert_close_quantization, torch_or_skip

torch = torch_or_skip()

from int8dit.torch import Linear, quantize_rows, rmsnorm_quantize  # noqa: E402


def unfused(x, weight, eps, smooth=None):
    """What the op computes: RMSNorm in fp32 with the weight in x's dtype, quantized from fp32."""
    xf = x.float()
    v = xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + eps) * weight.to(x.dtype).float()
    return quantize_rows(v, smooth)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("with_smooth", [False, True])
def test_matches_pytorch_rmsnorm_then_quantization(dtype, with_smooth):
    torch.manual_seed(0)
    x = torch.randn(3, 7, 96, dtype=dtype) * 3
    weight = torch.rand(96) + 0.5  # fp32, as some models keep it: rounded to x's dtype by the op
    smooth = torch.rand(96) + 0.5 if with_smooth else None
    q, scale = rmsnorm_quantize(x, weight, 1e-6, smooth)
    assert q.shape == (3, 7, 96)
    assert_close_quantization(q, scale, *unfused(x, weight, 1e-6, smooth))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_with_output_also_writes_the_normalized_rows_rounded_once(dtype):
    from int8dit.torch.fused import rmsnorm_quantize_with_output

    torch.manual_seed(2)
    x = torch.randn(2, 9, 96, dtype=dtype) * 3
    weight = torch.rand(96, dtype=dtype) + 0.5
    q, scale, y = rmsnorm_quantize_with_output(x, weight, 1e-6)
    q2, scale2 = rmsnorm_quantize(x, weight, 1e-6)
    assert torch.equal(q, q2) and torch.equal(scale, scale2)  # the same rows as without the output
    xd = x.double()
    want = (xd * torch.rsqrt(xd.square().mean(-1, keepdim=True) + 1e-6) * weight.double()).float().to(dtype)
    assert y.shape == x.shape and y.dtype == dtype and y.is_contiguous()
    assert torch.equal(y, want)
    assert rmsnorm_quantize_with_output(x, weight, 1e-6, want_y=False)[2] is None


def test_a_weight_per_sample_gives_each_samples_rows_what_its_own_call_gives():
    from int8dit.torch.fused import rmsnorm_quantize_with_output

    torch.manual_seed(3)
    # a strided x (the first 96 of 128 features), as the rows a block hands its norm may be
    x = (torch.randn(3, 5, 128, dtype=torch.bfloat16) * 3)[..., :96]
    weights = torch.rand(3, 96) + 0.5
    smooth = torch.rand(96) + 0.5
    q, scale, y = rmsnorm_quantize_with_output(x, weights, 1e-6, smooth)
    assert q.shape == (3, 5, 96) and scale.shape == (3, 5) and y.shape == (3, 5, 96)
    for b in range(3):
        qb, sb, yb = rmsnorm_quantize_with_output(x[b], weights[b], 1e-6, smooth)
        assert torch.equal(q[b], qb) and torch.equal(scale[b], sb) and torch.equal(y[b], yb)
    # a weight row per leading index only: other shapes are refused, naming what it takes
    for bad in (torch.rand(2, 96), torch.rand(3, 95), torch.rand(1, 3, 96)):
        with pytest.raises(ValueError, match=r"a row of them per leading index of x \(3, 96\)"):
            rmsnorm_quantize_with_output(x, bad, 1e-6)


def test_a_linear_reads_the_rows():
    torch.manual_seed(1)
    x = torch.randn(5, 64, dtype=torch.bfloat16)
    weight = torch.rand(64, dtype=torch.bfloat16) + 0.5
    lin = Linear.from_float(torch.nn.Linear(64, 32).to(torch.bfloat16))
    q, scale = rmsnorm_quantize(x, weight, 1e-6)
    y = lin.forward_quantized(q, scale)
    normed = (x.float() * torch.rsqrt(x.float().square().mean(-1, keepdim=True) + 1e-6) * weight.float()).to(x.dtype)
    ref = lin(normed)
    assert torch.nn.functional.cosine_similarity(y.float().flatten(), ref.float().flatten(), dim=0) > 0.999


def test_opcheck_and_a_compiled_call():
    x = torch.randn(4, 64, dtype=torch.bfloat16)
    weight = torch.rand(64, dtype=torch.bfloat16) + 0.5
    torch.library.opcheck(torch.ops.int8dit.rmsnorm_quantize.default, (x, weight, 1e-6, None))
    compiled = torch.compile(lambda t: rmsnorm_quantize(t, weight, 1e-6), fullgraph=True, backend="aot_eager")
    q, s = compiled(x)
    q2, s2 = rmsnorm_quantize(x, weight, 1e-6)
    assert torch.equal(q, q2) and torch.equal(s, s2)


@pytest.mark.parametrize("x,weight,says", [
    (torch.randn(4, 64), torch.ones(64), "x is torch.float32; it must be bfloat16 or float16"),
    (torch.randn(4, 64, dtype=torch.bfloat16), torch.ones(32), r"weight is \(32,\) on cpu; it takes one value per "
                                                                r"feature \(64,\)"),
])
def test_bad_inputs_are_refused_with_the_reason(x, weight, says):
    with pytest.raises(ValueError, match=says):
        rmsnorm_quantize(x, weight, 1e-6)
