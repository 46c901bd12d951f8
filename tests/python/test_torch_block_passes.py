"""The elementwise passes int8dit's block forwards save around the kernels: the residual update as one
addcmul (blocks.gated_add) and Flux's token concatenation without a copy where the text and image
tokens are the halves of one tensor (flux_single.joined_tokens)."""
import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.torch.blocks import gated_add  # noqa: E402
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
