"""int8dit.torch.attention.qk_norm_rope and join_heads (CPU tensors through the C++ reference) against
PyTorch's RMSNorm and diffusers' apply_rotary_emb, their layouts (a strided view of a fused QKV output
into a token slice of a joined buffer, SD3's [B, H, S, D] join) and refusals. The processors that use
them are tested in test_torch_attention_prep.py. Skips without PyTorch or diffusers."""
import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from diffusers.models.embeddings import apply_rotary_emb  # noqa: E402

from int8dit.torch.attention import join_heads, qk_norm_rope  # noqa: E402


def rotary_table(positions, d):
    pos = torch.arange(positions, dtype=torch.float64)[:, None] * torch.pow(10000.0, -torch.arange(0, d, 2) / d)[None]
    return pos.cos().repeat_interleave(2, 1).float(), pos.sin().repeat_interleave(2, 1).float()


def stock(x, weight, eps, rotary):
    """torch.nn.RMSNorm with that weight, then diffusers' rotation (Flux's processor, op for op)."""
    norm = torch.nn.RMSNorm(x.shape[-1], eps=eps, elementwise_affine=weight is not None).to(x.dtype)
    if weight is not None:
        norm.weight.data.copy_(weight)
    y = norm(x)
    return y if rotary is None else apply_rotary_emb(y, rotary, sequence_dim=1)


def ulps(a, b):
    """|a - b| in units of the last place of b's dtype at b's magnitude."""
    step = torch.finfo(b.dtype).eps * b.float().abs().clamp_min(torch.finfo(b.dtype).tiny)
    return ((a.float() - b.float()).abs() / step).max().item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("rotated", [True, False])
@torch.no_grad()
def test_matches_rmsnorm_and_apply_rotary_emb(dtype, d, weighted, rotated):
    torch.manual_seed(d)
    x = (torch.randn(2, 9, 3, d) * 4).to(dtype)
    weight = (1 + 0.2 * torch.randn(d)).to(dtype) if weighted else None
    rotary = rotary_table(9, d) if rotated else None
    got = qk_norm_rope(x, weight, 1e-6, rotary)
    want = stock(x, weight, 1e-6, rotary)
    assert got.shape == want.shape and got.dtype == dtype
    # the same formula; PyTorch's rsqrt and op order may move an element by one unit in the last place
    # of the norm, which the rotation carries into at most a couple of units of the output
    assert ulps(got, want) <= 2.0
    assert (got != want).float().mean().item() < 0.02


@torch.no_grad()
def test_strided_queries_into_the_image_rows_of_a_joined_buffer():
    torch.manual_seed(1)
    b, txt, img, h, d = 2, 5, 7, 4, 32
    qkv = torch.randn(b, img, 3 * h * d).bfloat16()
    query = qkv[..., : h * d].unflatten(-1, (h, d))  # a strided view, as diffusers' fused projections give
    weight = (1 + 0.1 * torch.randn(d)).bfloat16()
    rotary = rotary_table(txt + img, d)
    joined = torch.full((b, txt + img, h, d), float("nan"), dtype=torch.bfloat16)
    out = qk_norm_rope(query, weight, 1e-6, rotary, out=joined[:, txt:], rope_offset=txt)
    assert out.data_ptr() == joined[:, txt:].data_ptr()
    assert torch.isnan(joined[:, :txt]).all(), "the text rows were written"
    full = torch.cat([torch.zeros(b, txt, h, d, dtype=torch.bfloat16), query], dim=1)
    want = stock(full, weight, 1e-6, rotary)[:, txt:]
    assert ulps(joined[:, txt:], want) <= 2.0
    # in place over x gives the same values
    again = query.clone()
    qk_norm_rope(again, weight, 1e-6, rotary, out=again, rope_offset=txt)
    assert torch.equal(again, joined[:, txt:])


def test_bad_calls_are_refused():
    x = torch.randn(1, 4, 2, 64).bfloat16()
    rotary = rotary_table(4, 64)
    with pytest.raises(ValueError, match="head_dim 48 is not supported"):
        qk_norm_rope(torch.randn(1, 4, 2, 48).bfloat16(), None, 1e-6)
    with pytest.raises(ValueError, match="it must be x's torch.bfloat16 or float32"):
        qk_norm_rope(x, torch.ones(64, dtype=torch.float64), 1e-6)
    # an fp32 weight (a norm kept in fp32) is the kernel's weight_fp32: values bf16 holds give bf16's bits
    weight = 1 + torch.randn(64).bfloat16()
    assert torch.equal(qk_norm_rope(x, weight.float(), 1e-6), qk_norm_rope(x, weight, 1e-6))
    with pytest.raises(ValueError, match="cos is torch.float64"):
        qk_norm_rope(x, None, 1e-6, (rotary[0].double(), rotary[1]))
    with pytest.raises(ValueError, match="takes bf16 or fp16"):
        qk_norm_rope(x.float(), None, 1e-6)
    with pytest.raises(ValueError, match=r"\[batch, tokens, heads, head_dim\]"):
        qk_norm_rope(x[0], None, 1e-6)
    with pytest.raises(ValueError, match="out is"):
        qk_norm_rope(x, None, 1e-6, out=torch.empty(1, 4, 2, 64, dtype=torch.float16))
    with pytest.raises(ValueError, match="^qk_norm_rope: cos and sin have 4 rows.*need rows up to 4"):  # the C++ check
        qk_norm_rope(x, None, 1e-6, rotary, rope_offset=1)


