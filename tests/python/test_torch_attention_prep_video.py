"""int8dit.fuse_attention_prep on the video DiTs (CPU tensors through the C++ reference): HunyuanVideo's
attention (per-head q/k RMSNorm, rotation of the video tokens, video/text join, in dual- and
single-stream blocks) and Wan's self-attention (the rotation alone), bf16 and int8dit-quantized,
against the stock processors; which calls fall back. Skips without PyTorch or diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from attention_prep_helpers import assert_follows, perturb_qk_norm_weights, run_fused_and_stock, with_kernel_norms  # noqa: E402
from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.attention_prep import (attention_prep_applies, fuse_attention_prep,  # noqa: E402
                                          fused_attention_calls, unfuse_attention_prep)
from int8dit.torch.hunyuan_video_attention import (HunyuanVideo15AttentionPrepProcessor,  # noqa: E402
                                                   HunyuanVideoAttentionPrepProcessor)
from int8dit.torch.wan_attention import WanRotaryProcessor  # noqa: E402

BF16 = torch.bfloat16
# 2 dual-stream and 2 single-stream blocks, 2 heads of 32; a 3 x 4 x 4 latent video: 48 video tokens
HUNYUAN = dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=32, num_layers=2,
               num_single_layers=2, num_refiner_layers=1, patch_size=1, patch_size_t=1, text_embed_dim=64,
               pooled_projection_dim=32, rope_axes_dim=(8, 12, 12))


def hunyuan_inputs():
    mask = torch.ones(2, 8)
    mask[1, 6:] = 0  # the second prompt is two tokens shorter
    return dict(hidden_states=torch.randn(2, 4, 3, 4, 4, dtype=BF16), timestep=torch.tensor([500, 10]),
                encoder_hidden_states=torch.randn(2, 8, 64, dtype=BF16), encoder_attention_mask=mask,
                pooled_projections=torch.randn(2, 32, dtype=BF16), guidance=torch.tensor([3500.0, 3500.0]),
                return_dict=False)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_hunyuan_video_processor_matches_the_stock_one(quantized):
    torch.manual_seed(0)
    model = diffusers.HunyuanVideoTransformer3DModel(**HUNYUAN).to(BF16).eval()
    perturb_qk_norm_weights(model)
    if quantized:
        quantize_(model, min_features=32)
    # the 4 blocks' attentions; the token refiner's plain attention keeps its processor
    fused, got, want = run_fused_and_stock(model, hunyuan_inputs(), 4)
    assert isinstance(fused.single_transformer_blocks[0].attn.processor, HunyuanVideoAttentionPrepProcessor)
    assert_follows(got, want, 0.01)


def hunyuan_attention(model, single: bool):
    blocks = model.single_transformer_blocks if single else model.transformer_blocks
    attn = blocks[0].attn
    fused = copy.deepcopy(attn)
    fused.processor = HunyuanVideoAttentionPrepProcessor(fused.processor)
    return attn, fused


@pytest.mark.parametrize("single", [False, True])
@torch.no_grad()
def test_one_hunyuan_video_attention_matches_where_a_wrong_rotation_would_show(single, monkeypatch):
    """One attention module's own outputs, video and text: rotating the text tokens too, or the video
    tokens from the wrong table row, moves them by about their size."""
    torch.manual_seed(4)
    model = diffusers.HunyuanVideoTransformer3DModel(**HUNYUAN).to(BF16).eval()
    perturb_qk_norm_weights(model)
    stock, fused = hunyuan_attention(model, single)
    video = torch.randn(1, 48, 64, dtype=BF16) * 3
    text = torch.randn(1, 8, 64, dtype=BF16) * 3
    angles = torch.rand(48, 16) * 6.3
    rotary = (angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1))
    want = stock(video, text, image_rotary_emb=rotary)
    got = fused(video, text, image_rotary_emb=rotary)
    assert fused.processor.fused_calls == 1
    for g, w in zip(got, want):
        assert (g.float() - w.float()).abs().max().item() <= 0.02 * w.float().abs().max().item()
    # (the check can fail: the video tokens one table row off)
    shifted = (torch.cat([rotary[0][1:], rotary[0][:1]]), torch.cat([rotary[1][1:], rotary[1][:1]]))
    bad = fused(video, text, image_rotary_emb=shifted)
    assert (bad[0].float() - want[0].float()).abs().max().item() > 0.05 * want[0].float().abs().max().item()


@torch.no_grad()
def test_hunyuan_video_calls_without_text_or_rotation_follow_the_stock_processor():
    torch.manual_seed(5)
    model = diffusers.HunyuanVideoTransformer3DModel(**HUNYUAN).to(BF16).eval()
    perturb_qk_norm_weights(model)
    for single in (False, True):
        stock, fused = hunyuan_attention(model, single)
        video = torch.randn(2, 48, 64, dtype=BF16)
        text = torch.randn(2, 8, 64, dtype=BF16)
        for args in ((video, None), (video, text)):  # no rotation; without text also no output projection
            want, got = stock(*args), fused(*args)
            assert (got[1] is None) == (want[1] is None)
            for g, w in zip(got, want):
                if w is not None:
                    assert g.shape == w.shape
                    assert (g.float() - w.float()).abs().max().item() <= 0.02 * w.float().abs().max().item()
        assert fused.processor.fused_calls == 2
        # an empty text (the stock slices [:-0] would keep no video token) goes to the stock processor
        fused(video, text[:, :0])
        assert fused.processor.fused_calls == 2


# HunyuanVideo 1.5: 2 dual-stream blocks, 2 heads of 32, text-to-video
HUNYUAN15 = dict(in_channels=8, out_channels=4, num_attention_heads=2, attention_head_dim=32, num_layers=2,
                 num_refiner_layers=1, text_embed_dim=64, text_embed_2_dim=32, image_embed_dim=32,
                 rope_axes_dim=(8, 12, 12), task_type="t2v")


def hunyuan15_inputs():
    mask = torch.ones(2, 8)
    mask[1, 6:] = 0  # the second prompt is two tokens shorter
    return dict(hidden_states=torch.randn(2, 8, 3, 4, 4, dtype=BF16), timestep=torch.tensor([500.0, 10.0], dtype=BF16),
                encoder_hidden_states=torch.randn(2, 8, 64, dtype=BF16), encoder_attention_mask=mask,
                encoder_hidden_states_2=torch.randn(2, 4, 32, dtype=BF16), encoder_attention_mask_2=torch.ones(2, 4),
                image_embeds=torch.zeros(2, 729, 32, dtype=BF16), return_dict=False)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_hunyuan_video_15_processor_matches_the_stock_one(quantized):
    torch.manual_seed(0)
    model = diffusers.HunyuanVideo15Transformer3DModel(**HUNYUAN15).to(BF16).eval()
    perturb_qk_norm_weights(model)
    if quantized:
        quantize_(model, min_features=32)
    fused, got, want = run_fused_and_stock(model, hunyuan15_inputs(), 2)
    assert isinstance(fused.transformer_blocks[0].attn.processor, HunyuanVideo15AttentionPrepProcessor)
    assert_follows(got, want, 0.01)


@torch.no_grad()
def test_one_hunyuan_video_15_attention_masks_the_padded_text_tokens_as_the_stock_one():
    torch.manual_seed(10)
    model = diffusers.HunyuanVideo15Transformer3DModel(**HUNYUAN15).to(BF16).eval()
    stock = model.transformer_blocks[0].attn
    fused = copy.deepcopy(stock)
    fused.processor = HunyuanVideo15AttentionPrepProcessor(fused.processor)
    video, text = torch.randn(1, 48, 64, dtype=BF16) * 3, torch.randn(1, 8, 64, dtype=BF16) * 3
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    angles = torch.rand(48, 16) * 6.3
    rotary = (angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1))
    want = stock(video, text, attention_mask=mask, image_rotary_emb=rotary)
    got = fused(video, text, attention_mask=mask, image_rotary_emb=rotary)
    assert fused.processor.fused_calls == 1
    for g, w in zip(got, want):
        assert (g.float() - w.float()).abs().max().item() <= 0.02 * w.float().abs().max().item()
    # (the check can fail: the padded text tokens attended to)
    unmasked = fused(video, text, attention_mask=torch.ones(1, 8), image_rotary_emb=rotary)
    assert (unmasked[0].float() - want[0].float()).abs().max().item() > 0.02 * want[0].float().abs().max().item()
    # without a text mask the stock processor cannot build its mask: the call is its to refuse
    with pytest.raises(Exception):
        fused(video, text, image_rotary_emb=rotary)
    assert fused.processor.fused_calls == 2  # (the refused call did not take the fused path)


WAN = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=4,
           text_dim=64, freq_dim=32, ffn_dim=128, num_layers=2, rope_max_seq_len=32)


def wan_model():
    """A small Wan in bf16 with its rotary tables in fp32, as from_pretrained(torch_dtype=bf16) keeps them."""
    model = diffusers.WanTransformer3DModel(**WAN).to(BF16).eval()
    model.rope.float()
    return model


def wan_inputs():
    return dict(hidden_states=torch.randn(2, 4, 3, 8, 8, dtype=BF16), timestep=torch.tensor([500, 20]),
                encoder_hidden_states=torch.randn(2, 8, 64, dtype=BF16), return_dict=False)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_wan_rotation_is_the_stock_one_bit_for_bit(quantized):
    torch.manual_seed(0)
    model = wan_model()
    if quantized:
        quantize_(model, min_features=32)
    # both attentions of each block change processor; only the self-attentions rotate, so they fuse
    fused = copy.deepcopy(model)
    assert fuse_attention_prep(fused) == 4
    inputs = wan_inputs()
    want, got = model(**inputs)[0], fused(**inputs)[0]
    assert fused_attention_calls(fused) == 2
    assert isinstance(fused.blocks[0].attn1.processor, WanRotaryProcessor)
    assert torch.equal(got, want)


@torch.no_grad()
def test_one_wan_attention_with_unpaired_tables_is_the_stock_one_bit_for_bit():
    """Wan reads cos at the pair's first channel and sin at its second; tables whose pairs differ show
    whether the kernel's tables were made to match (with the stock tables as they are, they would not)."""
    torch.manual_seed(6)
    attn = wan_model().blocks[0].attn1
    fused = copy.deepcopy(attn)
    fused.processor = WanRotaryProcessor(fused.processor)
    x = torch.randn(1, 40, 64, dtype=BF16) * 3
    rotary = (torch.randn(1, 40, 1, 32), torch.randn(1, 40, 1, 32))
    want = attn(x, rotary_emb=rotary)
    assert torch.equal(fused(x, rotary_emb=rotary), want)
    assert fused.processor.fused_calls == 1
    # the kernel's tables are made once for a pair of table objects and kept while it comes back
    tables = fused.processor._tables.of(*rotary)
    assert fused.processor._tables.of(*rotary) is tables
    # (the check can fail: the tables as they are)
    fused.processor._tables.of = lambda cos, sin: (cos.reshape(40, 32), sin.reshape(40, 32))
    assert not torch.equal(fused(x, rotary_emb=rotary), want)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_wan_norms_across_heads_run_in_the_rotation_kernel_where_they_fit(quantized, monkeypatch):
    """With heads of 64 (4 of them: a group of 32 kernel threads) q's and k's RMSNorms over all heads go into
    the rotation's kernel (norm_heads = heads): bit for bit the stock model with its q/k norms computed by the
    C++ reference, and within the norm's rounding of the stock model (torch's rms_norm sums in another
    order: an ulp here and there). With the test model's heads of 32, which the kernel's norm across heads
    does not take, PyTorch normalizes (the tests above)."""
    import int8dit.torch.wan_attention as wan_attention

    calls = []
    real = wan_attention.qk_norm_rope
    monkeypatch.setattr(wan_attention, "qk_norm_rope", lambda *a, **k: calls.append(k.get("norm_heads", 1)) or real(*a, **k))
    torch.manual_seed(3)
    model = diffusers.WanTransformer3DModel(**dict(WAN, num_attention_heads=4, attention_head_dim=64)).to(BF16).eval()
    model.rope.float()
    for block in model.blocks:  # weights away from 1, so that a head taking another head's part would show
        for norm in (block.attn1.norm_q, block.attn1.norm_k):
            norm.weight.data.copy_(torch.linspace(0.5, 1.5, norm.weight.numel()))
    if quantized:
        quantize_(model, min_features=32)
    fused, reference_norms = copy.deepcopy(model), with_kernel_norms(model, "blocks", 4)
    assert fuse_attention_prep(fused) == 4
    inputs = wan_inputs()
    got = fused(**inputs)[0]
    assert fused_attention_calls(fused) == 2 and calls == [4] * 4  # q and k of each block's self-attention
    calls.clear()
    assert torch.equal(got, reference_norms(**inputs)[0])
    assert_follows(got, model(**inputs)[0], 0.01)


