"""int8dit._C through numpy arrays: the CPU reference path and argument validation. Needs only numpy."""
import numpy as np
import pytest

import int8dit
from int8dit import _C

from helpers import quantize_rows_numpy


@pytest.mark.parametrize("rows,cols", [(1, 16), (7, 48), (65, 1024), (128, 4096)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_quantize_rows_matches_the_semantics_bit_for_bit(rng, rows, cols, dtype):
    x = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 50, size=(rows, 1))).astype(dtype)
    q, scale = int8dit.quantize_rows(x)
    q_ref, scale_ref = quantize_rows_numpy(x)
    np.testing.assert_array_equal(q, q_ref)
    np.testing.assert_array_equal(scale, scale_ref)
    assert np.abs(q).max() == 127  # every row's largest element maps to +-127


def test_quantize_rows_with_smoothing_divides_first(rng):
    x = rng.standard_normal((9, 64)).astype(np.float32)
    smooth = rng.uniform(0.25, 8.0, size=64).astype(np.float32)
    q, scale = int8dit.quantize_rows(x, smooth)
    q_ref, scale_ref = quantize_rows_numpy(x, smooth)
    np.testing.assert_array_equal(q, q_ref)
    np.testing.assert_array_equal(scale, scale_ref)


def test_zero_rows_give_zeros_and_nonfinite_rows_give_nan_scales(rng):
    x = rng.standard_normal((4, 32)).astype(np.float32)
    x[1] = 0
    x[2, 5] = np.nan
    x[3, 0] = np.inf
    q, scale = int8dit.quantize_rows(x)
    assert scale[1] == 0 and not q[1].any()
    assert np.isnan(scale[2]) and np.isnan(scale[3])
    assert np.isfinite(scale[0]) and scale[0] > 0


def test_quantize_rows_accepts_a_strided_view(rng):
    big = rng.standard_normal((6, 96)).astype(np.float32)
    view = big[:, 16:80]  # row stride 96, 64 columns
    q, scale = int8dit.quantize_rows(view)
    q_ref, scale_ref = quantize_rows_numpy(np.ascontiguousarray(view))
    np.testing.assert_array_equal(q, q_ref)
    np.testing.assert_array_equal(scale, scale_ref)


def test_gemm_int32_accumulator_is_exact(rng):
    a = rng.integers(-127, 128, size=(63, 256), dtype=np.int8)
    b = rng.integers(-127, 128, size=(40, 256), dtype=np.int8)
    acc = int8dit.gemm_w8a8(a, b, out_dtype=np.int32)
    np.testing.assert_array_equal(acc, a.astype(np.int64) @ b.astype(np.int64).T)


def test_gemm_scaled_output_follows_the_epilogue(rng):
    a = rng.integers(-127, 128, size=(16, 128), dtype=np.int8)
    b = rng.integers(-127, 128, size=(24, 128), dtype=np.int8)
    sa = rng.uniform(1e-3, 1e-1, size=16).astype(np.float32)
    sb = rng.uniform(1e-3, 1e-1, size=24).astype(np.float32)
    bias = rng.standard_normal(24).astype(np.float32)
    d = int8dit.gemm_w8a8(a, b, sa, sb, bias, out_dtype=np.float32)
    acc = (a.astype(np.int64) @ b.astype(np.int64).T).astype(np.float32)
    # fp32: float(acc) * (sa * sb) + bias, each step rounded once
    expect = acc * (sa[:, None] * sb[None, :]).astype(np.float32) + bias[None, :]
    np.testing.assert_allclose(d, expect, rtol=2e-6, atol=1e-6)


def test_quantize_then_gemm_approximates_the_float_product(rng):
    x = rng.standard_normal((32, 512)).astype(np.float32)
    w = rng.standard_normal((64, 512)).astype(np.float32)
    qx, sx = int8dit.quantize_rows(x)
    qw, sw = int8dit.quantize_rows(w)
    y = int8dit.gemm_w8a8(qx, qw, sx, sw, out_dtype=np.float32)
    ref = x @ w.T
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 0.02


def test_per_tensor_scales_are_accepted(rng):
    a = rng.integers(-127, 128, size=(16, 64), dtype=np.int8)
    b = rng.integers(-127, 128, size=(8, 64), dtype=np.int8)
    one = np.array([0.5], dtype=np.float32)
    d = int8dit.gemm_w8a8(a, b, one, one, out_dtype=np.float32)
    np.testing.assert_allclose(d, (a.astype(np.float32) @ b.astype(np.float32).T) * 0.25)


def test_bad_k_raises_value_error_with_the_library_message(rng):
    a = np.zeros((8, 30), dtype=np.int8)
    with pytest.raises(ValueError, match=r"K = 30 must be a multiple of 16"):
        int8dit.gemm_w8a8(a, a, out_dtype=np.int32)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: int8dit.gemm_w8a8(np.zeros((8, 32), np.int8), np.zeros((8, 48), np.int8), out_dtype=np.int32),
         r"both hold K columns"),
        (lambda: int8dit.gemm_w8a8(np.zeros((8, 32), np.float32), np.zeros((8, 32), np.int8)), r"a must hold int8"),
        (lambda: int8dit.gemm_w8a8(np.zeros((8, 32), np.int8), np.zeros((8, 32), np.int8),
                                   np.ones(3, np.float32), np.ones(8, np.float32)), r"scale_a has 3 elements"),
        (lambda: int8dit.gemm_w8a8(np.zeros((8, 32), np.int8), np.zeros((8, 32), np.int8),
                                   np.ones(8, np.float32), np.ones(8, np.float32), np.ones(5, np.float32)),
         r"bias has 5 elements"),
        (lambda: int8dit.quantize_rows(np.zeros((2, 3, 16), np.float32)), r"2-D"),
        (lambda: int8dit.quantize_rows(np.zeros((4, 32), np.float32), np.ones(31, np.float32)),
         r"smooth has 31 elements"),
        (lambda: int8dit.quantize_rows(np.zeros((4, 0), np.float32)), r"cols \(K\) = 0"),
        (lambda: int8dit.quantize_rows(np.zeros((4, 32), np.float64)), r"element type"),
        (lambda: int8dit.quantize_rows(np.zeros((16, 16), np.float32).T), r"last dimension must be contiguous"),
    ],
)
def test_validation_errors_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_raw_entry_points_report_errors_too():
    with pytest.raises(ValueError, match=r"x \(the input\) is null"):
        _C.raw.quantize_rows(True, 0, _C.DType.fp32, 4, 16, 16, 0, 0, 16, 0, 0)


def test_empty_batch_is_ok():
    q, scale = int8dit.quantize_rows(np.zeros((0, 64), np.float32))
    assert q.shape == (0, 64) and scale.shape == (0,)
    d = int8dit.gemm_w8a8(np.zeros((0, 64), np.int8), np.zeros((8, 64), np.int8), out_dtype=np.int32)
    assert d.shape == (0, 8)


def test_device_info_without_a_gpu_says_why():
    try:
        info = int8dit.device_info()
    except int8dit.NotSupportedError as e:
        assert "GPU" in str(e) or "CUDA" in str(e)
    else:
        assert info["compute_capability"] >= 0 and info["name"]


def test_version_and_architectures_are_reported():
    assert int8dit.__version__.count(".") == 2
    assert isinstance(int8dit.built_architectures(), str)
