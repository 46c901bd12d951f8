"""The PyTorch ops refuse operands the C++ library cannot check (it takes pointers): short or mistyped
divisors, scales and biases, a weight narrower than the activation, tensors on another device. Each
refusal says what was wrong and what the op takes, and comes before anything is launched. CPU tensors;
skips without PyTorch."""
import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

import int8dit.torch  # noqa: E402,F401  (registers the ops)

ops = torch.ops.int8dit
X = torch.randn(4, 64)
A = torch.randint(-5, 5, (4, 64), dtype=torch.int8)
B = torch.randint(-5, 5, (8, 64), dtype=torch.int8)
ONES4, ONES8 = torch.ones(4), torch.ones(8)


@pytest.mark.parametrize("smooth,message", [
    (torch.ones(3),
     r"quantize_rows: smooth has 3 elements; it takes one SmoothQuant divisor per input feature \(64\)"),
    (torch.ones(64, dtype=torch.float64), r"smooth is torch.float64; it must be float32"),
    (torch.ones(128)[::2], r"smooth is a strided view: pass smooth.contiguous\(\)"),
])
def test_quantize_rows_refuses_a_divisor_it_would_read_past(smooth, message):
    with pytest.raises(ValueError, match=message):
        ops.quantize_rows(X, smooth)


def test_the_fused_producers_check_their_divisor_too():
    bf16 = X.to(torch.bfloat16)
    with pytest.raises(ValueError, match=r"gelu_quantize: smooth has 32 elements"):
        ops.gelu_quantize(bf16, torch.ones(32))
    x3 = bf16.reshape(1, 4, 64)
    shift = torch.zeros(1, 64, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"layernorm_modulate_quantize: smooth has 65 elements"):
        ops.layernorm_modulate_quantize(x3, shift, shift, 1e-6, torch.ones(65))


@pytest.mark.parametrize("args,message", [
    ((A, B[:, :32].contiguous(), ONES4, ONES8, None), r"b has shape \(8, 32\); it must be \[N, K\] with K = 64"),
    ((A, B, torch.ones(3), ONES8, None),
     r"scale_a has 3 elements; it takes 1 \(per tensor\) or one per row of a \(4\)"),
    ((A, B, ONES4, torch.ones(7), None),
     r"scale_b has 7 elements; it takes 1 \(per tensor\) or one per row of b \(8\)"),
    ((A, B, ONES4, ONES8, torch.ones(5)), r"bias has 5 elements; it takes one per output feature \(8\)"),
    ((A, B, ONES4, ONES8.double(), None), r"scale_b is torch.float64; it must be float32"),
    ((A.float(), B, ONES4, ONES8, None), r"a and b must be int8"),
])
def test_gemm_refuses_operands_that_do_not_fit(args, message):
    with pytest.raises(ValueError, match=message):
        ops.gemm_w8a8(*args, torch.bfloat16)


def test_gemm_scales_per_tensor_pass_and_int32_mode_needs_none():
    assert ops.gemm_w8a8(A, B, torch.ones(1), torch.ones(1), None, torch.bfloat16).shape == (4, 8)
    empty = torch.empty(0)
    assert ops.gemm_w8a8(A, B, empty, empty, None, torch.int32).shape == (4, 8)


@pytest.mark.parametrize("args,message", [
    ((X, B[:, :32].contiguous(), ONES8, None, None),
     r"linear: weight is torch.int8 \(8, 32\); it must be int8 \[N, K\] with K = 64"),
    ((X, B, torch.ones(9), None, None), r"weight_scale has 9 elements; it takes one per output feature \(8\)"),
    ((X, B, ONES8, torch.ones(4), None), r"bias has 4 elements"),
    ((X, B, ONES8, None, torch.ones(63)), r"linear: smooth has 63 elements"),
    ((X, B.t().contiguous().t(), ONES8, None, None), r"weight is not contiguous"),
])
def test_linear_refuses_a_weight_or_vector_that_does_not_fit(args, message):
    with pytest.raises(ValueError, match=message):
        ops.linear(*args)


def test_a_traced_call_is_refused_where_the_eager_one_is():
    # The fake implementation checks what the real one checks, so tracing fails with the same message
    # instead of succeeding and failing at run time.
    from torch._subclasses.fake_tensor import FakeTensorMode

    shift = scale = torch.zeros(2, 64, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"\[batch, tokens, features\]"):
        torch.ops.int8dit.layernorm_modulate_quantize(torch.zeros(5, 64, dtype=torch.bfloat16), shift, scale, 1e-6)
    with FakeTensorMode() as mode:
        x, s = mode.from_tensor(torch.zeros(5, 64, dtype=torch.bfloat16)), mode.from_tensor(shift)
        with pytest.raises(ValueError, match=r"\[batch, tokens, features\]"):
            torch.ops.int8dit.layernorm_modulate_quantize(x, s, s, 1e-6)
