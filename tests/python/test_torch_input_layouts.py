"""Every PyTorch entry point of int8dit on inputs whose rows are not contiguous in memory: a strided
view (rows evenly spaced: read in place) and a transposed tensor (rows not evenly spaced: copied
first, and the copy must live until the C++ call has read it). Each must give exactly what the same
values in a contiguous tensor give. CPU tensors (the C++ reference)."""
from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.torch import Linear  # noqa: E402
from int8dit.torch.fused import (concat_gelu_quantize_impl, gelu_quantize_impl,  # noqa: E402
                                 layernorm_modulate_quantize_with_output, rmsnorm_quantize_impl)
from int8dit.torch.ops import gemm_unchecked, linear_unchecked, quantize_rows_impl  # noqa: E402

BF16 = torch.bfloat16


def layouts(shape):
    """The same random values as (contiguous, strided view, transposed) tensors of `shape` [B, T, K]."""
    b, t, k = shape
    base = torch.randn(b, t, k + 16, dtype=BF16)
    strided = base[..., 8:8 + k]  # rows k apart in a row of k + 16
    transposed = strided.contiguous().transpose(0, 1).contiguous().transpose(0, 1)  # [B, T, K] with T outermost
    assert not strided.is_contiguous() and not transposed.is_contiguous()
    return strided.contiguous(), strided, transposed


def assert_same(got, want):
    for g, w in zip(got, want):
        assert g.shape == w.shape and torch.equal(g, w)


def test_linear_and_gemm_read_any_row_layout():
    torch.manual_seed(0)
    lin = Linear.from_float(torch.nn.Linear(64, 32).to(BF16))
    b = {**lin._buffers, "weight": lin.weight}
    contiguous, *others = layouts((3, 5, 64))
    want = linear_unchecked(contiguous, b["weight"], b["weight_scale"], b["bias"], b["smooth"])
    for x in others:
        assert_same([linear_unchecked(x, b["weight"], b["weight_scale"], b["bias"], b["smooth"])], [want])
        assert_same([lin(x)], [want])
    q, s = quantize_rows_impl(contiguous)
    for x in others:
        assert_same(quantize_rows_impl(x), (q, s))
    want = gemm_unchecked(q, b["weight"], s, b["weight_scale"], b["bias"], BF16)
    assert_same([gemm_unchecked(q.transpose(0, 1).contiguous().transpose(0, 1), b["weight"], s, b["weight_scale"],
                                b["bias"], BF16)], [want])


def test_fused_producers_read_any_row_layout():
    torch.manual_seed(1)
    contiguous, *others = layouts((2, 6, 64))
    shift, scale = torch.randn(2, 64, dtype=BF16), torch.randn(2, 64, dtype=BF16)
    want_ln = layernorm_modulate_quantize_with_output(contiguous, shift, scale, 1e-6, None)
    want_gelu = gelu_quantize_impl(contiguous, None)
    weight = torch.rand(64, dtype=BF16) + 0.5
    want_rms = rmsnorm_quantize_impl(contiguous, weight, 1e-6)
    h_contiguous, *h_others = layouts((2, 6, 32))
    want_concat = concat_gelu_quantize_impl(contiguous, h_contiguous, None)
    for x, h in zip(others, h_others):
        assert_same(layernorm_modulate_quantize_with_output(x, shift, scale, 1e-6, None), want_ln)
        assert_same(gelu_quantize_impl(x, None), want_gelu)
        assert_same(rmsnorm_quantize_impl(x, weight, 1e-6), want_rms)
        assert_same(concat_gelu_quantize_impl(x, h, None), want_concat)


def test_broadcast_rows_are_read_as_the_values_they_show():
    # expand() repeats one row with a row stride of 0, which the kernels' ldx >= K refuses: read from a copy.
    torch.manual_seed(1)
    lin = Linear.from_float(torch.nn.Linear(64, 32).to(BF16))
    row = torch.randn(1, 64, dtype=BF16)
    for x in (row.expand(6, 64), row.expand(2, 3, 64)):
        assert x.stride(-2) == 0
        assert_same([lin(x)], [lin(x.contiguous())])
        assert_same(quantize_rows_impl(x), quantize_rows_impl(x.contiguous()))


