"""Shared test helpers: a numpy statement of DESIGN.md's quantization semantics, skip markers, and a benchmark
module's --help text."""
import numpy as np
import pytest


def quantize_rows_numpy(x: np.ndarray, smooth=None):
    """amax = max|x|; scale = amax/127; inv = 127/amax; q = clamp(rint(x*inv)); fp32 throughout."""
    x = x.astype(np.float32)
    if smooth is not None:
        x = x / smooth.astype(np.float32)
    amax = np.abs(x).max(axis=1)
    finite = np.isfinite(x).all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(finite, amax / np.float32(127.0), np.float32(np.nan)).astype(np.float32)
        inv = (np.float32(127.0) / amax).astype(np.float32)
        q = np.rint(x * inv[:, None])
    q = np.nan_to_num(np.clip(q, -127, 127), nan=0.0)
    q[~finite] = 0
    q[amax == 0] = 0
    return q.astype(np.int8), scale


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is not installed: the torch layer's tests need it")


def cuda_or_skip():
    torch = torch_or_skip()
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU: this test runs on the GPU machine", allow_module_level=True)
    return torch


def assert_close_quantization(q, scale, want_q, want_scale, off_by_one_fraction=0.01):
    """A fused op's int8 rows and scales against an unfused computation of the same values: scales
    within 1e-5 relative, int8 values within 1 on at most ``off_by_one_fraction`` of them (the two
    compute the fp32 values in another order)."""
    import torch

    assert q.shape == want_q.shape and q.dtype == torch.int8 and scale.shape == want_scale.shape
    torch.testing.assert_close(scale, want_scale, rtol=1e-5, atol=0)
    off = (q.int() - want_q.int()).abs()
    assert off.max().item() <= 1 and (off > 0).float().mean().item() < off_by_one_fraction


def help_text(main) -> str:
    """What a benchmark module's `main(["--help"])` prints; fails unless it exits 0."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    return out.getvalue()