def test_norms_across_heads_fuse_only_for_the_groups_the_kernel_was_measured_faster():
    """fused_processor.across_heads_norm: Wan 1.3B's 12 heads of 128, Wan 2.2 TI2V's 24, LTX-Video 2B's 32
    heads of 64 and 12 heads of 64 (96 threads, three warps) fuse; Wan 14B's 40 heads of 128 (640 threads,
    measured slower than PyTorch's norm), heads of 32 (not a head_dim of the kernel) and an fp32 weight keep
    PyTorch's norm."""
    from int8dit.torch.fused_processor import MAX_FUSED_NORM_THREADS, across_heads_norm

    x = torch.zeros(1, 2, 8, dtype=BF16)
    fits = {}
    for heads, d in ((12, 128), (24, 128), (32, 64), (40, 128), (2, 32), (12, 64)):
        norm = torch.nn.RMSNorm(heads * d, eps=1e-6).to(BF16)
        fits[(heads, d)] = across_heads_norm(norm, x, heads, d) is not None
    assert fits == {(12, 128): True, (24, 128): True, (32, 64): True, (40, 128): False, (2, 32): False,
                    (12, 64): True}
    assert MAX_FUSED_NORM_THREADS == 384
    fp32_norm = torch.nn.RMSNorm(12 * 128, eps=1e-6)  # (a weight in fp32, the activations bf16: PyTorch's)
    assert across_heads_norm(fp32_norm, x, 12, 128) is None


