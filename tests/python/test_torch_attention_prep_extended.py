"""int8dit.fuse_attention_prep on the models whose q/k preparation needs qk_norm_rope's extended kernel
(LayerNorm statistics and bias, the halves of each row rotated: use_real_unbind_dim=-2), CPU tensors
through the C++ reference, bf16 and int8dit-quantized, against the stock processors: CogView4
(per-head q/k LayerNorm without affine, the image tokens rotated, the text tokens normalized only; the
kernel's LayerNorm takes two passes and the IEEE square root where torch's takes Welford statistics),
CogVideoX (the same with the LayerNorm's weight and bias and neighbouring pairs) and Cosmos 1.0 / 2.5
(per-head q/k RMSNorm, the self-attention rotated). The outputs follow the stock ones within the
norm's rounding. Skips without PyTorch or diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from attention_prep_helpers import assert_follows, cosine, perturb_qk_norm_weights, run_fused_and_stock  # noqa: E402
from diffusers_cases_image import IMAGE_CASES  # noqa: E402
from diffusers_cases_video import VIDEO_CASES  # noqa: E402
from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch import cogview4_attention, cosmos_attention  # noqa: E402
from int8dit.torch.attention_prep import attention_prep_applies, unfuse_attention_prep  # noqa: E402
from int8dit.torch.cogview4_attention import CogVideoXAttentionPrepProcessor, CogView4AttentionPrepProcessor  # noqa: E402,E501
from test_torch_more_diffusers_models import CASES as MORE_CASES  # noqa: E402
from int8dit.torch.cosmos_attention import CosmosAttentionPrepProcessor  # noqa: E402

BF16 = torch.bfloat16
CLS_NAME, CONFIG, MAKE_INPUTS = IMAGE_CASES["cogview4"]  # 2 blocks, 2 heads of 64


def cogview4(seed=0, **overrides):
    torch.manual_seed(seed)
    return getattr(diffusers, CLS_NAME)(**{**CONFIG, **overrides}).to(BF16).eval()


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_cogview4_processor_follows_the_stock_one(quantized):
    model = cogview4()
    if quantized:
        quantize_(model, min_features=32)
    fused, got, want = run_fused_and_stock(model, MAKE_INPUTS(), modules=2)
    assert isinstance(fused.transformer_blocks[0].attn1.processor, CogView4AttentionPrepProcessor)
    assert_follows(got, want, 0.01)
    assert unfuse_attention_prep(fused) == 2
    assert type(fused.transformer_blocks[0].attn1.processor).__name__ == "CogView4AttnProcessor"


def one_attention(seed=3):
    attn = cogview4(seed).transformer_blocks[0].attn1
    fused = copy.deepcopy(attn)
    fused.processor = CogView4AttentionPrepProcessor(fused.processor)
    text = torch.randn(1, 8, 128, dtype=BF16) * 3
    image = torch.randn(1, 24, 128, dtype=BF16) * 3 + 1  # (a mean for the LayerNorm to take away)
    angles = torch.rand(24, 32) * 6.3
    rotary = (torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin())  # CogView4's layout
    return attn, fused, text, image, rotary


@torch.no_grad()
def test_one_cogview4_attention_follows_where_a_wrong_rotation_or_norm_would_show(monkeypatch):
    attn, fused, text, image, rotary = one_attention()
    want = attn(image, text, image_rotary_emb=rotary)
    got = fused(image, text, image_rotary_emb=rotary)
    assert fused.processor.fused_calls == 1
    for g, w in zip(got, want):  # (image, text) outputs
        assert_follows(g, w, 0.01)
    # (the check can fail: the tables one row off, neighbouring pairs, or RMSNorm's statistics)
    shifted = tuple(torch.cat([t[1:], t[:1]]) for t in rotary)
    assert cosine(fused(image, text, image_rotary_emb=shifted)[0], want[0]) < 0.9999
    real = cogview4_attention.qk_norm_rope
    monkeypatch.setattr(cogview4_attention, "qk_norm_rope", lambda *a, **k: real(*a, **{**k, "split_halves": False}))
    assert cosine(fused(image, text, image_rotary_emb=rotary)[0], want[0]) < 0.9999
    monkeypatch.setattr(cogview4_attention, "qk_norm_rope", lambda *a, **k: real(*a, **{**k, "layer_norm": False}))
    assert cosine(fused(image, text, image_rotary_emb=rotary)[0], want[0]) < 0.9999


@torch.no_grad()
def test_cogview4_calls_it_cannot_fuse_go_to_the_stock_processor():
    attn, fused, text, image, rotary = one_attention()
    mask = torch.ones(1, 8)
    mask[:, 6:] = 0  # padded text tokens
    for kwargs in (dict(attention_mask=mask, image_rotary_emb=rotary),  # a text mask
                   dict(image_rotary_emb=tuple(t.to(BF16) for t in rotary)),  # bf16 tables
                   dict(image_rotary_emb=tuple(t[None] for t in rotary))):  # [1, S, D] tables
        want = attn(image, text, **kwargs)
        got = fused(image, text, **kwargs)
        assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert fused.processor.fused_calls == 0


def test_cogview4_heads_the_kernel_cannot_take_keep_the_stock_processor():
    # the class defaults' head_dim 40 (the e2e case cogview4_1024): not a head_dim the kernel's LayerNorm takes
    assert attention_prep_applies(cogview4(attention_head_dim=40)) == 0
    assert attention_prep_applies(cogview4()) == 2


@pytest.mark.parametrize("case, modules, fused_calls", [("cosmos-1.0", 4, 4), ("cosmos-2.5", 2, 2)])
@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_cosmos_processor_follows_the_stock_one(case, modules, fused_calls, quantized):
    # Cosmos 1.0: the self- and the text cross-attention of each block take the processor; Cosmos 2.5's
    # cross-attention is its image-context CosmosAttention (CosmosAttnProcessor2_5), left alone
    cls_name, config, make_inputs = VIDEO_CASES[case]
    torch.manual_seed(0)
    model = getattr(diffusers, cls_name)(**config).to(BF16).eval()
    perturb_qk_norm_weights(model)
    if quantized:
        quantize_(model, min_features=32)
    fused, got, want = run_fused_and_stock(model, make_inputs(), modules, fused_calls)
    assert isinstance(fused.transformer_blocks[0].attn1.processor, CosmosAttentionPrepProcessor)
    # diffusers' RMSNorm rounds the normed value and then its product with the weight, the kernel once: an
    # ulp here and there, which the int8 path's activation rounding carries a little further (0.999988)
    assert_follows(got, want, 0.01, min_cosine=0.99995)


@torch.no_grad()
def test_one_cosmos_attention_follows_where_a_wrong_rotation_or_norm_would_show(monkeypatch):
    cls_name, config, _ = VIDEO_CASES["cosmos-1.0"]
    torch.manual_seed(4)
    model = getattr(diffusers, cls_name)(**config).to(BF16).eval()
    perturb_qk_norm_weights(model)
    attn = model.transformer_blocks[0].attn1
    fused = copy.deepcopy(attn)
    fused.processor = CosmosAttentionPrepProcessor(fused.processor)
    x = torch.randn(1, 24, 128, dtype=BF16) * 3
    angles = torch.rand(24, 32) * 6.3
    rotary = (torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin())
    want = attn(x, image_rotary_emb=rotary)
    assert_follows(fused(x, image_rotary_emb=rotary), want, 0.01, min_cosine=0.99995)  # (the norm's rounding)
    assert fused.processor.fused_calls == 1
    # (the check can fail: the tables one row off, neighbouring pairs, k normalized with q's weight)
    shifted = tuple(torch.cat([t[1:], t[:1]]) for t in rotary)
    assert cosine(fused(x, image_rotary_emb=shifted), want) < 0.9999
    real = cosmos_attention.qk_norm_rope
    monkeypatch.setattr(cosmos_attention, "qk_norm_rope", lambda *a, **k: real(*a, **{**k, "split_halves": False}))
    assert cosine(fused(x, image_rotary_emb=rotary), want) < 0.9999
    monkeypatch.undo()
    # calls it does not take go to the stock processor: bf16 tables, a call autograd records
    calls = fused.processor.fused_calls
    table = tuple(t.to(BF16) for t in rotary)
    assert torch.equal(fused(x, image_rotary_emb=table), attn(x, image_rotary_emb=table))
    with torch.enable_grad():
        leaf = x.clone().requires_grad_()
        assert torch.equal(fused(leaf, image_rotary_emb=rotary), attn(leaf, image_rotary_emb=rotary))
    assert fused.processor.fused_calls == calls
    fused.norm_k.weight.copy_(fused.norm_q.weight)
    assert cosine(fused(x, image_rotary_emb=rotary), want) < 0.9999


def cogvideox_with_rotation(seed=0):
    """The tests' small CogVideoX (2 heads of 64) with the rotary embedding CogVideoX-5B uses, and inputs with
    tables for its 2 x 4 x 4 video tokens in CogVideoX's layout (each angle on a neighbouring pair)."""
    cls_name, config, make_inputs = MORE_CASES["cogvideox"]
    torch.manual_seed(seed)
    model = getattr(diffusers, cls_name)(**config, use_rotary_positional_embeddings=True).to(BF16).eval()
    perturb_qk_norm_weights(model)  # (weights and biases)
    angles = torch.rand(32, 32) * 6.3
    rotary = (angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1))
    return model, dict(make_inputs(), image_rotary_emb=rotary)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_cogvideox_processor_follows_the_stock_one(quantized):
    model, inputs = cogvideox_with_rotation()
    if quantized:
        quantize_(model, min_features=32)
    fused, got, want = run_fused_and_stock(model, inputs, modules=2)
    assert isinstance(fused.transformer_blocks[0].attn1.processor, CogVideoXAttentionPrepProcessor)
    assert_follows(got, want, 0.01)


