"""int8dit.torch.swiglu_quantize and the gated-MLP rewrite (quantize_(fuse_swiglu=True)) on CPU tensors
(the C++ reference): the op against its definition, strided and half-of-one-projection inputs, bad
calls, and Z-Image's and FLUX.2's feed-forwards against the unfused quantized model. Skips without
PyTorch; the model tests skip without diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.torch import PackedSwigluMLP, SwigluMLP, quantize_, quantize_rows, swiglu_quantize  # noqa: E402

BF16 = torch.bfloat16


def definition(gate, up, smooth=None):
    """silu(gate) * up in double, rounded once to fp32, quantized by quantize_rows (the reference's own)."""
    v = (torch.nn.functional.silu(gate.double()) * up.double()).float()
    return quantize_rows(v, smooth)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@torch.no_grad()
def test_swiglu_quantize_is_its_definition(dtype):
    torch.manual_seed(0)
    gate, up = torch.randn(2, 7, 40, dtype=dtype) * 3, torch.randn(2, 7, 40, dtype=dtype)
    for smooth in (None, torch.rand(40) + 0.5):
        q, scale = swiglu_quantize(gate, up, smooth)
        want_q, want_scale = definition(gate, up, smooth)
        assert q.shape == (2, 7, 40) and scale.shape == (2, 7)
        assert torch.equal(q, want_q) and torch.equal(scale, want_scale)
    # (the gate is the one SiLU applies to)
    assert not torch.equal(swiglu_quantize(up, gate)[0], swiglu_quantize(gate, up)[0])


@torch.no_grad()
def test_the_halves_of_one_projection_and_strided_rows_are_read_in_place():
    torch.manual_seed(1)
    h = torch.randn(9, 96, dtype=BF16)
    q, scale = swiglu_quantize(h[:, :48], h[:, 48:])  # FLUX.2: gate and up as the halves of linear_in's output
    want_q, want_scale = definition(h[:, :48].contiguous(), h[:, 48:].contiguous())
    assert torch.equal(q, want_q) and torch.equal(scale, want_scale)


def test_opcheck_and_compiled_calls():
    gate, up = torch.randn(3, 16, dtype=BF16), torch.randn(3, 16, dtype=BF16)
    torch.library.opcheck(torch.ops.int8dit.swiglu_quantize.default, (gate, up, None))
    compiled = torch.compile(lambda g, u: swiglu_quantize(g, u), fullgraph=True, backend="aot_eager")
    q, scale = compiled(gate, up)
    q2, scale2 = swiglu_quantize(gate, up)
    assert torch.equal(q, q2) and torch.equal(scale, scale2)


def test_bad_calls_are_refused_with_what_to_change():
    g = torch.randn(4, 16, dtype=BF16)
    with pytest.raises(ValueError, match="they must match in shape, dtype and device"):
        swiglu_quantize(g, torch.randn(4, 8, dtype=BF16))
    with pytest.raises(ValueError, match="must be bfloat16 or float16"):
        swiglu_quantize(g.float(), g.float())
    with pytest.raises(ValueError, match="smooth"):
        swiglu_quantize(g, g, torch.ones(8))


diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")


def z_image():
    return diffusers.ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=192, n_layers=2, n_refiner_layers=1, n_heads=4,
        n_kv_heads=4, cap_feat_dim=64, axes_dims=[16, 16, 16], axes_lens=[64, 32, 32]).to(BF16).eval()


def z_image_inputs():
    return dict(x=[torch.randn(16, 1, 16, 16, dtype=BF16), torch.randn(16, 1, 16, 16, dtype=BF16)],
                t=torch.tensor([0.5, 0.3]), cap_feats=[torch.randn(8, 64, dtype=BF16), torch.randn(13, 64, dtype=BF16)],
                return_dict=False)


def flux2():
    return diffusers.Flux2Transformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=32, num_attention_heads=4,
        joint_attention_dim=64, timestep_guidance_channels=32, axes_dims_rope=(8, 8, 8, 8)).to(BF16).eval()