@torch.no_grad()
def test_wan_calls_it_cannot_fuse_go_to_the_stock_processor():
    torch.manual_seed(0)
    model = diffusers.WanTransformer3DModel(**WAN).to(BF16).eval()  # .to(bf16) cast the tables to bf16 too
    fused = copy.deepcopy(model)
    fuse_attention_prep(fused)
    inputs = wan_inputs()
    assert torch.equal(fused(**inputs)[0], model(**inputs)[0])
    assert fused_attention_calls(fused) == 0
    assert unfuse_attention_prep(fused) == 4
    assert type(fused.blocks[0].attn1.processor).__name__ == "WanAttnProcessor"


def test_attention_prep_applies_counts_the_video_models():
    hunyuan = diffusers.HunyuanVideoTransformer3DModel(**HUNYUAN)
    hunyuan15 = diffusers.HunyuanVideo15Transformer3DModel(**HUNYUAN15)
    wan = diffusers.WanTransformer3DModel(**WAN)
    assert [attention_prep_applies(m) for m in (hunyuan, hunyuan15, wan)] == [4, 2, 4]


@pytest.mark.parametrize("case, modules, fused_calls", [
    ("skyreels-v2-i2v", 4, 2),  # every attention changes processor; the two self-attentions rotate
    ("skyreels-v2-df", 4, 2),   # diffusion forcing: the self-attentions with the causal frame-block mask
])
@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_skyreels_v2_rotation_is_the_stock_one_bit_for_bit(case, modules, fused_calls, quantized):
    """SkyReels-V2's processor is diffusers' copy of Wan's (context parallelism aside): Wan's rotation
    processor, bit for bit, with the rotary tables in fp32 as from_pretrained keeps them."""
    import test_torch_more_diffusers_models as more

    cls_name, config, make_inputs = more.CASES[case]
    torch.manual_seed(0)
    model = getattr(diffusers, cls_name)(**config).to(BF16).eval()
    model.rope.float()
    if quantized:
        quantize_(model, min_features=32)
    fused = copy.deepcopy(model)
    assert fuse_attention_prep(fused) == modules
    inputs = make_inputs()
    want, got = model(**inputs)[0], fused(**inputs)[0]
    assert fused_attention_calls(fused) == fused_calls
    assert torch.equal(got, want)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_hunyuan_image_attention_takes_hunyuan_videos_prep(quantized):
    """HunyuanImage 2.1's processor is diffusers' copy of HunyuanVideo's: its prep follows it."""
    import test_torch_more_diffusers_models as more

    cls_name, config, make_inputs = more.CASES["hunyuanimage"]
    torch.manual_seed(0)
    model = getattr(diffusers, cls_name)(**config).to(BF16).eval()
    if quantized:
        quantize_(model, min_features=32)
    fused = copy.deepcopy(model)
    assert fuse_attention_prep(fused) == 2  # the double-stream block's and the single-stream block's
    inputs = make_inputs()
    want, got = model(**inputs)[0], fused(**inputs)[0]
    assert fused_attention_calls(fused) == 2
    assert_follows(got, want, 0.01)