def cogvideox_attention_inputs(scale=1.0, offset=0.0):
    """One CogVideoX attention call's inputs: text and video tokens and the video tokens' rotary tables
    (each angle on a neighbouring pair)."""
    text, video = torch.randn(1, 8, 128, dtype=BF16) * scale, torch.randn(1, 24, 128, dtype=BF16) * scale + offset
    angles = torch.rand(24, 32) * 6.3
    return text, video, (angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1))


@torch.no_grad()
def test_cogvideox_attention_output_reaches_the_projection_without_a_copy(monkeypatch):
    """q and k written token-major (as value is) make attention's output token-major, so the joined heads
    reach to_out[0] as a view of it; written heads-major (the stock layout) that join is a copy."""
    model, _ = cogvideox_with_rotation(5)
    fused = copy.deepcopy(model.transformer_blocks[0].attn1)
    fused.processor = CogVideoXAttentionPrepProcessor(fused.processor)
    seen = {}
    real_sdpa = cogview4_attention.F.scaled_dot_product_attention

    def sdpa(q, k, v, **kwargs):
        seen["attention"] = real_sdpa(q, k, v, **kwargs)
        return seen["attention"]

    monkeypatch.setattr(cogview4_attention.F, "scaled_dot_product_attention", sdpa)
    text, video, rotary = cogvideox_attention_inputs()
    shares = {}
    hook = fused.to_out[0].register_forward_pre_hook(
        lambda module, args: shares.__setitem__(fused.processor._qk_token_major,
                                                args[0].data_ptr() == seen["attention"].data_ptr()))
    token_major = fused(video, text, image_rotary_emb=rotary)
    monkeypatch.setattr(fused.processor, "_qk_token_major", False)
    heads_major = fused(video, text, image_rotary_emb=rotary)
    hook.remove()
    assert fused.processor.fused_calls == 2
    assert shares == {True: True, False: False}
    for a, b in zip(token_major, heads_major):
        assert_follows(a, b, 0.01)  # the same values either way (up to the attention kernel's strides)


