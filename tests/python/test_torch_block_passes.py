"""The passes over memory int8dit's block forwards save around the kernels: the residual update as one
addcmul (block_steps.gated_add), Flux's token concatenation without a copy where the text and image tokens
are the halves of one tensor (flux_single.joined_tokens), and the MLP fed its int8 rows straight from
its norm's kernel (block_steps.residual_then_mlp)."""
import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.torch.block_steps import gated_add  # noqa: E402
from int8dit.torch.flux_single import joined_tokens  # noqa: E402


def test_gated_add_rounds_the_gated_sum_once():
    torch.manual_seed(0)
    h = torch.randn(2, 7, 16, dtype=torch.bfloat16)
    gate = torch.randn(2, 1, 16, dtype=torch.bfloat16)
    update = torch.randn(2, 7, 16, dtype=torch.bfloat16) * 5
    exact = (h.float() + gate.float() * update.float()).to(torch.bfloat16)
    assert torch.equal(gated_add(h, gate, update), exact)
    assert torch.equal(gated_add(h, None, update), h + update)


def test_gated_add_keeps_the_layout_of_the_update():
    # DiT's first block adds to the patch embedding's transposed view; the sum must come out contiguous,
    # or no later block's fused norm would read it.
    h = torch.randn(2, 16, 7, dtype=torch.bfloat16).transpose(1, 2)
    gate = torch.randn(2, 1, 16, dtype=torch.bfloat16)
    update = torch.randn(2, 7, 16, dtype=torch.bfloat16)
    for g in (gate, None):
        out = gated_add(h, g, update)
        assert out.is_contiguous()
        assert torch.equal(out, update + h if g is None else g * update + h)


def test_gated_add_promotes_as_the_unfused_ops_do():
    h = torch.ones(1, 3, 8, dtype=torch.bfloat16)
    gate = torch.full((1, 1, 8), 0.5)  # fp32, as some pipelines' modulation is
    assert gated_add(h, gate, h).dtype == (gate * h + h).dtype == torch.float32


@pytest.mark.parametrize("batch", [1, 3])
def test_halves_of_one_tensor_are_joined_without_a_copy(batch):
    whole = torch.randn(batch, 12, 8, dtype=torch.bfloat16)
    text, image = whole[:, :5], whole[:, 5:]
    joined = joined_tokens(text, image)
    assert torch.equal(joined, torch.cat([text, image], dim=1))
    assert joined.data_ptr() == whole.data_ptr() and joined.is_contiguous()


def _other_layouts():
    whole = torch.randn(2, 12, 8)
    wide = torch.randn(2, 12, 16)
    yield "two tensors", torch.randn(2, 5, 8), torch.randn(2, 7, 8)
    yield "image before text", whole[:, 5:], whole[:, :5]
    yield "a gap between them", whole[:, :4], whole[:, 5:]
    yield "channels of a wider tensor", wide[:, :5, :8], wide[:, 5:, :8]
    yield "batch elements of a longer tensor", whole[:, :5], whole[:, 5:10]
    yield "other dtypes", whole[:, :5], whole[:, 5:].to(torch.bfloat16)


@pytest.mark.parametrize("case", list(_other_layouts()), ids=lambda case: case[0])
def test_other_layouts_are_concatenated(case):
    _, text, image = case
    joined = joined_tokens(text, image)
    assert torch.equal(joined, torch.cat([text, image], dim=1))
    assert joined.data_ptr() not in (text.data_ptr(), image.data_ptr())


@pytest.mark.parametrize("with_smooth", [False, True])
@torch.no_grad()
def test_an_mlp_fed_straight_from_the_norms_kernel_matches_the_mlp_on_the_norms_output(with_smooth):
    # _residual_then_mlp: the norm writes only fc1's int8 rows (divided by fc1's SmoothQuant divisor where
    # it has one) and the MLP starts at fc1's GEMM: the same bits as fc1 reading the norm's recorded rows,
    # and close to fc1 quantizing the norm's bf16 output itself.
    pytest.importorskip("diffusers")
    from diffusers.models.attention import FeedForward

    from int8dit.torch import Linear
    from int8dit.torch.block_steps import residual_then_mlp, residual_then_modulated_norm
    from int8dit.torch.mlp import GeluMLP

    torch.manual_seed(6)
    ff = FeedForward(64, activation_fn="gelu-approximate").to(torch.bfloat16).eval()
    smooth = torch.rand(64) + 0.5 if with_smooth else None
    ff.net[0].proj = Linear.from_float(ff.net[0].proj, smooth=smooth)
    ff.net[2] = Linear.from_float(ff.net[2])
    mlp = GeluMLP(ff.net)
    assert mlp.int8_fc1() is mlp.fc1
    norm = torch.nn.LayerNorm(64, elementwise_affine=False, eps=1e-6)
    h, u = torch.randn(2, 5, 64, dtype=torch.bfloat16), torch.randn(2, 5, 64, dtype=torch.bfloat16)
    gate = torch.randn(2, 1, 64, dtype=torch.bfloat16)
    shift, scale = torch.randn(2, 64, dtype=torch.bfloat16) * 0.3, torch.randn(2, 64, dtype=torch.bfloat16) * 0.3
    got_h, got = residual_then_mlp(norm, mlp, h, u, gate, shift, scale)
    want_h, y = residual_then_modulated_norm(norm, h, u, gate, shift, scale)
    assert torch.equal(got_h, want_h)
    if not with_smooth:  # the norm recorded its rows for y (no divisor): fc1 reads them from the table
        assert torch.equal(got, mlp(y))
    # fc1 quantizing the rounded bf16 output instead: int8 values may differ by one
    rel = (got.float() - mlp(y.clone()).float()).norm() / got.float().norm()
    assert rel < 0.02, rel  # 0.012-0.015 at K = 64
