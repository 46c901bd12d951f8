"""quantize_ as a drop-in on diffusers transformers beyond the four the benchmark times: SD3.5's
blocks (q/k RMSNorm, dual attention), AuraFlow, Sana (linear attention), CogView3-Plus, Lumina2, Chroma,
Qwen-Image, FLUX.2, Krea 2, Z-Image and the video transformers Wan, CogVideoX, LTX-Video, HunyuanVideo (1 and
1.5) and Mochi here, and 23 more image and video transformers in diffusers_cases_image.py and
diffusers_cases_video.py (CogView4, HiDream, HunyuanImage, ERNIE-Image, Qwen-Image 2.1, Bria, LongCat,
Ovis, GLM-Image, PRX; LTX-2, Kandinsky 5 and 6, SkyReels-V2, Wan VACE, Sana-Video, Cosmos, Allegro, Latte,
EasyAnimate, FramePack, OmniGen), small configurations on the CPU. What a user of one of them gets: the linear layers quantized, the
fused producers where the blocks are ones int8dit knows and the block's own code elsewhere, and an
output that follows bf16's. (The PyTorch layer patches diffusers' DiT, PixArt, SD3 and Flux blocks;
a patch that assumed something of every block would break these first.) Skips without PyTorch or
diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from int8dit.torch import quantize_  # noqa: E402
from diffusers_cases_image import IMAGE_CASES  # noqa: E402
from diffusers_cases_video import VIDEO_CASES  # noqa: E402

BF16 = torch.bfloat16
SD3 = dict(sample_size=16, patch_size=2, in_channels=4, num_layers=3, attention_head_dim=16, num_attention_heads=8,
           joint_attention_dim=64, caption_projection_dim=128, pooled_projection_dim=32, out_channels=4,
           pos_embed_max_size=32)


def sd3_inputs():
    return dict(hidden_states=torch.randn(2, 4, 16, 16, dtype=BF16), encoder_hidden_states=torch.randn(2, 12, 64, dtype=BF16),
                pooled_projections=torch.randn(2, 32, dtype=BF16), timestep=torch.tensor([10, 500]), return_dict=False)


def text_image_inputs(**extra):
    def make():
        return dict(hidden_states=torch.randn(1, 4, 16, 16, dtype=BF16), encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                    timestep=torch.tensor([500.0]), return_dict=False, **extra)
    return make


CASES = {
    "sd3.5 (q/k RMSNorm)": ("SD3Transformer2DModel", dict(SD3, qk_norm="rms_norm"), sd3_inputs),
    "sd3.5 (dual attention)": ("SD3Transformer2DModel", dict(SD3, qk_norm="rms_norm", dual_attention_layers=(0, 1)),
                               sd3_inputs),
    "auraflow": ("AuraFlowTransformer2DModel",
                 dict(sample_size=16, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=2,
                      attention_head_dim=16, num_attention_heads=4, joint_attention_dim=64, caption_projection_dim=64,
                      out_channels=4, pos_embed_max_size=64), text_image_inputs()),
    "sana": ("SanaTransformer2DModel",
             dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=32, num_layers=2,
                  num_cross_attention_heads=2, cross_attention_head_dim=32, cross_attention_dim=64, caption_channels=64,
                  mlp_ratio=2.5, sample_size=16, patch_size=1), text_image_inputs()),
    "cogview3-plus": ("CogView3PlusTransformer2DModel",
                      dict(patch_size=2, in_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=4,
                           out_channels=4, text_embed_dim=64, time_embed_dim=64, condition_dim=16, pos_embed_max_size=32,
                           sample_size=16),
                      lambda: dict(text_image_inputs()(), timestep=torch.tensor([500]),
                                   original_size=torch.tensor([[128.0, 128.0]]), target_size=torch.tensor([[128.0, 128.0]]),
                                   crop_coords=torch.tensor([[0.0, 0.0]]))),
    "lumina2": ("Lumina2Transformer2DModel",
                dict(sample_size=16, patch_size=2, in_channels=4, hidden_size=64, num_layers=2, num_refiner_layers=1,
                     num_attention_heads=4, num_kv_heads=2, multiple_of=16, norm_eps=1e-5, scaling_factor=1.0,
                     axes_dim_rope=(8, 4, 4), axes_lens=(64, 32, 32), cap_feat_dim=32),
                lambda: dict(hidden_states=torch.randn(1, 4, 16, 16, dtype=BF16), timestep=torch.tensor([0.5]),
                             encoder_hidden_states=torch.randn(1, 8, 32, dtype=BF16),
                             encoder_attention_mask=torch.ones(1, 8, dtype=torch.bool), return_dict=False)),
    "chroma": ("ChromaTransformer2DModel",
               dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=32,
                    num_attention_heads=2, joint_attention_dim=64, axes_dims_rope=(8, 12, 12), approximator_num_channels=16,
                    approximator_hidden_dim=64, approximator_layers=2),
               lambda: dict(hidden_states=torch.randn(1, 16, 16, dtype=BF16), encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                            timestep=torch.tensor([0.5]), img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(8, 3),
                            return_dict=False)),
    "qwen-image": ("QwenImageTransformer2DModel",
                   dict(patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=32,
                        num_attention_heads=2, joint_attention_dim=64, axes_dims_rope=(8, 12, 12)),
                   lambda: dict(hidden_states=torch.randn(1, 16, 16, dtype=BF16),
                                encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                                encoder_hidden_states_mask=torch.ones(1, 8), timestep=torch.tensor([0.5]),
                                img_shapes=[(1, 4, 4)], return_dict=False)),
    "mochi": ("MochiTransformer3DModel",
              dict(patch_size=2, num_attention_heads=2, attention_head_dim=32, num_layers=2, pooled_projection_dim=32,
                   in_channels=4, text_embed_dim=64, time_embed_dim=32, max_sequence_length=8),
              lambda: dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16), encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                           timestep=torch.tensor([500]), encoder_attention_mask=torch.ones(1, 8, dtype=torch.bool),
                           return_dict=False)),
    # Wan's condition embedder reads its time embedder's dtype from the first parameter
    # (next(iter(self.time_embedder.parameters()))): StopIteration while int8dit's weights were buffers.
    "wan": ("WanTransformer3DModel",
            dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=4,
                 text_dim=64, freq_dim=32, ffn_dim=128, num_layers=2, rope_max_seq_len=32),
            lambda: dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16), timestep=torch.tensor([500]),
                         encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), return_dict=False)),
    "cogvideox": ("CogVideoXTransformer3DModel",
                  dict(num_attention_heads=2, attention_head_dim=64, in_channels=4, out_channels=4, time_embed_dim=64,
                       text_embed_dim=64, num_layers=2, sample_width=8, sample_height=8, sample_frames=5, patch_size=2,
                       temporal_compression_ratio=4, max_text_seq_length=8),
                  lambda: dict(hidden_states=torch.randn(1, 2, 4, 8, 8, dtype=BF16),
                               encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), timestep=torch.tensor([500]),
                               return_dict=False)),
    "ltx-video": ("LTXVideoTransformer3DModel",
                  dict(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2,
                       attention_head_dim=32, cross_attention_dim=64, num_layers=2, caption_channels=64),
                  lambda: dict(hidden_states=torch.randn(1, 2 * 4 * 4, 8, dtype=BF16),
                               encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), timestep=torch.tensor([500]),
                               encoder_attention_mask=torch.ones(1, 8), num_frames=2, height=4, width=4,
                               return_dict=False)),
    "hunyuanvideo": ("HunyuanVideoTransformer3DModel",
                     dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=32, num_layers=1,
                          num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1, text_embed_dim=64,
                          pooled_projection_dim=32, rope_axes_dim=(8, 12, 12)),
                     lambda: dict(hidden_states=torch.randn(1, 4, 2, 4, 4, dtype=BF16), timestep=torch.tensor([500]),
                                  encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                                  encoder_attention_mask=torch.ones(1, 8), pooled_projections=torch.randn(1, 32, dtype=BF16),
                                  guidance=torch.tensor([3.5]), return_dict=False)),
    "hunyuanvideo-1.5": ("HunyuanVideo15Transformer3DModel",
                         dict(in_channels=8, out_channels=4, num_attention_heads=2, attention_head_dim=32, num_layers=2,
                              num_refiner_layers=1, text_embed_dim=64, text_embed_2_dim=32, image_embed_dim=32,
                              rope_axes_dim=(8, 12, 12), task_type="t2v"),
                         lambda: dict(hidden_states=torch.randn(1, 8, 3, 4, 4, dtype=BF16),
                                      timestep=torch.tensor([500.0], dtype=BF16),
                                      encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                                      encoder_attention_mask=torch.ones(1, 8),
                                      encoder_hidden_states_2=torch.randn(1, 4, 32, dtype=BF16),
                                      encoder_attention_mask_2=torch.ones(1, 4),
                                      image_embeds=torch.zeros(1, 729, 32, dtype=BF16), return_dict=False)),
    "flux2": ("Flux2Transformer2DModel",
              dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=32,
                   num_attention_heads=4, joint_attention_dim=64, timestep_guidance_channels=32,
                   axes_dims_rope=(8, 8, 8, 8)),
              lambda: dict(hidden_states=torch.randn(1, 64, 16, dtype=BF16), encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                           timestep=torch.tensor([0.5]), guidance=torch.tensor([3.5]), return_dict=False,
                           img_ids=torch.stack([torch.zeros(64), torch.arange(64) // 8, torch.arange(64) % 8,
                                                torch.zeros(64)], dim=1).float(), txt_ids=torch.zeros(8, 4))),
    # Krea 2: text features stacked over 3 tapped layers, a [text, image] sequence with (t, h, w) positions
    "krea2": ("Krea2Transformer2DModel",
              dict(in_channels=16, num_layers=2, attention_head_dim=32, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=256, timestep_embed_dim=32, text_hidden_dim=64, num_text_layers=3,
                   text_num_attention_heads=2, text_num_key_value_heads=2, text_intermediate_size=128,
                   num_layerwise_text_blocks=1, num_refiner_text_blocks=1, axes_dims_rope=(8, 12, 12)),
              lambda: dict(hidden_states=torch.randn(1, 64, 16, dtype=BF16),
                           encoder_hidden_states=torch.randn(1, 8, 3, 64, dtype=BF16), timestep=torch.tensor([0.5]),
                           position_ids=torch.cat([torch.zeros(8, 3), torch.stack(
                               [torch.zeros(64), torch.arange(64) // 8, torch.arange(64) % 8], dim=1).float()]),
                           return_dict=False)),
}
CASES.update(IMAGE_CASES)
CASES.update(VIDEO_CASES)


def as_loaded(model, dtype=BF16):
    """The model in ``dtype`` as from_pretrained(torch_dtype=dtype) gives it, which .to(dtype) alone does
    not: the modules the class names in _keep_in_fp32_modules stay fp32 (Kandinsky 5 feeds its time
    embedder fp32)."""
    keep = set(getattr(type(model), "_keep_in_fp32_modules", None) or ())
    # by each tensor's name, as diffusers matches them (Wan keeps its scale_shift_table parameters and its
    # rotary tables too), the kept ones from their values as made: not rounded to ``dtype`` on the way
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point():
            tensor.data = tensor.data.float() if keep.intersection(name.split(".")) else tensor.data.to(dtype)
    return model


def wake_zero_layers(model) -> list:
    """Give every nn.Linear whose weight is all zeros nn.Linear's default initialization, and return their
    names. Many DiTs zero their adaLN modulation or gates (adaLN-Zero) and some their final layer, so a
    freshly built one adds nothing in its blocks (or outputs zeros), and a cosine against it could not see a
    block that int8dit runs wrongly: with the layers woken, every block reaches the output."""
    woken = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not module.weight.any():
            module.reset_parameters()
            woken.append(name)
    return woken


def built(case: str, dtype=BF16):
    """The case's model as from_pretrained(torch_dtype=dtype) gives it (as_loaded), its zero-initialized
    layers woken, in eval mode, and the case's inputs function. Skips where diffusers lacks the class."""
    cls_name, config, inputs = CASES[case]
    cls = getattr(diffusers, cls_name, None)
    if cls is None:
        pytest.skip(f"diffusers {diffusers.__version__} has no {cls_name}")
    torch.manual_seed(0)
    model = cls(**config)
    wake_zero_layers(model)
    return as_loaded(model, dtype).eval(), inputs