@torch.no_grad()
def test_one_cogvideox_attention_follows_where_a_wrong_rotation_or_bias_would_show(monkeypatch):
    model, _ = cogvideox_with_rotation(5)
    attn = model.transformer_blocks[0].attn1
    fused = copy.deepcopy(attn)
    fused.processor = CogVideoXAttentionPrepProcessor(fused.processor)
    text, video, rotary = cogvideox_attention_inputs(scale=3.0, offset=1.0)
    want = attn(video, text, image_rotary_emb=rotary)
    got = fused(video, text, image_rotary_emb=rotary)
    assert fused.processor.fused_calls == 1
    for g, w in zip(got, want):
        assert_follows(g, w, 0.01)
    # (the check can fail: the halves paired, the bias left out)
    real = cogview4_attention.qk_norm_rope
    monkeypatch.setattr(cogview4_attention, "qk_norm_rope",
                        lambda *a, **k: real(*a, **{**k, "split_halves": a[3] is not None}))  # (a[3]: the tables)
    assert cosine(fused(video, text, image_rotary_emb=rotary)[0], want[0]) < 0.9999
    monkeypatch.setattr(cogview4_attention, "qk_norm_rope", lambda *a, **k: real(*a, **{**k, "bias": None}))
    assert cosine(fused(video, text, image_rotary_emb=rotary)[0], want[0]) < 0.9999