@torch.no_grad()
def test_the_norm_across_heads_is_torchs_rms_norm_over_the_whole_row():
    """norm_heads = H: the statistics of a token's H * D values and each head its part of the weight, as
    torch.nn.RMSNorm over the row (Wan's and LTX-Video's q/k norms) computes them, within an ulp (the sum's
    order); tables of a value a channel ([S, H * D], LTX's) rotate each head with its own values."""
    torch.manual_seed(4)
    b, t, h, d = 2, 9, 4, 64
    x = (torch.randn(b, t, h * d) * 3).bfloat16()
    norm = torch.nn.RMSNorm(h * d, eps=1e-6).bfloat16()
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 1.5, h * d))
    want = norm(x)
    got = qk_norm_rope(x.unflatten(-1, (h, d)), norm.weight, 1e-6, None, norm_heads=h).flatten(-2)
    assert ulps(got, want) <= 1.0
    # per head (norm_heads 1) the statistics differ: the check can fail
    per_head = qk_norm_rope(x.unflatten(-1, (h, d)), norm.weight[:d], 1e-6, None).flatten(-2)
    assert ulps(per_head, want) > 4.0
    cos, sin = torch.randn(t, h * d), torch.randn(t, h * d)
    rotated = qk_norm_rope(x.unflatten(-1, (h, d)), norm.weight, 1e-6, (cos, sin), norm_heads=h).flatten(-2)
    n = got.float()
    even = n[..., 0::2] * cos[:, 0::2] - n[..., 1::2] * sin[:, 0::2]
    odd = n[..., 1::2] * cos[:, 1::2] + n[..., 0::2] * sin[:, 1::2]
    assert torch.equal(rotated, torch.stack([even, odd], -1).flatten(-2).bfloat16())


def test_bad_norms_across_heads_are_refused():
    x = torch.randn(1, 4, 6, 64).bfloat16()
    with pytest.raises(ValueError, match="norm_heads 4 must divide the 6 heads"):
        qk_norm_rope(x, None, 1e-6, norm_heads=4)
    with pytest.raises(ValueError, match=r"shaped \(384,\)"):
        qk_norm_rope(x, torch.ones(64).bfloat16(), 1e-6, norm_heads=6)
    with pytest.raises(ValueError, match="takes the RMSNorm alone"):
        qk_norm_rope(x, None, 1e-6, norm_heads=6, layer_norm=True)
    with pytest.raises(ValueError, match=r"\[positions, 64\] \(a row every head shares\) or \[positions, 384\]"):
        qk_norm_rope(x, None, 1e-6, (torch.randn(4, 128), torch.randn(4, 128)), norm_heads=6)


@torch.no_grad()
def test_join_heads_moves_rows_into_a_heads_major_joined_buffer_bit_for_bit():
    torch.manual_seed(2)
    b, img, txt, h, d = 2, 7, 3, 4, 64
    image = torch.randn(b, img, h * d).bfloat16().unflatten(-1, (h, d))
    text = torch.randn(b, txt, h * d).bfloat16().unflatten(-1, (h, d))
    joined = torch.full((b, h, img + txt, d), float("nan"), dtype=torch.bfloat16)
    join_heads(image, joined[:, :, :img].transpose(1, 2))
    join_heads(text, joined[:, :, img:].transpose(1, 2))
    # what SD3's processor built with torch.cat over transposed views
    assert torch.equal(joined, torch.cat([image.transpose(1, 2), text.transpose(1, 2)], dim=2))
    with pytest.raises(ValueError, match="a weight was given with normalize=False"):
        qk_norm_rope(image, torch.ones(d, dtype=torch.bfloat16), 1e-6, normalize=False)


@torch.no_grad()
def test_a_call_on_another_device_keeps_every_argument(monkeypatch):
    """A tensor on a CUDA device other than the current one is served under that device's guard
    (ops.on_device_of): the call made there must be the same call, normalize=False and the rotary
    offset included. Simulated on the CPU: the first check says "another device", the guard is a
    no-op."""
    import contextlib

    import int8dit.torch.attention as attention

    answers = iter([True])
    monkeypatch.setattr(attention, "off_current_device", lambda t: next(answers, False))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    x = torch.randn(1, 3, 2, 64).bfloat16() * 4
    joined = torch.zeros(1, 5, 2, 64, dtype=torch.bfloat16)
    join_heads(x, joined[:, 2:])
    assert torch.equal(joined[:, 2:], x) and not joined[:, :2].any()  # moved, not normalized
    cos, sin = torch.rand(5, 64), torch.rand(5, 64)
    answers = iter([True])
    got = qk_norm_rope(x, None, 1e-6, (cos, sin), rope_offset=2)
    assert torch.equal(got, qk_norm_rope(x, None, 1e-6, (cos, sin), rope_offset=2))
    assert not torch.equal(got, qk_norm_rope(x, None, 1e-6, (cos, sin), rope_offset=0))
