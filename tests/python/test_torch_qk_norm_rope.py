"""int8dit.torch.attention.qk_norm_rope (CPU tensors through the C++ reference) against PyTorch's RMSNorm and
diffusers' apply_rotary_emb, its layouts (a strided view of a fused QKV output into a token slice of a
joined buffer) and refusals; and fuse_qk_norm_rope on a small diffusers Flux transformer, bf16 and
int8dit-quantized, against the stock processor. Skips without PyTorch or diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from diffusers.models.embeddings import apply_rotary_emb  # noqa: E402

from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.attention import qk_norm_rope  # noqa: E402
from int8dit.torch.flux_attention import FluxQKNormRopeProcessor, fuse_qk_norm_rope, unfuse_qk_norm_rope  # noqa: E402


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
    with pytest.raises(ValueError, match="cast the norm to the activations' dtype"):
        qk_norm_rope(x, torch.ones(64), 1e-6)
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


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0).item()


def fused_calls(model):
    return sum(m.processor.fused_calls for m in model.modules() if isinstance(getattr(m, "processor", None),
                                                                                FluxQKNormRopeProcessor))


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_flux_processor_matches_the_stock_one(quantized):
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(torch.bfloat16).eval()
    # weights away from their initial ones, so that the norms' weights matter
    for name, p in model.named_parameters():
        if "norm_" in name:
            p.copy_(1 + 0.2 * torch.randn_like(p))
    if quantized:
        quantize_(model, min_features=32)
    fused = copy.deepcopy(model)
    assert fuse_qk_norm_rope(fused) == 3  # one double-stream block, two single-stream blocks
    assert fuse_qk_norm_rope(fused) == 0  # already fused: left alone
    inputs = flux_inputs()
    want = model(**inputs)[0]
    got = fused(**inputs)[0]
    assert fused_calls(fused) == 3
    # (a wrong rotary offset for the image tokens moves this output by 0.5% of its largest value)
    assert cosine(got, want) > 0.99999
    assert (got.float() - want.float()).abs().max().item() <= 0.002 * want.float().abs().max().item()
    # back to the stock processors: the stock output exactly
    assert unfuse_qk_norm_rope(fused) == 3
    assert torch.equal(fused(**inputs)[0], want)


@torch.no_grad()
def test_flux_double_stream_attention_matches_the_stock_one():
    """One double-stream attention module, outputs compared where they are not averaged over a model: a
    wrong rotary offset or text/image order moves them by about half their largest value."""
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(torch.bfloat16).eval()
    for name, p in model.named_parameters():
        if "norm_" in name:
            p.copy_(1 + 0.2 * torch.randn_like(p))
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
    fuse_qk_norm_rope(fused)
    inputs = flux_inputs()
    # autograd on, with parameters that need a gradient: every call takes the stock path, also where
    # the attention's own input needs none (called on a detached input)
    got = fused(**inputs)[0]
    assert fused_calls(fused) == 0
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
    assert fused_calls(fused32) == 0


@torch.no_grad()
def test_chroma_with_a_text_mask_takes_the_fused_processor_too():
    # Chroma's blocks are FluxAttention with the stock processor and pass a padding mask to attention,
    # which the fused processor hands to dispatch_attention_fn as it is.
    torch.manual_seed(0)
    model = diffusers.ChromaTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=32, num_attention_heads=2,
        joint_attention_dim=64, axes_dims_rope=(8, 12, 12), approximator_num_channels=16, approximator_hidden_dim=64,
        approximator_layers=2).to(torch.bfloat16).eval()
    fused = copy.deepcopy(model)
    assert fuse_qk_norm_rope(fused) == 3
    img_ids = torch.stack([torch.zeros(16), torch.arange(16) // 4, torch.arange(16) % 4], dim=1).float()
    mask = torch.ones(1, 8 + 16)  # over the joined sequence, as ChromaPipeline builds it
    mask[:, 6:8] = 0  # two padded text tokens
    inputs = dict(hidden_states=torch.randn(1, 16, 16, dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(1, 8, 64, dtype=torch.bfloat16), timestep=torch.tensor([0.5]),
                  img_ids=img_ids, txt_ids=torch.zeros(8, 3), attention_mask=mask, return_dict=False)
    want = model(**inputs)[0]
    got = fused(**inputs)[0]
    assert fused_calls(fused) == 3
    assert cosine(got, want) > 0.99999
    unmasked = dict(inputs, attention_mask=None)
    assert not torch.allclose(model(**unmasked)[0], want)  # (the mask matters to this output)