def test_a_modulation_row_per_token_in_any_layout_is_each_tokens_own():
    """shift and scale with a row per token ([B, T, K]: Wan 2.2 TI2V's views of its [B, T, 6, K] table, a
    row stride of 6K; SkyReels-V2's [B, 6, T, K], whose views' batch stride is not T rows; contiguous
    tables): every token is modulated by its own row, as if each were a batch element of one token."""
    import pytest

    torch.manual_seed(2)
    b, t, k = 2, 5, 64
    x = torch.randn(b, t, k, dtype=BF16)
    one_token_each = x.reshape(b * t, 1, k)
    wan = torch.randn(b, t, 6, k, dtype=BF16)
    skyreels = torch.randn(b, 6, t, k, dtype=BF16)
    for shift, scale in ((wan[:, :, 0], wan[:, :, 1]), (skyreels[:, 0], skyreels[:, 1]),
                         (wan[:, :, 3].contiguous(), wan[:, :, 4].contiguous())):
        want = layernorm_modulate_quantize_with_output(one_token_each, shift.reshape(b * t, k),
                                                       scale.reshape(b * t, k), 1e-6, None)
        got = layernorm_modulate_quantize_with_output(x, shift, scale, 1e-6, None)
        assert_same([g.reshape(b * t, -1) for g in got], [w.reshape(b * t, -1) for w in want])
    # a per-sample shift with a per-token scale is neither: refused, saying so
    with pytest.raises(ValueError, match="both hold one row per batch element or both one row per token"):
        layernorm_modulate_quantize_with_output(x, wan[:, 0, 0], wan[:, :, 1], 1e-6, None)


def test_a_per_token_table_is_rounded_once_without_an_fp32_copy_and_autograd_still_sees_it():
    """block_steps.rounded_modulation: table + temb summed in fp32 and rounded once, the bits of diffusers'
    (table + temb.float()).to(dtype); where the table needs a gradient (a trainable modulation), that
    expression itself, which autograd records."""
    import pytest

    from int8dit.torch.block_steps import rounded_modulation

    torch.manual_seed(3)
    table = torch.randn(1, 1, 6, 64)  # Wan's fp32 scale_shift_table, as the blocks broadcast it
    temb = torch.randn(2, 5, 6, 64, dtype=BF16)
    with torch.no_grad():
        got = rounded_modulation(table, temb, BF16)
    assert got.dtype == BF16 and got.shape == temb.shape
    assert torch.equal(got, (table + temb.float()).to(BF16))
    # one table row a group of tokens: SkyReels-V2's per-frame [1, 6, 1, K] over [B, 6, T, K] (a row of K for
    # each of the B * 6 groups), and a table that matches the batch dimension itself
    from int8dit.torch.fused import rows_plus_table, rows_plus_table_fits

    skyreels_table, skyreels_temb = torch.randn(1, 6, 1, 64), torch.randn(2, 6, 5, 64, dtype=BF16)
    per_sample_table = torch.randn(2, 1, 6, 64)
    for t, x in ((skyreels_table, skyreels_temb), (per_sample_table, temb), (table[0, 0], temb)):
        assert rows_plus_table_fits(x, t)
        with torch.no_grad():
            assert torch.equal(rounded_modulation(t, x, BF16), (t + x.float()).to(BF16))
    # a table with no trailing run of x's columns is not one: PyTorch's add, the same bits
    odd = torch.randn(1, 6, 5, 1)
    assert not rows_plus_table_fits(skyreels_temb, odd)
    with torch.no_grad():
        assert torch.equal(rounded_modulation(odd, skyreels_temb, BF16), (odd + skyreels_temb.float()).to(BF16))
    with pytest.raises(ValueError, match="the table one row per group of x's tokens"):
        rows_plus_table(skyreels_temb, odd)
    table.requires_grad_(True)
    with torch.enable_grad():
        tracked = rounded_modulation(table, temb, BF16)
        assert tracked.requires_grad
        tracked.float().sum().backward()
    assert table.grad is not None and torch.equal(tracked.detach(), got)