def flux2_inputs():
    img_ids = torch.stack([torch.zeros(64), torch.arange(64) // 8, torch.arange(64) % 8, torch.zeros(64)], dim=1)
    return dict(hidden_states=torch.randn(1, 64, 16, dtype=BF16), encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                timestep=torch.tensor([0.5]), img_ids=img_ids.float(), txt_ids=torch.zeros(8, 4),
                guidance=torch.tensor([3.5]), return_dict=False)


def flat(out):
    return torch.cat([o.float().flatten() for o in out]) if isinstance(out, (list, tuple)) else out.float().flatten()


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(flat(a), flat(b), dim=0).item()


@pytest.mark.parametrize("name, build, inputs, mlps, cls", [
    ("z-image", z_image, z_image_inputs, 4, SwigluMLP),          # the noise and context refiners', the 2 layers'
    ("flux2", flux2, flux2_inputs, 2, PackedSwigluMLP),          # the double block's image and text MLPs
])
@torch.no_grad()
def test_fused_gated_mlps_follow_the_unfused_quantized_model(name, build, inputs, mlps, cls):
    torch.manual_seed(0)
    model = build()
    unfused, fused = copy.deepcopy(model), copy.deepcopy(model)
    assert quantize_(unfused, min_features=32, fuse_swiglu=False).swiglu_mlps == 0
    report = quantize_(fused, min_features=32)  # on by default
    assert report.swiglu_mlps == mlps and "SwiGLU MLPs" in str(report)
    assert sum(isinstance(m, cls) for m in fused.modules()) == report.swiglu_mlps
    assert fused.state_dict().keys() == unfused.state_dict().keys()  # the same children, the same checkpoint
    x = inputs()
    want, got = unfused(**x)[0], fused(**x)[0]
    # the fused path quantizes the fp32 product where the unfused one rounds SiLU and the product to bf16
    assert cosine(got, want) > 0.9999
    assert cosine(got, model(**x)[0]) > 0.999


@torch.no_grad()
def test_a_gated_mlp_computes_silu_of_w1_times_w3_and_falls_back_where_it_must():
    torch.manual_seed(2)
    model = z_image()
    quantize_(model, min_features=32, fuse_swiglu=True)
    mlp = model.layers[0].feed_forward
    assert isinstance(mlp, SwigluMLP)
    x = torch.randn(3, 10, 192, dtype=BF16)
    fused = mlp(x)
    unfused = mlp.w2(torch.nn.functional.silu(mlp.w1(x)) * mlp.w3(x))
    assert cosine(fused, unfused) > 0.9999
    # (the check can fail: w1 and w3 swapped)
    swapped = SwigluMLP({"w1": mlp.w1, "w2": mlp.w2, "w3": mlp.w3}, "w3", "w1", "w2")
    assert cosine(swapped(x), unfused) < 0.99
    # an input that needs a gradient takes the original modules
    with torch.enable_grad():
        assert torch.equal(mlp(x.requires_grad_()), unfused)


def gated_feed_forwards():
    """One of each other gated MLP fuse_swiglu_mlps knows, at widths int8dit quantizes."""
    from diffusers.models.attention import FeedForward, LuminaFeedForward
    from diffusers.models.transformers.auraflow_transformer_2d import AuraFlowFeedForward

    mlps = {"lumina2": LuminaFeedForward(dim=64, inner_dim=256, multiple_of=64),
            "auraflow": AuraFlowFeedForward(64, hidden_dim=384),
            "mochi (FeedForward, swiglu)": FeedForward(64, inner_dim=256, activation_fn="swiglu", bias=False)}
    try:  # (newer diffusers classes)
        from diffusers.models.transformers.transformer_hidream_image import HiDreamImageFeedForwardSwiGLU
        from diffusers.models.transformers.transformer_qwenimage21 import QwenImage21SwiGLUFeedForward
    except ImportError:
        return mlps
    mlps["hidream"] = HiDreamImageFeedForwardSwiGLU(64, hidden_dim=256)
    mlps["qwen-image-2.1"] = QwenImage21SwiGLUFeedForward(64, 256)
    return mlps


@pytest.mark.parametrize("name", sorted(gated_feed_forwards()))
@torch.no_grad()
def test_other_gated_feed_forwards_take_their_gate_and_up_from_the_right_place(name):
    """Lumina2 and AuraFlow name their three linears otherwise; diffusers' SwiGLU puts the gate in the
    second half of its projection. Each fused module follows the stock one quantized, and the same
    module with gate and up exchanged does not."""
    torch.manual_seed(3)
    stock = torch.nn.Sequential(gated_feed_forwards()[name]).to(BF16).eval()
    quantize_(stock, min_features=32, fuse_swiglu=False)
    fused = copy.deepcopy(stock)
    from int8dit.torch import fuse_swiglu_mlps

    assert fuse_swiglu_mlps(fused) == 1
    assert fused.state_dict().keys() == stock.state_dict().keys()
    x = torch.randn(2, 9, 64, dtype=BF16) * 2
    want, got = stock(x), fused(x)
    assert cosine(got, want) > 0.9999
    # (the check can fail: gate and up exchanged)
    mlp = fused[0]
    if isinstance(mlp, SwigluMLP):
        gate, up, down = mlp._roles
        mlp._roles = (up, gate, down)
        assert cosine(fused(x), want) < 0.99
    else:
        from int8dit.torch import swiglu

        real = swiglu._second_linear
        swiglu._second_linear = lambda down, gate, up: real(down, up, gate)
        try:
            assert cosine(fused(x), want) < 0.99
        finally:
            swiglu._second_linear = real


@torch.no_grad()
def test_a_fused_gated_mlp_compiles_whole_and_gives_the_eager_result():
    from diffusers.models.attention import LuminaFeedForward

    torch.manual_seed(5)
    model = torch.nn.Sequential(LuminaFeedForward(dim=64, inner_dim=256, multiple_of=64)).to(BF16).eval()
    quantize_(model, min_features=32, fuse_swiglu=True)
    assert isinstance(model[0], SwigluMLP)
    x = torch.randn(2, 9, 64, dtype=BF16)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x), model(x))
