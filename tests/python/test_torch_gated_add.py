"""int8dit's gated residual update, h + gate * update (fused.gated_residual_add), on CPU tensors (the
C++ reference): one fp32 FMA rounded once, each batch element's (or token's) gate row, the layouts it takes and the
ones it refuses; and which updates the DiT blocks send to it (block_steps.gated_add)."""
import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.torch.block_steps import gated_add, gated_add_fits  # noqa: E402
from int8dit.torch.fused import gated_residual_add  # noqa: E402


def one_fma(h, gate, update):
    """fmaf(g, u, h) rounded once to h's dtype: in float64 the product and the sum of 16-bit floats are
    exact, so one rounding to fp32 is the FMA's, and the second one is the kernel's to bf16/fp16."""
    g = 1.0 if gate is None else gate.reshape(h.shape[0], 1, h.shape[2]).double()
    return (h.double() + g * update.double()).float().to(h.dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("gate_shape", ["b1k", "bk", None])
def test_matches_one_fma_per_element(dtype, gate_shape):
    torch.manual_seed(0)
    h = torch.randn(3, 5, 40, dtype=dtype)
    update = torch.randn(3, 5, 40, dtype=dtype) * 4
    gate = None if gate_shape is None else torch.randn(3, 1, 40, dtype=dtype)
    if gate_shape == "bk":
        gate = gate.reshape(3, 40)
    out = gated_residual_add(h, gate, update)
    assert out.shape == h.shape and out.dtype == dtype and out.is_contiguous()
    assert torch.equal(out, one_fma(h, gate, update))


def test_a_gate_chunked_from_a_wider_row_and_padded_rows():
    torch.manual_seed(1)
    table = torch.randn(2, 6, 24, dtype=torch.bfloat16)  # adaLN's six rows a batch element
    gate = table.chunk(6, dim=1)[2]                      # [2, 1, 24], batch stride 144
    h = torch.randn(2, 7, 32, dtype=torch.bfloat16)[..., :24]  # rows padded to 32
    update = torch.randn(2, 7, 24, dtype=torch.bfloat16)
    assert torch.equal(gated_residual_add(h, gate, update), one_fma(h, gate, update))


def test_a_gate_row_per_token_read_in_place_from_the_per_token_table():
    # Wan 2.2 TI2V's modulation: a [B, T, 6, K] table, the gate one of its six [B, T, K] views (row stride 6K)
    torch.manual_seed(2)
    table = torch.randn(2, 5, 6, 24, dtype=torch.bfloat16)
    gate = table.unbind(dim=2)[2]
    h, update = torch.randn(2, 5, 24, dtype=torch.bfloat16), torch.randn(2, 5, 24, dtype=torch.bfloat16)
    want = (h.double() + gate.double() * update.double()).float().to(h.dtype)
    assert torch.equal(gated_residual_add(h, gate, update), want)
    # each token's gate its own: a gate row per sample gives another sum
    assert not torch.equal(gated_residual_add(h, gate[:, :1], update), want)


def test_refusals_say_what_was_wrong():
    h = torch.zeros(2, 3, 8, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="must be h's"):
        gated_residual_add(h, None, torch.zeros(2, 3, 8, dtype=torch.float16))
    with pytest.raises(ValueError, match="bf16 or fp16"):
        gated_residual_add(h.float(), None, h.float())
    with pytest.raises(ValueError, match=r"expected \(2, 8\): one row per batch element"):
        gated_residual_add(h, torch.zeros(3, 8, dtype=torch.bfloat16), h)
    with pytest.raises(ValueError, match=r"\[batch, tokens, features\]"):
        gated_residual_add(h[0], None, h[0])


def test_the_blocks_send_only_plain_cuda_updates_to_it():
    h = torch.zeros(2, 3, 8, dtype=torch.bfloat16)
    gate = torch.ones(2, 1, 8, dtype=torch.bfloat16)
    assert not gated_add_fits(h, gate, h)  # a CPU tensor: PyTorch's addcmul
    # and on the CPU gated_add stays PyTorch's (addcmul computes the same sum here)
    update = torch.randn(2, 3, 8, dtype=torch.bfloat16)
    assert torch.equal(gated_add(h, gate, update), torch.addcmul(h, gate, update))
