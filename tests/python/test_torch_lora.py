"""int8dit.fuse_lora (CPU tensors through the C++ reference): a LoRA fused into int8dit-quantized layers
(with and without SmoothQuant) and into layers kept in float, against the float model with the
update added and then quantized; alphas, prefixes, the refusals that leave the model unchanged, and a
small Flux model end to end. Skips without PyTorch."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

import int8dit  # noqa: E402
from int8dit.torch import Linear, fuse_lora, quantize_, quantize_weight  # noqa: E402

BF16 = torch.bfloat16


def lora_for(layer, rank=4, scale=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(rank, layer.in_features, generator=g) * scale
    b = torch.randn(layer.out_features, rank, generator=g) * scale
    return a.to(torch.bfloat16), b.to(torch.bfloat16)


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(64, 32)
        self.out = torch.nn.Linear(32, 16)


@pytest.mark.parametrize("smooth", [False, True])
@torch.no_grad()
def test_a_quantized_layer_gets_the_weights_of_the_adapted_float_layer_quantized(smooth):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    factors = torch.rand(64) + 0.5 if smooth else None
    layer = Linear.from_float(linear, factors)
    model = torch.nn.Module()
    model.proj = layer
    a, b = lora_for(layer)
    storage = layer.weight.data_ptr()
    report = fuse_lora(model, {"proj.lora_A.weight": a, "proj.lora_B.weight": b}, scale=0.7)
    assert report.quantized_layers == ["proj"] and report.float_layers == [] and report.layers == 1
    # what the function promises: the dequantized weight plus the update, quantized again
    base = quantize_weight(linear.weight, factors)
    dequantized = base[0].float() * base[1][:, None]
    update = (b.float() @ a.float()) * 0.7
    want_q, want_scale = quantize_weight(dequantized + update * (factors[None, :] if smooth else 1))
    assert torch.equal(layer.weight, want_q) and torch.equal(layer.weight_scale, want_scale)
    assert layer.weight.data_ptr() == storage  # written in place: CUDA graphs see it
    # and within a step of quantizing the adapted float weight directly
    direct_q, direct_scale = quantize_weight(linear.weight.float() + update, factors)
    assert (layer.weight.int() - direct_q.int()).abs().max().item() <= 1
    assert torch.allclose(layer.weight_scale, direct_scale, rtol=1e-2)
    assert not torch.equal(layer.weight, base[0])  # the LoRA changed something


@torch.no_grad()
def test_float_layers_get_the_update_and_alphas_scale_it():
    torch.manual_seed(1)
    model = TwoLayers().to(torch.bfloat16)
    other = copy.deepcopy(model)
    before = model.out.weight.clone()
    a, b = lora_for(model.out, rank=8)
    state = {"transformer.out.lora_A.weight": a, "transformer.out.lora_B.weight": b,
             "transformer.out.alpha": torch.tensor(4.0)}
    report = fuse_lora(model, state, scale=2.0)
    assert report.float_layers == ["out"] and report.quantized_layers == []
    want = (before.float() + (b.float() @ a.float()) * 2.0 * 4.0 / 8).to(torch.bfloat16)
    assert torch.equal(model.out.weight, want)
    # diffusers' network_alphas (return_alphas=True) do the same
    fuse_lora(other, {k: v for k, v in state.items() if not k.endswith("alpha")}, scale=2.0,
              network_alphas={"transformer.out.alpha": 4.0})
    assert torch.equal(other.out.weight, want)


@torch.no_grad()
def test_keys_of_other_pipeline_components_are_left_and_reported():
    model = TwoLayers()
    a, b = lora_for(model.proj)
    state = {"transformer.proj.lora_A.weight": a, "transformer.proj.lora_B.weight": b,
             "text_encoder.layer.0.q.lora_A.weight": torch.zeros(4, 8)}
    report = fuse_lora(model, state)
    assert report.float_layers == ["proj"]
    assert report.other_components_keys == ["text_encoder.layer.0.q.lora_A.weight"]


@pytest.mark.parametrize("bad, message", [
    ({"nope.lora_A.weight": torch.zeros(4, 64), "nope.lora_B.weight": torch.zeros(32, 4)}, "nope: no such module"),
    ({"proj.lora_A.weight": torch.zeros(4, 63), "proj.lora_B.weight": torch.zeros(32, 4)}, "the layer 32 x 64"),
    ({"proj.lora_A.weight": torch.zeros(4, 64)}, "needs both lora_A.weight and lora_B.weight"),
    ({"proj.lora_A.weight": torch.zeros(4, 64), "proj.lora_B.weight": torch.zeros(32, 4),
      "proj.lora_magnitude_vector": torch.zeros(32)}, "DoRA magnitudes and LoRA biases are not supported"),
    ({}, "nothing to fuse"),
])
@torch.no_grad()
def test_bad_loras_are_refused_whole_and_change_nothing(bad, message):
    torch.manual_seed(2)
    model = TwoLayers()
    model.proj = Linear.from_float(model.proj)
    a, b = lora_for(model.out)
    good = {"out.lora_A.weight": a.float(), "out.lora_B.weight": b.float()}  # valid, before the bad entries
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=message):
        fuse_lora(model, {**good, **bad} if bad else {})
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@torch.no_grad()
def test_a_flux_lora_on_the_quantized_model_follows_the_lora_on_the_float_one():
    """The use this is for: a diffusers-named LoRA (q/k/v, the MLP, a single block's fused projections
    and a layer quantize_ keeps in bf16) on a quantized Flux, against the same LoRA added to the bf16
    model, which is then quantized."""
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")
    torch.manual_seed(3)
    model = diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=32,
        num_attention_heads=4, joint_attention_dim=64, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=(8, 12, 12)).to(torch.bfloat16).eval()
    paths = ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_v", "transformer_blocks.0.ff.net.0.proj",
             "single_transformer_blocks.0.proj_mlp", "single_transformer_blocks.0.proj_out", "proj_out"]
    state = {}
    for i, path in enumerate(paths):
        a, b = lora_for(model.get_submodule(path), rank=4, scale=0.3, seed=i)
        state[f"transformer.{path}.lora_A.weight"], state[f"transformer.{path}.lora_B.weight"] = a, b
    inputs = dict(hidden_states=torch.randn(1, 64, 16, dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(1, 8, 64, dtype=torch.bfloat16),
                  pooled_projections=torch.randn(1, 32, dtype=torch.bfloat16), timestep=torch.tensor([0.5]),
                  guidance=torch.tensor([3.5]), img_ids=torch.rand(64, 3) * 8, txt_ids=torch.zeros(8, 3),
                  return_dict=False)
    adapted_float = copy.deepcopy(model)
    fuse_lora(adapted_float, state)
    quantize_(adapted_float, min_features=32)
    want = adapted_float(**inputs)[0]
    quantized = copy.deepcopy(model)
    quantize_(quantized, min_features=32)
    without = quantized(**inputs)[0]
    report = int8dit.fuse_lora(quantized, state)
    assert report.float_layers == ["proj_out"] and len(report.quantized_layers) == 5
    got = quantized(**inputs)[0]

    def cosine(x, y):
        return torch.nn.functional.cosine_similarity(x.float().flatten(), y.float().flatten(), dim=0).item()

    assert cosine(got, want) > 0.9995
    assert cosine(without, want) < cosine(got, want) - 0.001  # the LoRA moved the output, and the fusion follows


@torch.no_grad()
def test_unfuse_puts_back_the_weights_before_any_lora_bit_for_bit():
    torch.manual_seed(4)
    model = TwoLayers().to(BF16)
    model.proj = Linear.from_float(model.proj)
    before = copy.deepcopy(model.state_dict())
    storage = model.proj.weight.data_ptr()
    first, second = [], []
    for layers, seed in ((first, 0), (second, 1)):
        for name in ("proj", "out"):
            a, b = lora_for(getattr(model, name), seed=seed)
            layers += [(f"{name}.lora_A.weight", a), (f"{name}.lora_B.weight", b)]
    int8dit.fuse_lora(model, dict(first), keep_original=True)
    int8dit.fuse_lora(model, dict(second), scale=0.5, keep_original=True)  # a second adapter on top
    changed = model.state_dict()
    assert not torch.equal(changed["proj.weight"], before["proj.weight"])
    assert int8dit.unfuse_lora(model) == 2
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.proj.weight.data_ptr() == storage  # in place: CUDA graphs see it
    assert int8dit.unfuse_lora(model) == 0  # nothing kept any more
    # without keep_original there is nothing to put back
    int8dit.fuse_lora(model, dict(first))
    assert int8dit.unfuse_lora(model) == 0 and not torch.equal(model.state_dict()["proj.weight"], before["proj.weight"])