def in_dtype(value, dtype):
    """The cases' bf16 input tensors (also inside lists and tuples) in ``dtype``; the rest as they are."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.dtype == BF16 else value
    if isinstance(value, (list, tuple)):
        return type(value)(in_dtype(v, dtype) for v in value)
    return value


@pytest.mark.parametrize("dtype", [BF16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("case", sorted(CASES))
@torch.no_grad()
def test_quantize_is_a_drop_in_on_more_diffusers_transformers(case, dtype):
    model, inputs = built(case, dtype)
    quantized = copy.deepcopy(model)
    report = quantize_(quantized, min_features=32)
    assert len(report.quantized) >= 10, report.quantized
    assert all(type(m).__name__ == "Linear" and type(m).__module__.startswith("int8dit")
               for name, m in quantized.named_modules() if name in report.quantized)
    x = {name: in_dtype(value, dtype) for name, value in inputs().items()}
    ref, out = model(**x)[0], quantized(**x)[0]
    assert out.shape == ref.shape and out.dtype == ref.dtype and torch.isfinite(out.float()).all()
    cosine = torch.nn.functional.cosine_similarity(out.float().flatten(), ref.float().flatten(), dim=0).item()
    assert cosine > 0.999, cosine


@pytest.mark.parametrize("case", sorted(CASES))
@torch.no_grad()
def test_quantize_twice_is_quantize_once(case):
    """A second quantize_ (a script that runs it again, a loaded checkpoint given it) finds nothing left to
    replace or fuse, and the model computes what it did."""
    model, inputs = built(case)
    quantize_(model, min_features=32)
    x = inputs()
    once = model(**x)[0]
    again = quantize_(model, min_features=32)
    assert not again.quantized
    assert (again.fused_norms, again.fused_blocks, again.gelu_mlps, again.concat_gelu_blocks, again.swiglu_mlps,
            again.modulation_once) == (0, 0, 0, 0, 0, 0)
    assert torch.equal(model(**x)[0], once)


def test_a_quantized_layer_shows_diffusers_an_int8_parameter():
    # What diffusers' code reads of a quantized module: its first parameter's dtype (int8: quantized, do
    # not cast the input to it), and the model's dtype, the first floating-point parameter's.
    from int8dit.torch import Linear

    lin = Linear.from_float(torch.nn.Linear(64, 32).to(BF16))
    params = dict(lin.named_parameters())
    assert list(params) == ["weight"] and params["weight"].dtype == torch.int8 and not params["weight"].requires_grad
    assert set(dict(lin.named_buffers())) == {"weight_scale", "bias"}
    assert set(lin.state_dict()) == {"weight", "weight_scale", "bias"}  # the saved layout as before
    model = diffusers.SD3Transformer2DModel(**SD3).to(BF16)
    quantize_(model, min_features=32)
    assert model.dtype == BF16
    lin.to(torch.float16)  # a cast leaves the int8 weight alone
    assert lin.weight.dtype == torch.int8


@torch.no_grad()
def test_quantize_is_a_drop_in_on_z_image():
    # Z-Image takes and returns lists (one tensor a sample, prompts of their own lengths)
    cls = getattr(diffusers, "ZImageTransformer2DModel", None)
    if cls is None:
        pytest.skip(f"diffusers {diffusers.__version__} has no ZImageTransformer2DModel")
    torch.manual_seed(0)
    model = cls(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=192, n_layers=2, n_refiner_layers=1,
                n_heads=4, n_kv_heads=4, cap_feat_dim=64, axes_dims=[16, 16, 16], axes_lens=[64, 32, 32]).to(BF16).eval()
    quantized = copy.deepcopy(model)
    report = quantize_(quantized, min_features=32)
    assert len(report.quantized) >= 20 and any(name.endswith("feed_forward.w2") for name in report.quantized)
    x = dict(x=[torch.randn(16, 1, 16, 16, dtype=BF16), torch.randn(16, 1, 16, 16, dtype=BF16)], t=torch.tensor([0.5, 0.3]),
             cap_feats=[torch.randn(8, 64, dtype=BF16), torch.randn(13, 64, dtype=BF16)], return_dict=False)
    ref, out = model(**x)[0], quantized(**x)[0]
    assert [o.shape for o in out] == [r.shape for r in ref]
    ref, out = torch.cat([r.float().flatten() for r in ref]), torch.cat([o.float().flatten() for o in out])
    assert torch.isfinite(out).all()
    assert torch.nn.functional.cosine_similarity(out, ref, dim=0).item() > 0.999


def test_the_layers_a_model_keeps_in_fp32_stay_in_float_unless_included():
    # Wan keeps its time embedder in fp32 (_keep_in_fp32_modules): quantize_ leaves those layers alone
    cls_name, config, _ = CASES["wan"]
    model = getattr(diffusers, cls_name)(**config)
    report = quantize_(model, min_features=32)
    kept = {n for n, why in report.skipped.items() if "_keep_in_fp32_modules" in why}
    assert kept == {"condition_embedder.time_embedder.linear_1", "condition_embedder.time_embedder.linear_2"}
    assert type(model.condition_embedder.time_embedder.linear_1) is torch.nn.Linear
    # naming them in include quantizes them all the same
    model = getattr(diffusers, cls_name)(**config)
    report = quantize_(model, include=["*time_embedder*"], min_features=32)
    assert sorted(report.quantized) == sorted(kept)


# whose stock blocks do not compile whole either: HiDream's routed MoE picks tokens by data-dependent counts,
# LTX-2.3's perturbed attention (spatio-temporal guidance) branches on a tensor's value
NOT_FULLGRAPH = {"hidream", "ltx2.3"}


def block_lists(model) -> list:
    """The blocks of the model's top-level ModuleLists (in a ModuleDict too, as FLUX.3 keeps its per-mode
    ones): what int8dit.bench.e2e's regional compilation compiles."""
    blocks = []
    for child in model.children():
        for candidate in (child.values() if isinstance(child, torch.nn.ModuleDict) else [child]):
            if isinstance(candidate, torch.nn.ModuleList):
                blocks += list(candidate)
    return blocks


@pytest.mark.parametrize("case", sorted(set(CASES) - NOT_FULLGRAPH))
@torch.no_grad()
def test_every_quantized_block_compiles_whole_and_gives_its_eager_output(case):
    """As int8dit.bench.e2e compiles a model's blocks (fullgraph): every block of the quantized model, with
    whatever int8dit gave it (fused forwards, norms, MLPs, int8 layers), traces without a graph break, and
    the model gives what it gave eagerly."""
    model, inputs = built(case)
    quantize_(model, min_features=32)
    blocks = block_lists(model)
    assert blocks
    x = inputs()
    eager = model(**x)[0]
    torch._dynamo.reset()
    try:
        for block in blocks:
            block.compile(fullgraph=True, backend="aot_eager")
        out = model(**x)[0]
    finally:
        torch._dynamo.reset()
    cosine = torch.nn.functional.cosine_similarity(out.float().flatten(), eager.float().flatten(), dim=0).item()
    assert cosine > 0.9999, cosine