LTX = dict(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=128,
           cross_attention_dim=512, num_layers=2, caption_channels=64)


def ltx_inputs():
    return dict(hidden_states=torch.randn(2, 2 * 4 * 4, 8, dtype=BF16), encoder_hidden_states=torch.randn(2, 8, 64, dtype=BF16),
                timestep=torch.tensor([500, 500]), encoder_attention_mask=torch.ones(2, 8), num_frames=2, height=4,
                width=4, return_dict=False)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_ltx_video_rotation_is_the_stock_one_bit_for_bit(quantized):
    """LTX-Video's self-attentions rotate a whole row of 512 channels (4 heads of 128) with tables that differ
    in every channel: the kernel takes them as rows of 256 channels, the same values as the stock processor."""
    from int8dit.torch.ltx_attention import LTXRotaryProcessor

    torch.manual_seed(0)
    model = diffusers.LTXVideoTransformer3DModel(**LTX).to(BF16).eval()
    if quantized:
        quantize_(model, min_features=32)
    fused = copy.deepcopy(model)
    assert attention_prep_applies(fused) == 4 and fuse_attention_prep(fused) == 4  # both attentions a block
    inputs = ltx_inputs()
    want, got = model(**inputs)[0], fused(**inputs)[0]
    assert fused_attention_calls(fused) == 2  # the self-attentions (the cross-attentions do not rotate)
    assert isinstance(fused.transformer_blocks[0].attn1.processor, LTXRotaryProcessor)
    assert torch.equal(got, want)
    assert unfuse_attention_prep(fused) == 4
    assert type(fused.transformer_blocks[0].attn1.processor).__name__ == "LTXVideoAttnProcessor"


