"""int8dit.fuse_attention_prep on small diffusers transformers (CPU tensors through the C++ reference):
Flux's and Chroma's FluxAttention (q/k RMSNorm, rotary embedding, text/image join) and SD3's and
SD3.5's joint attention (the join, SD3.5's q/k RMSNorm), bf16 and int8dit-quantized, against the stock
processors; which calls fall back; and unfusing. Skips without PyTorch or diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
F = torch.nn.functional
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from attention_prep_helpers import assert_follows, cosine, perturb_qk_norm_weights, run_fused_and_stock  # noqa: E402
from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.attention_prep import fuse_attention_prep, fused_attention_calls, unfuse_attention_prep  # noqa: E402
from int8dit.torch.flux_attention import FluxQKNormRopeProcessor  # noqa: E402
from int8dit.torch.joint_attention import JointAttentionPrepProcessor  # noqa: E402
from int8dit.torch.qwen_attention import QwenAttentionPrepProcessor  # noqa: E402


FLUX = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=32,
            num_attention_heads=4, joint_attention_dim=64, pooled_projection_dim=32, guidance_embeds=True,
            axes_dims_rope=(8, 12, 12))
IMAGE_TOKENS, TEXT_TOKENS = 64, 16


def flux_inputs():
    # positions that make the rotation turn (all-zero ids would make it the identity)
    img_ids = torch.stack([torch.zeros(IMAGE_TOKENS), torch.arange(IMAGE_TOKENS) // 8, torch.arange(IMAGE_TOKENS) % 8],
                          dim=1).float()
    return dict(hidden_states=torch.randn(1, IMAGE_TOKENS, 16, dtype=torch.bfloat16),
                encoder_hidden_states=torch.randn(1, TEXT_TOKENS, 64, dtype=torch.bfloat16),
                pooled_projections=torch.randn(1, 32, dtype=torch.bfloat16), timestep=torch.tensor([0.5]),
                guidance=torch.tensor([3.5]), img_ids=img_ids, txt_ids=torch.zeros(TEXT_TOKENS, 3),
                return_dict=False)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_flux_processor_matches_the_stock_one(quantized):
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(torch.bfloat16).eval()
    perturb_qk_norm_weights(model)
    if quantized:
        quantize_(model, min_features=32)
    inputs = flux_inputs()
    fused, got, want = run_fused_and_stock(model, inputs, 3)  # one double-stream block, two single-stream
    assert fuse_attention_prep(fused) == 0  # already fused: left alone
    # (a wrong rotary offset for the image tokens moves this output by 0.5% of its largest value)
    assert_follows(got, want, 0.002)
    # back to the stock processors: the stock output exactly
    assert unfuse_attention_prep(fused) == 3
    assert torch.equal(fused(**inputs)[0], want)


@torch.no_grad()
def test_flux_double_stream_attention_matches_the_stock_one():
    """One double-stream attention module, outputs compared where they are not averaged over a model: a
    wrong rotary offset or text/image order moves them by about half their largest value."""
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(torch.bfloat16).eval()
    perturb_qk_norm_weights(model)
    attn = model.transformer_blocks[0].attn
    fused = copy.deepcopy(attn)
    fused.processor = FluxQKNormRopeProcessor(fused.processor)
    inputs = flux_inputs()
    rotary = model.pos_embed(torch.cat([inputs["txt_ids"], inputs["img_ids"]]))
    image = torch.randn(1, IMAGE_TOKENS, 128, dtype=torch.bfloat16) * 3
    text = torch.randn(1, TEXT_TOKENS, 128, dtype=torch.bfloat16) * 3
    want = attn(image, text, image_rotary_emb=rotary)
    got = fused(image, text, image_rotary_emb=rotary)
    assert fused.processor.fused_calls == 1
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert (g.float() - w.float()).abs().max().item() <= 0.02 * w.float().abs().max().item()


def test_flux_processor_hands_calls_it_does_not_fuse_to_the_stock_one():
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(torch.bfloat16).eval()
    fused = copy.deepcopy(model)
    fuse_attention_prep(fused)
    inputs = flux_inputs()
    # autograd on, with parameters that need a gradient: every call takes the stock path, also where
    # the attention's own input needs none (called on a detached input)
    got = fused(**inputs)[0]
    assert fused_attention_calls(fused) == 0
    assert torch.equal(got, model(**inputs)[0])
    attn = fused.transformer_blocks[0].attn
    image, text = torch.randn(1, IMAGE_TOKENS, 128, dtype=torch.bfloat16), torch.randn(1, TEXT_TOKENS, 128,
                                                                                        dtype=torch.bfloat16)
    out = attn(image, text)
    assert out[0].requires_grad and attn.processor.fused_calls == 0
    # fp32: likewise
    model32, fused32 = model.float(), copy.deepcopy(fused).float()
    inputs32 = {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                for k, v in inputs.items()}
    with torch.no_grad():
        assert torch.equal(fused32(**inputs32)[0], model32(**inputs32)[0])
    assert fused_attention_calls(fused32) == 0


@torch.no_grad()
def test_chroma_with_a_text_mask_takes_the_fused_processor_too():
    # Chroma's blocks are FluxAttention with the stock processor and pass a padding mask to attention,
    # which the fused processor hands to dispatch_attention_fn as it is.
    torch.manual_seed(0)
    model = diffusers.ChromaTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=32, num_attention_heads=2,
        joint_attention_dim=64, axes_dims_rope=(8, 12, 12), approximator_num_channels=16, approximator_hidden_dim=64,
        approximator_layers=2).to(torch.bfloat16).eval()
    img_ids = torch.stack([torch.zeros(16), torch.arange(16) // 4, torch.arange(16) % 4], dim=1).float()
    mask = torch.ones(1, 8 + 16)  # over the joined sequence, as ChromaPipeline builds it
    mask[:, 6:8] = 0  # two padded text tokens
    inputs = dict(hidden_states=torch.randn(1, 16, 16, dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(1, 8, 64, dtype=torch.bfloat16), timestep=torch.tensor([0.5]),
                  img_ids=img_ids, txt_ids=torch.zeros(8, 3), attention_mask=mask, return_dict=False)
    _, got, want = run_fused_and_stock(model, inputs, 3)
    assert cosine(got, want) > 0.99999
    unmasked = dict(inputs, attention_mask=None)
    assert not torch.allclose(model(**unmasked)[0], want)  # (the mask matters to this output)


# SD3-medium's blocks (no q/k norm) and SD3.5's (q/k RMSNorm), small: 2 joint blocks, 4 heads of 32
SD3 = dict(sample_size=16, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=32, num_attention_heads=4,
           joint_attention_dim=64, caption_projection_dim=128, pooled_projection_dim=32, out_channels=4,
           pos_embed_max_size=32)


def sd3_inputs(batch=2):
    return dict(hidden_states=torch.randn(batch, 4, 16, 16, dtype=torch.bfloat16),
                encoder_hidden_states=torch.randn(batch, 12, 64, dtype=torch.bfloat16),
                pooled_projections=torch.randn(batch, 32, dtype=torch.bfloat16),
                timestep=torch.tensor([10, 500][:batch]), return_dict=False)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_sd3_joint_attention_join_is_the_stock_one_bit_for_bit(quantized):
    # No q/k norm: the kernel only moves rows, so the forward is the stock one exactly.
    torch.manual_seed(0)
    model = diffusers.SD3Transformer2DModel(**SD3).to(torch.bfloat16).eval()
    if quantized:
        quantize_(model, min_features=64)
    fused, got, want = run_fused_and_stock(model, sd3_inputs(), 2)
    assert isinstance(fused.transformer_blocks[0].attn.processor, JointAttentionPrepProcessor)
    assert torch.equal(got, want)


@torch.no_grad()
def test_sd35_joint_attention_with_qk_rmsnorm_matches_the_stock_one():
    torch.manual_seed(0)
    model = diffusers.SD3Transformer2DModel(**SD3, qk_norm="rms_norm").to(torch.bfloat16).eval()
    perturb_qk_norm_weights(model)
    attn = model.transformer_blocks[0].attn
    assert type(attn.norm_q).__name__ == "RMSNorm" and attn.norm_q.weight is not None
    _, got, want = run_fused_and_stock(model, sd3_inputs(), 2)
    # diffusers' RMSNorm rounds x * rstd to bf16 before the weight, the kernel once after it
    assert_follows(got, want, 0.01)


@torch.no_grad()
def test_one_sd3_attention_module_matches_where_a_wrong_join_would_show():
    """The attention module's own outputs: text and image tokens swapped in the join, or one of q/k/v
    joined wrong, moves them by about their size."""
    torch.manual_seed(1)
    model = diffusers.SD3Transformer2DModel(**SD3).to(torch.bfloat16).eval()
    attn = model.transformer_blocks[0].attn
    fused = copy.deepcopy(attn)
    fused.processor = JointAttentionPrepProcessor(fused.processor)
    image = torch.randn(2, 64, 128, dtype=torch.bfloat16)
    text = torch.randn(2, 12, 128, dtype=torch.bfloat16)
    want = attn(image, text)
    got = fused(image, text)
    assert fused.processor.fused_calls == 1
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    # (the check can fail: the same call with the text tokens joined first differs)
    from int8dit.torch.attention import join_heads

    real = join_heads
    try:
        import int8dit.torch.joint_attention as ja

        ja.join_heads = lambda x, out: real(x.flip(1), out)  # tokens reversed inside each part
        assert not torch.equal(fused(image, text)[0], want[0])
    finally:
        ja.join_heads = real


@torch.no_grad()
def test_sd3_attention_output_reaches_the_projection_without_a_copy(monkeypatch):
    """The fused processor's token-major q/k/v make attention's output token-major too, so the image
    tokens reach to_out[0] as a view of it; the stock processor's heads-major cat makes that a copy."""
    torch.manual_seed(0)
    model = diffusers.SD3Transformer2DModel(**SD3).to(torch.bfloat16).eval()
    stock = model.transformer_blocks[0].attn
    fused = copy.deepcopy(stock)
    fused.processor = JointAttentionPrepProcessor(fused.processor)
    seen = {}
    real_sdpa = F.scaled_dot_product_attention

    def sdpa(q, k, v, **kwargs):
        seen["attention"] = real_sdpa(q, k, v, **kwargs)
        return seen["attention"]

    monkeypatch.setattr(F, "scaled_dot_product_attention", sdpa)
    image = torch.randn(1, 64, 128, dtype=torch.bfloat16)
    text = torch.randn(1, 12, 128, dtype=torch.bfloat16)
    shares = {}
    for name, attn in (("stock", stock), ("fused", fused)):
        hook = attn.to_out[0].register_forward_pre_hook(
            lambda module, args, name=name: shares.__setitem__(
                name, args[0].data_ptr() == seen["attention"].data_ptr()))
        attn(image, text)
        hook.remove()
    assert fused.processor.fused_calls == 1
    assert shares == {"stock": False, "fused": True}


