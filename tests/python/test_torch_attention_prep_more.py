"""int8dit.fuse_attention_prep on FLUX.2 and Z-Image (CPU tensors through the C++ reference), bf16 and
int8dit-quantized, against the stock processors: FLUX.2's double-stream attention (per-head q/k
RMSNorm, text/image join, rotation over the joined sequence, both output projections) and its
single-stream parallel attention (q/k/v and the MLP input from one projection); Z-Image's per-head
q/k RMSNorm and complex rotation with one table per sample. Skips without PyTorch or diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from attention_prep_helpers import assert_follows, perturb_qk_norm_weights, run_fused_and_stock  # noqa: E402
from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.attention_prep import attention_prep_applies  # noqa: E402
from int8dit.torch.flux2_attention import Flux2ParallelQKNormRopeProcessor, Flux2QKNormRopeProcessor  # noqa: E402
from int8dit.torch.z_image_attention import ZImageAttentionPrepProcessor  # noqa: E402

BF16 = torch.bfloat16
# 1 double-stream and 2 single-stream blocks, 4 heads of 32, FLUX.2's four rotary axes
FLUX2 = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=32,
             num_attention_heads=4, joint_attention_dim=64, timestep_guidance_channels=32, mlp_ratio=3.0,
             axes_dims_rope=(8, 8, 8, 8), guidance_embeds=True)


def flux2_inputs():
    # positions that make the rotation turn
    img_ids = torch.stack([torch.zeros(64), torch.arange(64) // 8, torch.arange(64) % 8, torch.zeros(64)], dim=1)
    return dict(hidden_states=torch.randn(1, 64, 16, dtype=BF16), encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                timestep=torch.tensor([0.5]), img_ids=img_ids.float(), txt_ids=torch.zeros(8, 4),
                guidance=torch.tensor([3.5]), return_dict=False)


@pytest.mark.parametrize("quantized, dtype", [(False, BF16), (True, BF16), (True, torch.float16)])
@torch.no_grad()
def test_flux2_processors_give_the_stock_forward_bit_for_bit(quantized, dtype, monkeypatch):
    # torch.nn.RMSNorm (FLUX.2's q/k norm) rounds once after the weight on the CPU, as the kernel does,
    # so in bf16 the whole forward is the stock one exactly (on the GPU an ulp apart: its rsqrt). fp16's
    # 3 more mantissa bits show the rsqrt's last-bit differences on an element now and then (one of
    # q's 18432 in block 0 here): within the norm's rounding. Quantized, the single-stream processor
    # also joins attention and SwiGLU into to_out's int8 rows (flux2_attention.parallel_output), which
    # quantizes the fp32 product: test_torch_concat_swiglu.py checks that end; here it is held to the
    # stock end, so that the rest is seen bit for bit.
    from int8dit.torch import flux2_attention

    monkeypatch.setattr(flux2_attention, "_stock_swiglu", lambda act: False)
    torch.manual_seed(0)
    model = diffusers.Flux2Transformer2DModel(**FLUX2).to(dtype).eval()
    perturb_qk_norm_weights(model)
    if quantized:
        quantize_(model, min_features=32)
    inputs = {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.dtype == BF16 else v for k, v in flux2_inputs().items()}
    fused, got, want = run_fused_and_stock(model, inputs, 3)
    assert got.dtype == dtype
    assert isinstance(fused.transformer_blocks[0].attn.processor, Flux2QKNormRopeProcessor)
    assert isinstance(fused.single_transformer_blocks[0].attn.processor, Flux2ParallelQKNormRopeProcessor)
    if dtype == BF16:
        assert torch.equal(got, want)
    else:
        assert_follows(got, want, 0.01)


def rotary_for(tokens, head_dim=32):
    angles = torch.rand(tokens, head_dim // 2) * 6.3
    return angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1)


@torch.no_grad()
def test_one_parallel_attention_matches_where_a_wrong_rotation_or_norm_would_show():
    torch.manual_seed(7)
    model = diffusers.Flux2Transformer2DModel(**FLUX2).to(BF16).eval()
    perturb_qk_norm_weights(model)
    stock = model.single_transformer_blocks[0].attn
    fused = copy.deepcopy(stock)
    fused.processor = Flux2ParallelQKNormRopeProcessor(fused.processor)
    x = torch.randn(1, 72, 128, dtype=BF16) * 3
    rotary = rotary_for(72)
    want = stock(x, image_rotary_emb=rotary)
    assert torch.equal(fused(x, image_rotary_emb=rotary), want)
    assert fused.processor.fused_calls == 1
    # (the check can fail: the table one row off, or q's norm weight on k)
    shifted = tuple(torch.cat([t[1:], t[:1]]) for t in rotary)
    assert not torch.equal(fused(x, image_rotary_emb=shifted), want)
    fused.norm_k.weight.copy_(fused.norm_q.weight)
    assert not torch.equal(fused(x, image_rotary_emb=rotary), want)


@torch.no_grad()
def test_an_attention_without_a_text_stream_still_projects_its_output():
    """FLUX.2's processor applies to_out with or without text tokens (FLUX.1's leaves it to the block
    without them); the fused one ends as FLUX.2's."""
    from diffusers.models.transformers.transformer_flux2 import Flux2Attention
    from int8dit.torch.flux_attention import FluxQKNormRopeProcessor

    torch.manual_seed(8)
    attn = Flux2Attention(query_dim=128, heads=4, dim_head=32).to(BF16).eval()
    fused = copy.deepcopy(attn)
    fused.processor = Flux2QKNormRopeProcessor(fused.processor)
    x = torch.randn(1, 64, 128, dtype=BF16)
    rotary = rotary_for(64)
    want = attn(x, image_rotary_emb=rotary)
    assert torch.equal(fused(x, image_rotary_emb=rotary), want)
    assert fused.processor.fused_calls == 1
    # (the check can fail: FLUX.1's end returns attention's output unprojected)
    fused.processor._output = FluxQKNormRopeProcessor._output
    assert not torch.equal(fused(x, image_rotary_emb=rotary), want)


