"""int8dit.torch.concat_swiglu_quantize and FLUX.2's single-stream output through it, on CPU tensors
(the C++ reference): the op against its definition, in-place halves of one projection, bad calls, and
the fused processor's end (flux2_attention.parallel_output) against the stock to_out(cat(...)) on a
quantized FLUX.2. Skips without PyTorch; the model tests skip without diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.torch import concat_swiglu_quantize, quantize_, quantize_rows  # noqa: E402

BF16 = torch.bfloat16


def definition(a, gate, up, smooth=None):
    """cat([a, silu(gate) * up]) with the product in double, rounded once to fp32, quantized by quantize_rows."""
    v = torch.cat([a.double(), torch.nn.functional.silu(gate.double()) * up.double()], -1).float()
    return quantize_rows(v, smooth)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@torch.no_grad()
def test_concat_swiglu_quantize_is_its_definition(dtype):
    torch.manual_seed(0)
    a = torch.randn(2, 7, 24, dtype=dtype) * 4
    gate, up = torch.randn(2, 7, 40, dtype=dtype) * 3, torch.randn(2, 7, 40, dtype=dtype)
    for smooth in (None, torch.rand(64) + 0.5):
        q, scale = concat_swiglu_quantize(a, gate, up, smooth)
        want_q, want_scale = definition(a, gate, up, smooth)
        assert q.shape == (2, 7, 64) and scale.shape == (2, 7)
        assert torch.equal(q, want_q) and torch.equal(scale, want_scale)
    # (the check can fail: gate and up exchanged, or the parts in the other order)
    assert not torch.equal(concat_swiglu_quantize(a, up, gate)[0], q)
    q_first, _ = quantize_rows(torch.cat([(torch.nn.functional.silu(gate.double()) * up.double()), a.double()], -1).float())
    assert not torch.equal(concat_swiglu_quantize(a, gate, up)[0], q_first)


@torch.no_grad()
def test_the_halves_of_one_projection_are_read_in_place():
    # FLUX.2's single stream: gate and up are the halves of the MLP part of to_qkv_mlp_proj's output
    torch.manual_seed(1)
    projected = torch.randn(9, 3 * 16 + 2 * 48, dtype=BF16)
    mlp = projected[:, 48:]
    a = torch.randn(9, 16, dtype=BF16)
    q, scale = concat_swiglu_quantize(a, mlp[:, :48], mlp[:, 48:])
    want_q, want_scale = definition(a, mlp[:, :48].contiguous(), mlp[:, 48:].contiguous())
    assert torch.equal(q, want_q) and torch.equal(scale, want_scale)


def test_opcheck_and_compiled_calls():
    a, gate, up = torch.randn(3, 8, dtype=BF16), torch.randn(3, 16, dtype=BF16), torch.randn(3, 16, dtype=BF16)
    torch.library.opcheck(torch.ops.int8dit.concat_swiglu_quantize.default, (a, gate, up, None))
    compiled = torch.compile(lambda x, g, u: concat_swiglu_quantize(x, g, u), fullgraph=True, backend="aot_eager")
    q, scale = compiled(a, gate, up)
    q2, scale2 = concat_swiglu_quantize(a, gate, up)
    assert torch.equal(q, q2) and torch.equal(scale, scale2)


def test_bad_calls_are_refused_with_what_to_change():
    a, g = torch.randn(4, 8, dtype=BF16), torch.randn(4, 16, dtype=BF16)
    with pytest.raises(ValueError, match="gate and up must match in shape"):
        concat_swiglu_quantize(a, g, torch.randn(4, 8, dtype=BF16))
    with pytest.raises(ValueError, match="every dimension but the last"):
        concat_swiglu_quantize(torch.randn(5, 8, dtype=BF16), g, g)
    with pytest.raises(ValueError, match="must be bfloat16 or float16"):
        concat_swiglu_quantize(a.float(), g.float(), g.float())
    with pytest.raises(ValueError, match="each needs at least one"):
        concat_swiglu_quantize(torch.randn(4, 0, dtype=BF16), g, g)
    with pytest.raises(ValueError, match="smooth"):
        concat_swiglu_quantize(a, g, g, torch.ones(16))


diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from int8dit.torch import flux2_attention  # noqa: E402
from test_torch_attention_prep_more import FLUX2  # noqa: E402


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0).item()


@torch.no_grad()
def test_the_single_stream_end_quantizes_attention_and_swiglu_in_one_call(monkeypatch):
    """parallel_output on a quantized FLUX.2 single-stream attention: one concat_swiglu_quantize and
    to_out's GEMM, following the stock to_out(cat([attention, silu(gate) * up])) within the product's
    rounding; with the halves exchanged it does not."""
    torch.manual_seed(2)
    model = diffusers.Flux2Transformer2DModel(**FLUX2).to(BF16).eval()
    quantize_(model, min_features=32)
    attn = model.single_transformer_blocks[0].attn
    calls = []
    from int8dit.torch import swiglu

    original = swiglu.concat_swiglu_quantize_impl
    monkeypatch.setattr(swiglu, "concat_swiglu_quantize_impl", lambda *a: calls.append(1) or original(*a))
    attention = torch.randn(1, 40, attn.inner_dim, dtype=BF16) * 2
    mlp = torch.randn(1, 40, 2 * attn.mlp_hidden_dim, dtype=BF16) * 2
    want = attn.to_out(torch.cat([attention, attn.mlp_act_fn(mlp)], dim=-1))
    got = flux2_attention.parallel_output(attn, attention, mlp)
    assert len(calls) == 1, "the fused end did not run"
    assert got.shape == want.shape and got.dtype == BF16
    assert cosine(got, want) > 0.9999
    half = attn.mlp_hidden_dim
    swapped = flux2_attention.parallel_output(attn, attention, torch.cat([mlp[..., half:], mlp[..., :half]], -1))
    assert cosine(swapped, want) < 0.99


@torch.no_grad()
def test_the_single_stream_end_keeps_the_stock_path_where_it_must():
    torch.manual_seed(3)
    model = diffusers.Flux2Transformer2DModel(**FLUX2).to(BF16).eval()
    attn = model.single_transformer_blocks[0].attn
    attention = torch.randn(1, 8, attn.inner_dim, dtype=BF16)
    mlp = torch.randn(1, 8, 2 * attn.mlp_hidden_dim, dtype=BF16)
    want = attn.to_out(torch.cat([attention, attn.mlp_act_fn(mlp)], dim=-1))
    # bf16 to_out (not quantized): the stock ops, bit for bit
    assert torch.equal(flux2_attention.parallel_output(attn, attention, mlp), want)
    quantized = copy.deepcopy(model)
    quantize_(quantized, min_features=32)
    qattn = quantized.single_transformer_blocks[0].attn
    stock = qattn.to_out(torch.cat([attention, qattn.mlp_act_fn(mlp)], dim=-1))
    # a user's activation in place of Flux2SwiGLU: its own ops
    qattn.mlp_act_fn = torch.nn.Sequential(qattn.mlp_act_fn)
    assert torch.equal(flux2_attention.parallel_output(qattn, attention, mlp), stock)