def test_sd3_calls_it_cannot_fuse_go_to_the_stock_processor_and_unfuse_restores_it():
    torch.manual_seed(0)
    model = diffusers.SD3Transformer2DModel(**SD3).to(torch.bfloat16).eval()
    fused = copy.deepcopy(model)
    fuse_attention_prep(fused)
    inputs = sd3_inputs()
    assert torch.equal(fused(**inputs)[0], model(**inputs)[0])  # autograd on, trainable weights: stock path
    assert fused_attention_calls(fused) == 0
    assert unfuse_attention_prep(fused) == 2
    assert type(fused.transformer_blocks[0].attn.processor).__name__ == "JointAttnProcessor2_0"


def test_attention_prep_applies_counts_without_changing_anything():
    from int8dit.torch.attention_prep import attention_prep_applies

    flux = diffusers.FluxTransformer2DModel(**FLUX)
    sd3 = diffusers.SD3Transformer2DModel(**SD3)
    assert (attention_prep_applies(flux), attention_prep_applies(sd3)) == (3, 2)
    assert type(flux.transformer_blocks[0].attn.processor).__name__ == "FluxAttnProcessor"
    assert attention_prep_applies(torch.nn.Sequential(torch.nn.Linear(4, 4))) == 0  # the e2e bench skips such models
    fuse_attention_prep(sd3)
    assert attention_prep_applies(sd3) == 0  # already fused

    class FluxAttnProcessor:  # a user's own processor that happens to share the stock one's name
        def __call__(self, *args, **kwargs):
            raise AssertionError("not called here")

    attn = flux.transformer_blocks[0].attn
    attn.processor = FluxAttnProcessor()
    assert attention_prep_applies(flux) == 2 and fuse_attention_prep(flux) == 2
    assert type(attn.processor) is FluxAttnProcessor