def test_attention_prep_applies_counts_flux2s_attentions():
    model = diffusers.Flux2Transformer2DModel(**FLUX2)
    assert attention_prep_applies(model) == 3


# Z-Image: 1 noise refiner, 1 context refiner and 2 main blocks, 4 heads of 32
Z_IMAGE = dict(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=128, n_layers=2, n_refiner_layers=1,
               n_heads=4, n_kv_heads=4, cap_feat_dim=64, axes_dims=[8, 12, 12], axes_lens=[64, 32, 32])


def z_image_inputs():
    # two samples with prompts of different lengths: each sample's tokens have positions of their own
    return dict(x=[torch.randn(16, 1, 16, 16, dtype=BF16), torch.randn(16, 1, 16, 16, dtype=BF16)],
                t=torch.tensor([0.5, 0.3]), cap_feats=[torch.randn(8, 64, dtype=BF16), torch.randn(13, 64, dtype=BF16)],
                return_dict=False)


def flat(outputs):
    return torch.cat([o.float().flatten() for o in outputs])


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_z_image_processor_matches_the_stock_one(quantized):
    torch.manual_seed(0)
    model = diffusers.ZImageTransformer2DModel(**Z_IMAGE).to(BF16).eval()
    if quantized:
        quantize_(model, min_features=32)
    # With the norms' initial unit weights the roundings agree, and the forward (projections, per-sample
    # rotation, masks, output) is the stock one bit for bit.
    fused, got, want = run_fused_and_stock(model, z_image_inputs(), 4)
    assert isinstance(fused.layers[0].attention.processor, ZImageAttentionPrepProcessor)
    assert torch.equal(flat(got), flat(want))
    # Trained weights: diffusers' RMSNorm rounds x * rstd to bf16 before the weight, the kernel once after
    # it; an ulp on most elements of q and k, through four blocks.
    perturb_qk_norm_weights(model)
    _, got, want = run_fused_and_stock(model, z_image_inputs(), 4)
    assert_follows(flat(got), flat(want), 0.01, min_cosine=0.9999)


@torch.no_grad()
def test_one_z_image_attention_rotates_each_sample_with_its_own_table():
    torch.manual_seed(9)
    model = diffusers.ZImageTransformer2DModel(**Z_IMAGE).to(BF16).eval()
    perturb_qk_norm_weights(model)
    stock = model.layers[0].attention
    fused = copy.deepcopy(stock)
    fused.processor = ZImageAttentionPrepProcessor(fused.processor)
    x = torch.randn(2, 40, 128, dtype=BF16) * 3
    freqs = torch.polar(torch.ones(2, 40, 16), torch.rand(2, 40, 16) * 6.3)  # a table per sample
    want = stock(x, freqs_cis=freqs)
    got = fused(x, freqs_cis=freqs)
    assert fused.processor.fused_calls == 1
    assert (got.float() - want.float()).abs().max().item() <= 0.02 * want.float().abs().max().item()
    # one table for the batch takes one call for both samples, with the same result as two equal tables
    one = freqs[:1]
    assert torch.equal(fused(x, freqs_cis=one), fused(x, freqs_cis=one.expand(2, -1, -1).clone()))
    # (the check can fail: the first sample's table for both)
    bad = fused(x, freqs_cis=torch.cat([freqs[:1], freqs[:1]]))
    assert (bad[1].float() - want[1].float()).abs().max().item() > 0.05 * want.float().abs().max().item()


def test_attention_prep_applies_counts_z_images_attentions():
    assert attention_prep_applies(diffusers.ZImageTransformer2DModel(**Z_IMAGE)) == 4


@torch.no_grad()
def test_a_quantized_flux2_with_the_single_stream_end_fused_follows_the_stock_forward():
    # every processor fused, the single-stream end through concat_swiglu_quantize: within the rounding of
    # the product (quantized in fp32 where the stock path rounds SiLU's output and the product to bf16)
    torch.manual_seed(0)
    model = diffusers.Flux2Transformer2DModel(**FLUX2).to(BF16).eval()
    perturb_qk_norm_weights(model)
    quantize_(model, min_features=32)
    fused, got, want = run_fused_and_stock(model, flux2_inputs(), 3)
    assert isinstance(fused.single_transformer_blocks[0].attn.processor, Flux2ParallelQKNormRopeProcessor)
    assert not torch.equal(got, want)  # (the end did run: the stock end gives these bits exactly, above)
    assert_follows(got, want, 0.05, min_cosine=0.9999)