@torch.no_grad()
def test_ltx_norms_across_heads_run_in_the_rotation_kernel_where_they_fit(monkeypatch):
    """q's and k's RMSNorms over all heads go into the rotation's kernel (qk_norm_rope with norm_heads =
    heads, one call per sample and tensor), the stock output bit for bit on the CPU; a norm the kernel does not
    take (its weight kept in fp32) leaves the norms to PyTorch and the rotation alone to the kernel."""
    import int8dit.torch.ltx_attention as ltx_attention

    calls = []
    real = ltx_attention.qk_norm_rope
    monkeypatch.setattr(ltx_attention, "qk_norm_rope", lambda *a, **k: calls.append(k.get("norm_heads", 1)) or real(*a, **k))
    torch.manual_seed(7)
    model = diffusers.LTXVideoTransformer3DModel(**LTX).to(BF16).eval()
    attn = model.transformer_blocks[0].attn1
    fused = copy.deepcopy(attn)
    fused.processor = ltx_attention.LTXRotaryProcessor(fused.processor)
    with torch.no_grad():  # weights away from 1, so that a head taking another head's part would show
        for norm in (attn.norm_q, attn.norm_k, fused.norm_q, fused.norm_k):
            norm.weight.copy_(torch.linspace(0.5, 1.5, norm.weight.numel()))
    x = torch.randn(2, 40, 512, dtype=BF16) * 3
    rotary = (torch.randn(2, 40, 512), torch.randn(2, 40, 512))
    assert torch.equal(fused(x, image_rotary_emb=rotary), attn(x, image_rotary_emb=rotary))
    assert calls == [4] * 4  # q and k, two samples, all four heads in one norm
    calls.clear()
    fused.norm_q.float()  # (a norm kept in fp32: PyTorch normalizes, as stock)
    attn.norm_q.float()
    assert torch.equal(fused(x, image_rotary_emb=rotary), attn(x, image_rotary_emb=rotary))
    assert calls and set(calls) == {1}


@torch.no_grad()
def test_one_ltx_attention_with_tables_of_their_own_per_sample_and_channel_is_the_stock_one_bit_for_bit():
    from int8dit.torch.ltx_attention import LTXRotaryProcessor, row_split

    torch.manual_seed(6)
    model = diffusers.LTXVideoTransformer3DModel(**LTX).to(BF16).eval()
    attn = model.transformer_blocks[0].attn1
    fused = copy.deepcopy(attn)
    fused.processor = LTXRotaryProcessor(fused.processor)
    assert row_split(512) == 256 and row_split(2048) == 256 and row_split(96) == 32 and row_split(24) == 0
    x = torch.randn(2, 40, 512, dtype=BF16) * 3
    rotary = (torch.randn(2, 40, 512), torch.randn(2, 40, 512))  # every sample, token and channel its own
    want = attn(x, image_rotary_emb=rotary)
    assert torch.equal(fused(x, image_rotary_emb=rotary), want)
    assert fused.processor.fused_calls == 1
    # (the check can fail: the first sample's tables for both samples)
    shared = (rotary[0][:1].expand(2, -1, -1).contiguous(), rotary[1][:1].expand(2, -1, -1).contiguous())
    assert not torch.equal(fused(x, image_rotary_emb=shared), want)
    # calls it does not take go to the stock processor: a cross-attention, bf16 tables, a mask
    calls = fused.processor.fused_calls
    text = torch.randn(2, 8, 512, dtype=BF16)
    assert torch.equal(fused(x, encoder_hidden_states=text), attn(x, encoder_hidden_states=text))
    half_tables = tuple(t.to(BF16) for t in rotary)
    assert torch.equal(fused(x, image_rotary_emb=half_tables), attn(x, image_rotary_emb=half_tables))
    assert fused.processor.fused_calls == calls
