"""int8dit.fuse_attention_prep on FLUX.2 (CPU tensors through the C++ reference): its double-stream
attention (per-head q/k RMSNorm, text/image join, rotation over the joined sequence, both output
projections) and its single-stream parallel attention (q/k/v and the MLP input from one projection),
bf16 and int8dit-quantized, against the stock processors. Skips without PyTorch or diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from attention_prep_helpers import perturb_qk_norm_weights, run_fused_and_stock  # noqa: E402
from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.attention_prep import attention_prep_applies  # noqa: E402
from int8dit.torch.flux2_attention import Flux2ParallelQKNormRopeProcessor, Flux2QKNormRopeProcessor  # noqa: E402

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


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_flux2_processors_give_the_stock_forward_bit_for_bit(quantized):
    # torch.nn.RMSNorm (FLUX.2's q/k norm) rounds once after the weight on the CPU, as the kernel does,
    # so here the whole forward is the stock one exactly (on the GPU an ulp apart: its rsqrt)
    torch.manual_seed(0)
    model = diffusers.Flux2Transformer2DModel(**FLUX2).to(BF16).eval()
    perturb_qk_norm_weights(model)
    if quantized:
        quantize_(model, min_features=32)
    fused, got, want = run_fused_and_stock(model, flux2_inputs(), 3)
    assert isinstance(fused.transformer_blocks[0].attn.processor, Flux2QKNormRopeProcessor)
    assert isinstance(fused.single_transformer_blocks[0].attn.processor, Flux2ParallelQKNormRopeProcessor)
    assert torch.equal(got, want)


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