QWEN = dict(patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=32, num_attention_heads=2,
            joint_attention_dim=64, axes_dims_rope=(8, 12, 12))


def qwen_inputs(mask=None):
    return dict(hidden_states=torch.randn(1, 64, 16, dtype=torch.bfloat16),
                encoder_hidden_states=torch.randn(1, 8, 64, dtype=torch.bfloat16),
                encoder_hidden_states_mask=torch.ones(1, 8) if mask is None else mask,
                timestep=torch.tensor([0.5]), img_shapes=[(1, 8, 8)], return_dict=False)


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_qwen_image_processor_matches_the_stock_one(quantized):
    torch.manual_seed(0)
    model = diffusers.QwenImageTransformer2DModel(**QWEN).to(torch.bfloat16).eval()
    perturb_qk_norm_weights(model)
    if quantized:
        quantize_(model, min_features=32)
    mask = torch.ones(1, 8)
    mask[:, 6:] = 0  # two padded text tokens
    fused, got, want = run_fused_and_stock(model, qwen_inputs(mask), 2)
    assert isinstance(fused.transformer_blocks[0].attn.processor, QwenAttentionPrepProcessor)
    assert_follows(got, want, 0.01)


@torch.no_grad()
def test_one_qwen_attention_module_matches_where_a_wrong_rotation_would_show():
    torch.manual_seed(3)
    model = diffusers.QwenImageTransformer2DModel(**QWEN).to(torch.bfloat16).eval()
    perturb_qk_norm_weights(model)
    attn = model.transformer_blocks[0].attn
    fused = copy.deepcopy(attn)
    fused.processor = QwenAttentionPrepProcessor(fused.processor)
    rotary = model.pos_embed([(1, 8, 8)], max_txt_seq_len=8, device=torch.device("cpu"))
    image = torch.randn(1, 64, 64, dtype=torch.bfloat16) * 3
    text = torch.randn(1, 8, 64, dtype=torch.bfloat16) * 3
    want = attn(hidden_states=image, encoder_hidden_states=text, image_rotary_emb=rotary)
    got = fused(hidden_states=image, encoder_hidden_states=text, image_rotary_emb=rotary)
    assert fused.processor.fused_calls == 1
    for g, w in zip(got, want):
        assert (g.float() - w.float()).abs().max().item() <= 0.02 * w.float().abs().max().item()
    # the tables are made once for a rotary pair and kept while it comes back
    tables = fused.processor._image_tables.of(rotary[0])
    assert fused.processor._image_tables.of(rotary[0]) is tables
    # (the check can fail: the image tokens rotated by the text table's angles differ by about their size)
    swapped = (rotary[1][:1].expand(64, -1).contiguous(), rotary[1])
    bad = fused(hidden_states=image, encoder_hidden_states=text, image_rotary_emb=swapped)
    assert (bad[0].float() - want[0].float()).abs().max().item() > 0.05 * want[0].float().abs().max().item()


@pytest.mark.parametrize("name, modules", [
    ("longcat-image", 2), ("bria", 2), ("ovis-image", 2),  # one double-stream block, one single-stream
    ("bria-fibo", 1),  # its single-stream block's plain Attention (no head_dim) keeps its processor
])
@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_the_flux_processor_copies_of_other_models_take_the_flux_prep(name, modules, quantized):
    """LongCat-Image's, Bria's, Bria FIBO's and Ovis-Image's attention processors are diffusers' copies of
    FluxAttnProcessor: the Flux prep follows each, and unfusing gives the stock output back."""
    import test_torch_more_diffusers_models as more

    cls_name, config, make_inputs = more.CASES[name]
    torch.manual_seed(0)
    model = getattr(diffusers, cls_name)(**config).to(torch.bfloat16).eval()
    perturb_qk_norm_weights(model)
    if quantized:
        quantize_(model, min_features=32)
    inputs = make_inputs()
    fused, got, want = run_fused_and_stock(model, inputs, modules)
    assert_follows(got, want, 0.002)
    assert unfuse_attention_prep(fused) == modules
    assert torch.equal(fused(**inputs)[0], want)
