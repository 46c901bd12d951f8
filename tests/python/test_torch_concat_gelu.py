"""int8dit::concat_gelu_quantize on CPU tensors (the C++ reference): [a | GELU(h)] quantized per row,
against PyTorch's own concatenation and GELU; its registration (opcheck, the fake implementation under
torch.compile) and the errors it raises."""
import pytest

from helpers import assert_close_quantization, torch_or_skip

torch = torch_or_skip()

from int8dit.torch import concat_gelu_quantize, quantize_rows  # noqa: E402


def unfused(a, h, smooth=None):
    """What the op computes, through PyTorch and quantize_rows on fp32 rows (the reference takes fp32)."""
    row = torch.cat([a.float(), torch.nn.functional.gelu(h.float(), approximate="tanh")], dim=-1)
    return quantize_rows(row, smooth)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("with_smooth", [False, True])
def test_matches_pytorch_concatenation_of_gelu(dtype, with_smooth):
    torch.manual_seed(0)
    a = torch.randn(2, 5, 24, dtype=dtype) * 3
    h = torch.randn(2, 5, 40, dtype=dtype) * 3
    smooth = torch.rand(64) + 0.5 if with_smooth else None
    q, scale = concat_gelu_quantize(a, h, smooth)
    assert q.shape == (2, 5, 64)
    # PyTorch's fp32 GELU and the reference's (double, rounded once) may differ by an ulp: at most one step.
    assert_close_quantization(q, scale, *unfused(a, h, smooth))


def test_strided_inputs_are_read_as_their_rows():
    torch.manual_seed(1)
    base = torch.randn(6, 96, dtype=torch.bfloat16)
    a, h = base[:, 8:32], base[:, 40:88]  # views with row stride 96
    q, scale = concat_gelu_quantize(a, h)
    q2, scale2 = concat_gelu_quantize(a.contiguous(), h.contiguous())
    assert torch.equal(q, q2) and torch.equal(scale, scale2)


def test_opcheck_and_compiled_calls():
    a = torch.randn(3, 16, dtype=torch.bfloat16)
    h = torch.randn(3, 32, dtype=torch.bfloat16)
    torch.library.opcheck(torch.ops.int8dit.concat_gelu_quantize.default, (a, h, None))
    compiled = torch.compile(lambda a, h: concat_gelu_quantize(a, h), fullgraph=True, backend="aot_eager")
    q, scale = compiled(a, h)
    q2, scale2 = concat_gelu_quantize(a, h)
    assert torch.equal(q, q2) and torch.equal(scale, scale2)


@pytest.mark.parametrize("a_shape, h_shape, dtype_h, says", [
    ((3, 16), (4, 32), torch.bfloat16, "every dimension but the last"),
    ((3, 16), (3, 32), torch.float16, "in dtype"),
    ((3, 0), (3, 32), torch.bfloat16, "a has 0 and h 32 features"),
])
def test_mismatched_inputs_are_refused(a_shape, h_shape, dtype_h, says):
    a = torch.randn(*a_shape, dtype=torch.bfloat16)
    h = torch.randn(*h_shape, dtype=dtype_h)
    with pytest.raises(ValueError, match=says):
        concat_gelu_quantize(a, h)


def test_float32_inputs_and_a_short_divisor_are_refused():
    a, h = torch.randn(3, 16), torch.randn(3, 32)
    with pytest.raises(ValueError, match="bfloat16 or float16"):
        concat_gelu_quantize(a, h)
    with pytest.raises(ValueError, match="one SmoothQuant divisor per input feature \\(48\\)"):
        concat_gelu_quantize(a.bfloat16(), h.bfloat16(), torch.ones(32))
