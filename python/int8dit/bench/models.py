"""Diffusion transformers of diffusers, built from their published configs with random weights (no
download), and inputs at the resolutions people run them at.

Each config is the ``transformer/config.json`` of the Hugging Face repository named beside it
(architecture keys only; keys of the file that only name the class or the diffusers version are left out).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# black-forest-labs/FLUX.1-dev, transformer/config.json
FLUX_DEV = dict(attention_head_dim=128, guidance_embeds=True, in_channels=64, joint_attention_dim=4096,
                num_attention_heads=24, num_layers=19, num_single_layers=38, patch_size=1, pooled_projection_dim=768,
                axes_dims_rope=(16, 56, 56))
# stabilityai/stable-diffusion-3-medium-diffusers, transformer/config.json
SD3_MEDIUM = dict(attention_head_dim=64, caption_projection_dim=1536, in_channels=16, joint_attention_dim=4096,
                  num_attention_heads=24, num_layers=24, out_channels=16, patch_size=2, pooled_projection_dim=2048,
                  pos_embed_max_size=192, sample_size=128)
# PixArt-alpha/PixArt-Sigma-XL-2-1024-MS, transformer/config.json
PIXART_SIGMA = dict(activation_fn="gelu-approximate", attention_bias=True, attention_head_dim=72,
                    attention_type="default", caption_channels=4096, cross_attention_dim=1152, dropout=0.0,
                    in_channels=4, interpolation_scale=2, norm_elementwise_affine=False, norm_eps=1e-6,
                    norm_num_groups=32, norm_type="ada_norm_single", num_attention_heads=16, num_embeds_ada_norm=1000,
                    num_layers=28, out_channels=8, patch_size=2, sample_size=128, upcast_attention=False,
                    use_additional_conditions=False)
# facebook/DiT-XL-2-512, transformer/config.json
DIT_XL_2_512 = dict(activation_fn="gelu-approximate", attention_bias=True, attention_head_dim=72, dropout=0.0,
                    in_channels=4, norm_elementwise_affine=False, norm_num_groups=32, norm_type="ada_norm_zero",
                    num_attention_heads=16, num_embeds_ada_norm=1000, num_layers=28, out_channels=8, patch_size=2,
                    sample_size=64, upcast_attention=False)
# Wan-AI/Wan2.1-T2V-1.3B-Diffusers, transformer/config.json
WAN21_T2V_1_3B = dict(added_kv_proj_dim=None, attention_head_dim=128, cross_attn_norm=True, eps=1e-6, ffn_dim=8960,
                      freq_dim=256, image_dim=None, in_channels=16, num_attention_heads=12, num_layers=30,
                      out_channels=16, patch_size=(1, 2, 2), qk_norm="rms_norm_across_heads", rope_max_seq_len=1024,
                      text_dim=4096)
# Wan-AI/Wan2.2-TI2V-5B-Diffusers, transformer/config.json (Wan 2.2's text/image to video model: 48 latent
# channels of its 4 x 16 x 16 VAE, 24 heads of 128, 30 layers)
WAN22_TI2V_5B = dict(added_kv_proj_dim=None, attention_head_dim=128, cross_attn_norm=True, eps=1e-6, ffn_dim=14336,
                     freq_dim=256, image_dim=None, in_channels=48, num_attention_heads=24, num_layers=30,
                     out_channels=48, patch_size=(1, 2, 2), qk_norm="rms_norm_across_heads", rope_max_seq_len=1024,
                     text_dim=4096)
# Tongyi-MAI/Z-Image-Turbo, transformer/config.json (the keys that differ from diffusers' defaults,
# which are this model's)
Z_IMAGE_TURBO = dict(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=3840, n_layers=30,
                     n_refiner_layers=2, n_heads=30, n_kv_heads=30, cap_feat_dim=2560, axes_dims=[32, 48, 48])

# black-forest-labs/FLUX.2-dev, transformer/config.json (32B parameters: 8 double-stream and 48
# single-stream blocks of 6144, 18432-wide gated MLPs; the values are also diffusers' defaults)
FLUX2_DEV = dict(patch_size=1, in_channels=128, num_layers=8, num_single_layers=48, attention_head_dim=128,
                 num_attention_heads=48, joint_attention_dim=15360, timestep_guidance_channels=256, mlp_ratio=3.0,
                 axes_dims_rope=(32, 32, 32, 32), rope_theta=2000, eps=1e-6, guidance_embeds=True)

# FLUX.3 (diffusers' Flux3Transformer2DModel, 0.42.1): diffusers' defaults for the class (~5.5B parameters:
# 5 per-mode blocks for each of text, image and reference tokens, then 28 joint blocks, all 3072 wide
# with 9216-wide gated MLPs; Qwen3-VL text features of 20480). No published transformer/config.json
# was checked here (no network).
FLUX3 = dict(in_channels=128, cond_in_channels=128, num_layers=5, num_single_layers=28, attention_head_dim=128,
             num_attention_heads=24, joint_attention_dim=20480, timestep_channels=256, mlp_ratio=3.0,
             axes_dims_rope=(32, 32, 32, 32), rope_theta=10000, eps=1e-6, flow_map=False)

# Krea 2 (diffusers' Krea2Transformer2DModel, 0.42.1): diffusers' defaults for the class (~11 B parameters:
# 28 single-stream blocks of 48 heads of 128 = 6144, grouped-query attention with 12 key/value heads,
# 16384-wide SwiGLU MLPs; the text encoder's hidden states of 2560 tapped at 12 layers). No published
# transformer/config.json was checked here (no network).
# LongCat-Image: diffusers' class defaults (Flux's double- and single-stream blocks under LongCat's names,
# a 3584-wide text stream)
LONGCAT_IMAGE = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                     num_attention_heads=24, joint_attention_dim=3584, pooled_projection_dim=3584,
                     axes_dims_rope=(16, 56, 56))
# CogView4 (2.85B: not the published 6B's config) and HunyuanImage 2.1 (17B): diffusers' class defaults
COGVIEW4 = dict(patch_size=2, in_channels=16, out_channels=16, num_layers=30, attention_head_dim=40,
                num_attention_heads=64, text_embed_dim=4096, time_embed_dim=512, condition_dim=256,
                pos_embed_max_size=128, sample_size=128, rope_axes_dim=(256, 256))
# THUDM/CogView4-6B's transformer: 28 blocks of 32 heads of 128 (hidden 4096), where the class defaults
# above have 30 blocks of 64 heads of 40.
COGVIEW4_6B = dict(COGVIEW4, num_layers=28, attention_head_dim=128, num_attention_heads=32)
HUNYUAN_IMAGE = dict(in_channels=64, out_channels=64, num_attention_heads=28, attention_head_dim=128, num_layers=20,
                     num_single_layers=40, num_refiner_layers=2, mlp_ratio=4.0, patch_size=(1, 1), qk_norm="rms_norm",
                     guidance_embeds=False, text_embed_dim=3584, text_embed_2_dim=None, rope_theta=256.0,
                     rope_axes_dim=(64, 64), use_meanflow=False)
KREA2 = dict(in_channels=64, num_layers=28, attention_head_dim=128, num_attention_heads=48, num_key_value_heads=12,
             intermediate_size=16384, timestep_embed_dim=256, text_hidden_dim=2560, num_text_layers=12,
             text_num_attention_heads=20, text_num_key_value_heads=20, text_intermediate_size=6912,
             num_layerwise_text_blocks=2, num_refiner_text_blocks=2, axes_dims_rope=(32, 48, 48), rope_theta=1000.0,
             norm_eps=1e-5)

# Qwen/Qwen-Image, transformer/config.json (20B parameters: 60 double-stream blocks of 24 heads of 128,
# Qwen2.5-VL features of 3584): diffusers' defaults for the class
QWEN_IMAGE = dict(patch_size=2, in_channels=64, out_channels=16, num_layers=60, attention_head_dim=128,
                  num_attention_heads=24, joint_attention_dim=3584, guidance_embeds=False, axes_dims_rope=(16, 56, 56))
# lodestones/Chroma1-HD, transformer/config.json (8.9B parameters: FLUX.1-schnell's 19 + 38 blocks with
# the modulation computed once by an approximator network): diffusers' defaults for the class
CHROMA = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
              num_attention_heads=24, joint_attention_dim=4096, axes_dims_rope=(16, 56, 56),
              approximator_num_channels=64, approximator_hidden_dim=5120, approximator_layers=5)

# LTX-Video (2B): diffusers' defaults for the class, which it documents as LTX-Video's (not checked against
# Lightricks/LTX-Video's transformer/config.json here: no network)
LTX_VIDEO = dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
                 attention_head_dim=64, cross_attention_dim=2048, num_layers=28, caption_channels=4096)

# HunyuanVideo (13B): diffusers' defaults for the class (hunyuanvideo-community/HunyuanVideo's, not
# checked against its transformer/config.json here: no network)
# THUDM/CogVideoX-5b's transformer: diffusers' class defaults (CogVideoX-2B's) with 42 blocks of 48 heads of 64
# and the 3D rotary embedding in place of the sin-cos positions.
COGVIDEOX_5B = dict(num_attention_heads=48, attention_head_dim=64, in_channels=16, out_channels=16, flip_sin_to_cos=True,
                    freq_shift=0, time_embed_dim=512, ofs_embed_dim=None, text_embed_dim=4096, num_layers=42,
                    dropout=0.0, attention_bias=True, sample_width=90, sample_height=60, sample_frames=49,
                    patch_size=2, patch_size_t=None, temporal_compression_ratio=4, max_text_seq_length=226,
                    activation_fn="gelu-approximate", timestep_activation_fn="silu", norm_elementwise_affine=True,
                    norm_eps=1e-5, spatial_interpolation_scale=1.875, temporal_interpolation_scale=1.0,
                    use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False, patch_bias=True)
# diffusers' class defaults for CosmosTransformer3DModel: Cosmos 1.0's 7B text-to-world transformer (28 blocks
# of 32 heads of 128, T5 features of 1024, the padding mask as an extra input channel).
COSMOS_1_0_7B = dict(in_channels=16, out_channels=16, num_attention_heads=32, attention_head_dim=128, num_layers=28,
                     mlp_ratio=4.0, text_embed_dim=1024, adaln_lora_dim=256, max_size=(128, 240, 240),
                     patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=True,
                     extra_pos_embed_type="learnable", use_crossattn_projection=False, crossattn_proj_in_channels=1024,
                     encoder_hidden_states_channels=1024, controlnet_block_every_n=None, img_context_dim_in=None,
                     img_context_num_tokens=256, img_context_dim_out=2048)
HUNYUAN_VIDEO = dict(in_channels=16, out_channels=16, num_attention_heads=24, attention_head_dim=128, num_layers=20,
                     num_single_layers=40, num_refiner_layers=2, mlp_ratio=4.0, patch_size=2, patch_size_t=1,
                     guidance_embeds=True, text_embed_dim=4096, pooled_projection_dim=768)


@dataclass
class ModelCase:
    name: str
    cls_name: str            # the diffusers class
    config: dict
    repo: str                # where the config comes from
    shape: str               # what the inputs stand for
    inputs: Callable         # (torch, device, dtype) -> kwargs of forward
    default: bool = True     # run when --models is not given (the video model is asked for by name)


def _flux_inputs(image_tokens: int, text_tokens: int = 512, channels: int = 64, text_dim: int = 4096,
                 pooled_dim: int = 768, guidance: bool = True):
    """Flux's inputs (and those of its copies): packed latents with (0, row, col) positions, the text
    encoder's features, a pooled projection and a guidance value where the model takes them
    (pooled_dim 0, guidance False: LongCat-Image takes neither)."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        side = int(image_tokens ** 0.5)
        ids = torch.zeros(side, side, 3, device=device)
        ids[..., 1] = torch.arange(side, device=device)[:, None]
        ids[..., 2] = torch.arange(side, device=device)[None, :]
        inputs = dict(
            hidden_states=torch.randn(1, image_tokens, channels, generator=g, device=device, dtype=dtype),
            encoder_hidden_states=torch.randn(1, text_tokens, text_dim, generator=g, device=device, dtype=dtype),
            timestep=torch.tensor([0.5], device=device, dtype=dtype),
            img_ids=ids.reshape(-1, 3), txt_ids=torch.zeros(text_tokens, 3, device=device), return_dict=False)
        if pooled_dim:
            inputs["pooled_projections"] = torch.randn(1, pooled_dim, generator=g, device=device, dtype=dtype)
        if guidance:
            inputs["guidance"] = torch.tensor([3.5], device=device, dtype=dtype)
        return inputs
    return make


def _flux2_inputs(image_tokens: int, text_tokens: int = 512, channels: int = 128, text_dim: int = 15360):
    """FLUX.2's inputs: packed latent patches (its VAE's 32 channels, 2 x 2 patches: 128), the Mistral
    features of the prompt (3 layers x 5120), and 4-axis positions (t, h, w, l): the image's on h and w,
    the text's on l, as its pipeline makes them."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        side = int(image_tokens ** 0.5)
        img_ids = torch.zeros(side, side, 4, device=device)
        img_ids[..., 1] = torch.arange(side, device=device)[:, None]
        img_ids[..., 2] = torch.arange(side, device=device)[None, :]
        txt_ids = torch.zeros(text_tokens, 4, device=device)
        txt_ids[:, 3] = torch.arange(text_tokens, device=device)
        return dict(hidden_states=torch.randn(1, image_tokens, channels, generator=g, device=device, dtype=dtype),
                    encoder_hidden_states=torch.randn(1, text_tokens, text_dim, generator=g, device=device, dtype=dtype),
                    timestep=torch.tensor([0.5], device=device, dtype=dtype),
                    guidance=torch.tensor([4.0], device=device, dtype=dtype),
                    img_ids=img_ids.reshape(-1, 4), txt_ids=txt_ids, return_dict=False)
    return make


def _flux3_inputs(image_tokens: int, text_tokens: int = 512, channels: int = 128, text_dim: int = 20480,
                  reference_tokens: int = 0):
    """FLUX.3's inputs: FLUX.2's packed latents and 4-axis positions, the prompt's stacked Qwen3-VL
    features (20480), a timestep in [0, 1] and no guidance input; with ``reference_tokens``, a reference
    image's VAE latents (image to image) at the same grid positions one step along t."""
    flux2 = _flux2_inputs(image_tokens, text_tokens, channels, text_dim)

    def make(torch, device, dtype):
        inputs = flux2(torch, device, dtype)
        del inputs["guidance"]
        if reference_tokens:
            g = torch.Generator(device=device).manual_seed(1)
            side = int(reference_tokens ** 0.5)
            grid = torch.arange(reference_tokens, device=device)
            inputs["image_cond_hidden_states"] = torch.randn(1, reference_tokens, channels, generator=g, device=device,
                                                             dtype=dtype)
            inputs["image_cond_ids"] = torch.stack([torch.ones_like(grid), grid // side, grid % side,
                                                    torch.zeros_like(grid)], dim=1).float()
        return inputs
    return make


def _cogview4_inputs(side: int, text_tokens: int = 256, channels: int = 16, text_dim: int = 4096):
    """CogView4's inputs: the latent image [1, channels, side/8, side/8] (2 x 2 patches: (side/16)^2
    tokens), its GLM text features, a timestep in [0, 1000] and SDXL-style size conditions."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        size = torch.tensor([[float(side), float(side)]], device=device)
        return dict(hidden_states=torch.randn(1, channels, side // 8, side // 8, generator=g, device=device, dtype=dtype),
                    encoder_hidden_states=torch.randn(1, text_tokens, text_dim, generator=g, device=device, dtype=dtype),
                    timestep=torch.tensor([500.0], device=device), original_size=size, target_size=size,
                    crop_coords=torch.zeros(1, 2, device=device), return_dict=False)
    return make


def _hunyuan_image_inputs(side: int, text_tokens: int = 256, channels: int = 64, text_dim: int = 3584):
    """HunyuanImage 2.1's inputs: the latent image [1, channels, side/32, side/32] (its 32x VAE, 1 x 1 patches),
    its Qwen2.5-VL text features with a mask of valid tokens (all of them), a timestep in [0, 1000]."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        return dict(hidden_states=torch.randn(1, channels, side // 32, side // 32, generator=g, device=device,
                                              dtype=dtype),
                    timestep=torch.tensor([500.0], device=device, dtype=dtype),
                    encoder_hidden_states=torch.randn(1, text_tokens, text_dim, generator=g, device=device, dtype=dtype),
                    encoder_attention_mask=torch.ones(1, text_tokens, device=device, dtype=torch.int64),
                    return_dict=False)
    return make


def _krea2_inputs(image_tokens: int, text_tokens: int = 512, channels: int = 64, text_layers: int = 12,
                  text_dim: int = 2560):
    """Krea 2's inputs: packed latent patches, the prompt's hidden states tapped at ``text_layers`` layers of
    its text encoder, a timestep in [0, 1], and (t, h, w) positions of the [text, image] sequence (the
    text's all zero, the image's its grid)."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        side = int(image_tokens ** 0.5)
        grid = torch.arange(image_tokens, device=device)
        image_ids = torch.stack([torch.zeros_like(grid), grid // side, grid % side], dim=1).float()
        return dict(hidden_states=torch.randn(1, image_tokens, channels, generator=g, device=device, dtype=dtype),
                    encoder_hidden_states=torch.randn(1, text_tokens, text_layers, text_dim, generator=g, device=device,
                                                      dtype=dtype),
                    timestep=torch.tensor([0.5], device=device, dtype=dtype),
                    position_ids=torch.cat([torch.zeros(text_tokens, 3, device=device), image_ids]), return_dict=False)
    return make


def _sd3_inputs(batch: int = 1):
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        return dict(hidden_states=torch.randn(batch, 16, 128, 128, generator=g, device=device, dtype=dtype),
                    encoder_hidden_states=torch.randn(batch, 333, 4096, generator=g, device=device, dtype=dtype),
                    pooled_projections=torch.randn(batch, 2048, generator=g, device=device, dtype=dtype),
                    timestep=torch.full((batch,), 500.0, device=device), return_dict=False)
    return make


def _pixart_inputs(batch: int = 1):
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        return dict(hidden_states=torch.randn(batch, 4, 128, 128, generator=g, device=device, dtype=dtype),
                    encoder_hidden_states=torch.randn(batch, 300, 4096, generator=g, device=device, dtype=dtype),
                    timestep=torch.full((batch,), 500, device=device),
                    added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)
    return make


def _dit_inputs(torch, device, dtype):
    g = torch.Generator(device=device).manual_seed(0)
    return dict(hidden_states=torch.randn(8, 4, 64, 64, generator=g, device=device, dtype=dtype),
                timestep=torch.full((8,), 500, device=device, dtype=torch.long),
                class_labels=torch.arange(8, device=device, dtype=torch.long) * 100, return_dict=False)


def _wan_inputs(frames: int, height: int, width: int, channels: int = 16, vae_scale: int = 8,
                per_token_timesteps: bool = False):
    """Wan's latent video for ``frames`` frames of height x width pixels (its VAE: 4x in time after the
    first frame, ``vae_scale`` in space, ``channels`` latent channels), 512 umT5 text tokens. With
    ``per_token_timesteps`` a timestep per video token as Wan 2.2 TI2V's pipeline gives them (its
    expand_timesteps): the first latent frame, the conditioning image, at 0, the others at 500."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        latent = (1, channels, (frames - 1) // 4 + 1, height // vae_scale, width // vae_scale)
        timestep = torch.tensor([500], device=device)
        if per_token_timesteps:  # (2 x 2 patches)
            frame_tokens = (latent[3] // 2) * (latent[4] // 2)
            timestep = torch.full((1, latent[2] * frame_tokens), 500, device=device)
            timestep[:, :frame_tokens] = 0
        return dict(hidden_states=torch.randn(*latent, generator=g, device=device, dtype=dtype),
                    timestep=timestep,
                    encoder_hidden_states=torch.randn(1, 512, 4096, generator=g, device=device, dtype=dtype),
                    return_dict=False)
    return make


def _ltx_video_inputs(frames: int, height: int, width: int, batch: int = 2, text_tokens: int = 128):
    """LTX-Video's packed latent tokens for ``frames`` frames of height x width pixels (its VAE: 8x in time
    after the first frame, 32x in space, 128 channels) and its T5 features (128 tokens, all valid), batch
    2: its pipeline stacks the conditional and unconditional passes. The rotary scale is the pipeline's
    at 25 frames a second."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        f, h, w = (frames - 1) // 8 + 1, height // 32, width // 32
        return dict(hidden_states=torch.randn(batch, f * h * w, 128, generator=g, device=device, dtype=dtype),
                    encoder_hidden_states=torch.randn(batch, text_tokens, 4096, generator=g, device=device, dtype=dtype),
                    timestep=torch.tensor([500] * batch, device=device),
                    encoder_attention_mask=torch.ones(batch, text_tokens, device=device),
                    num_frames=f, height=h, width=w, rope_interpolation_scale=(8 / 25, 32, 32), return_dict=False)
    return make


def _cogvideox_inputs(frames: int, height: int, width: int, head_dim: int = 64, channels: int = 16,
                      text_tokens: int = 226, text_dim: int = 4096, sample_size=(60, 90)):
    """CogVideoX 1.0's latent video for ``frames`` frames of height x width pixels ([B, F, C, H, W]; its VAE:
    4x in time after the first frame, 8x in space; 2 x 2 patches), T5 features of 226 tokens, one timestep,
    and the 3D rotary tables its pipeline makes for that grid (diffusers' get_3d_rotary_pos_embed, as
    CogVideoXPipeline._prepare_rotary_positional_embeddings). The pipeline crops the grid of the model's
    own sample size (``sample_size``, latent pixels) to the video's; at that size, the only one built here,
    the crop region is the whole grid (the pipeline module itself needs transformers to import)."""
    grid = (height // 16, width // 16)
    if grid != (sample_size[0] // 2, sample_size[1] // 2):
        raise ValueError(f"_cogvideox_inputs: {width}x{height} is not the model's sample size "
                         f"{sample_size[1] * 8}x{sample_size[0] * 8}, whose rotary crop region is the whole grid")

    def make(torch, device, dtype):
        from diffusers.models.embeddings import get_3d_rotary_pos_embed

        g = torch.Generator(device=device).manual_seed(0)
        latent_frames = (frames - 1) // 4 + 1
        crops = ((0, 0), grid)
        cos, sin = get_3d_rotary_pos_embed(embed_dim=head_dim, crops_coords=crops, grid_size=grid,
                                           temporal_size=latent_frames, device=device)
        return dict(hidden_states=torch.randn(1, latent_frames, channels, height // 8, width // 8, generator=g,
                                              device=device, dtype=dtype),
                    encoder_hidden_states=torch.randn(1, text_tokens, text_dim, generator=g, device=device, dtype=dtype),
                    timestep=torch.tensor([500], device=device), image_rotary_emb=(cos, sin), return_dict=False)
    return make


def _cosmos_inputs(frames: int, height: int, width: int, text_tokens: int = 512, channels: int = 16,
                   text_dim: int = 1024, padding_mask: bool = True):
    """Cosmos 1.0's latent video for ``frames`` frames of height x width pixels (its tokenizer: 8x in time
    after the first frame and in space, 16 channels; the model's 1 x 2 x 2 patches), T5 features of
    ``text_tokens`` tokens, one timestep, 24 fps and, where the model concatenates it, the pipeline's
    all-zero padding mask at the pixels' size."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        latent = (1, channels, (frames - 1) // 8 + 1, height // 8, width // 8)
        inputs = dict(hidden_states=torch.randn(*latent, generator=g, device=device, dtype=dtype),
                      timestep=torch.tensor([500.0], device=device),
                      encoder_hidden_states=torch.randn(1, text_tokens, text_dim, generator=g, device=device,
                                                        dtype=dtype),
                      fps=24, return_dict=False)
        if padding_mask:
            inputs["padding_mask"] = torch.zeros(1, 1, height, width, device=device, dtype=dtype)
        return inputs
    return make


def _hunyuan_video_inputs(frames: int, height: int, width: int, text_tokens: int = 256):
    """HunyuanVideo's latent video for ``frames`` frames of height x width pixels (its VAE: 4x in time after
    the first frame, 8x in space, 16 channels; the model's 2 x 2 patches), its LLaVA-Llama features
    (256 tokens, all valid) and CLIP's pooled projection, one sample: the model is guidance-distilled,
    its guidance scale an input."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        latent = (1, 16, (frames - 1) // 4 + 1, height // 8, width // 8)
        return dict(hidden_states=torch.randn(*latent, generator=g, device=device, dtype=dtype),
                    timestep=torch.tensor([500], device=device),
                    encoder_hidden_states=torch.randn(1, text_tokens, 4096, generator=g, device=device, dtype=dtype),
                    encoder_attention_mask=torch.ones(1, text_tokens, device=device),
                    pooled_projections=torch.randn(1, 768, generator=g, device=device, dtype=dtype),
                    guidance=torch.tensor([6000.0], device=device, dtype=dtype), return_dict=False)
    return make


def _qwen_image_inputs(side: int, text_tokens: int, condition_images: int = 0):
    """Qwen-Image's inputs: packed latent patches (its VAE's 16 channels, 2 x 2 patches: 64) of a side x side
    image and the prompt's Qwen2.5-VL features, one sample: its pipeline runs the conditional and
    unconditional passes of true CFG one after the other. No mask: the pipeline drops a mask in which
    every token is valid (one prompt, trimmed to its length), and the model's code for a mask copies a
    host value to the GPU each forward, which a CUDA graph cannot capture. With ``condition_images``, the
    edit models' call: that many side x side condition images' tokens after the target image's, listed
    in img_shapes (the model then modulates them from t = 0, zero_cond_t)."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        grid = side // 16
        images = 1 + condition_images
        shapes = [(1, grid, grid)] * images
        return dict(hidden_states=torch.randn(1, images * grid * grid, 64, generator=g, device=device, dtype=dtype),
                    encoder_hidden_states=torch.randn(1, text_tokens, 3584, generator=g, device=device, dtype=dtype),
                    timestep=torch.tensor([0.5], device=device, dtype=dtype),
                    img_shapes=[shapes] if condition_images else shapes, return_dict=False)
    return make


def _chroma_inputs(image_tokens: int, text_tokens: int = 512):
    """Chroma's inputs: FLUX.1's (packed latents, positions, T5 features of text_tokens, one sample) without
    the pooled CLIP projection and the guidance, which Chroma does not take; no padding mask (its pipeline
    passes one over the prompt's padding; without it SDPA keeps its flash kernel, as for Flux)."""
    return _flux_inputs(image_tokens, text_tokens, pooled_dim=0, guidance=False)


def _z_image_inputs(side: int, text_tokens: int):
    """Z-Image's inputs: lists of one sample (a latent image [16, 1, side/8, side/8] and its prompt's
    Qwen3 features), as its pipeline passes them."""
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        return dict(x=[torch.randn(16, 1, side // 8, side // 8, generator=g, device=device, dtype=dtype)],
                    t=torch.tensor([0.5], device=device),
                    cap_feats=[torch.randn(text_tokens, 2560, generator=g, device=device, dtype=dtype)],
                    return_dict=False)
    return make


MODELS = {
    "flux_dev_1024": ModelCase("flux_dev_1024", "FluxTransformer2DModel", FLUX_DEV, "black-forest-labs/FLUX.1-dev",
                               "1024x1024: 4096 image + 512 text tokens, batch 1", _flux_inputs(4096)),
    "flux_dev_768": ModelCase("flux_dev_768", "FluxTransformer2DModel", FLUX_DEV, "black-forest-labs/FLUX.1-dev",
                              "768x768: 2304 image + 512 text tokens, batch 1", _flux_inputs(2304)),
    "sd3_medium_1024": ModelCase("sd3_medium_1024", "SD3Transformer2DModel", SD3_MEDIUM,
                                 "stabilityai/stable-diffusion-3-medium-diffusers",
                                 "1024x1024: 4096 image + 333 text tokens, batch 1", _sd3_inputs()),
    "pixart_sigma_1024": ModelCase("pixart_sigma_1024", "PixArtTransformer2DModel", PIXART_SIGMA,
                                   "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
                                   "1024x1024: 4096 image tokens, 300 text tokens, batch 1", _pixart_inputs()),
    # As their pipelines run them with classifier-free guidance: the conditional and unconditional
    # halves in one batch of 2.
    "sd3_medium_1024_cfg": ModelCase("sd3_medium_1024_cfg", "SD3Transformer2DModel", SD3_MEDIUM,
                                     "stabilityai/stable-diffusion-3-medium-diffusers",
                                     "1024x1024 with guidance: 4096 image + 333 text tokens, batch 2", _sd3_inputs(2),
                                     default=False),
    "pixart_sigma_1024_cfg": ModelCase("pixart_sigma_1024_cfg", "PixArtTransformer2DModel", PIXART_SIGMA,
                                       "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
                                       "1024x1024 with guidance: 4096 image tokens, 300 text tokens, batch 2",
                                       _pixart_inputs(2), default=False),
    "dit_xl_2_512": ModelCase("dit_xl_2_512", "DiTTransformer2DModel", DIT_XL_2_512, "facebook/DiT-XL-2-512",
                              "512x512: 1024 tokens, batch 8", _dit_inputs),
    "wan2_1_1_3b_480p": ModelCase("wan2_1_1_3b_480p", "WanTransformer3DModel", WAN21_T2V_1_3B,
                                  "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
                                  "832x480, 81 frames: 32760 video tokens, 512 text tokens, batch 1",
                                  _wan_inputs(81, 480, 832), default=False),
    "wan2_2_ti2v_5b_720p": ModelCase("wan2_2_ti2v_5b_720p", "WanTransformer3DModel", WAN22_TI2V_5B,
                                     "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
                                     "1280x704, 121 frames, image to video: 27280 video tokens (a timestep each, "
                                     "the first frame's at 0), 512 text tokens, batch 1",
                                     _wan_inputs(121, 704, 1280, channels=48, vae_scale=16, per_token_timesteps=True),
                                     default=False),
    # bf16 weights alone are 64 GB, and an int8 variant built beside them takes another 32 GB: on an
    # 80 GB H100 the benchmark quantizes its int8dit variants from float layers held in host memory
    # (e2e --offload auto).
    "flux2_dev_1024": ModelCase("flux2_dev_1024", "Flux2Transformer2DModel", FLUX2_DEV, "black-forest-labs/FLUX.2-dev",
                                "1024x1024: 4096 image + 512 text tokens, batch 1 (guidance distilled)",
                                _flux2_inputs(4096), default=False),
    "flux3_1024": ModelCase("flux3_1024", "Flux3Transformer2DModel", FLUX3, "diffusers' class defaults (FLUX.3)",
                            "1024x1024: 4096 image + 512 text tokens, batch 1 (text to image)",
                            _flux3_inputs(4096), default=False),
    "flux3_edit_1024": ModelCase("flux3_edit_1024", "Flux3Transformer2DModel", FLUX3,
                                 "diffusers' class defaults (FLUX.3)",
                                 "1024x1024 image to image: 4096 image + 4096 reference + 512 text tokens, batch 1",
                                 _flux3_inputs(4096, reference_tokens=4096), default=False),
    "krea2_1024": ModelCase("krea2_1024", "Krea2Transformer2DModel", KREA2, "diffusers' class defaults (Krea 2)",
                            "1024x1024: 4096 image + 512 text tokens, batch 1", _krea2_inputs(4096), default=False),
    "z_image_turbo_1024": ModelCase("z_image_turbo_1024", "ZImageTransformer2DModel", Z_IMAGE_TURBO,
                                    "Tongyi-MAI/Z-Image-Turbo",
                                    "1024x1024: 4096 image + 256 text tokens, batch 1 (the Turbo model runs "
                                    "without guidance)", _z_image_inputs(1024, 256), default=False),
    # bf16 weights 41 GB: on an 80 GB H100 an int8 variant (20 GB) fits beside them
    "qwen_image_1024": ModelCase("qwen_image_1024", "QwenImageTransformer2DModel", QWEN_IMAGE, "Qwen/Qwen-Image",
                                 "1024x1024: 4096 image + 256 text tokens, batch 1 (one pass of its true CFG)",
                                 _qwen_image_inputs(1024, 256), default=False),
    # The edit models' call (zero_cond_t: each image token picks its modulation row set, the target image's
    # tokens the timestep's, the condition image's t = 0's); eager only: the model makes that index with
    # torch.tensor on the host each forward, which a CUDA graph cannot capture
    "qwen_image_edit_1024": ModelCase("qwen_image_edit_1024", "QwenImageTransformer2DModel",
                                      dict(QWEN_IMAGE, zero_cond_t=True),
                                      "Qwen-Image's config with zero_cond_t (as the Qwen-Image-Edit-2511 models set it)",
                                      "1024x1024 image editing: 4096 target + 4096 condition image + 256 text tokens, "
                                      "batch 1", _qwen_image_inputs(1024, 256, condition_images=1), default=False),
    "ltx_video_768x512": ModelCase("ltx_video_768x512", "LTXVideoTransformer3DModel", LTX_VIDEO, "Lightricks/LTX-Video",
                                   "768x512, 121 frames: 6144 video tokens, 128 text tokens, batch 2 (guidance)",
                                   _ltx_video_inputs(121, 512, 768), default=False),
    "cogvideox_5b_720x480_49f": ModelCase("cogvideox_5b_720x480_49f", "CogVideoXTransformer3DModel", COGVIDEOX_5B,
                                          "THUDM/CogVideoX-5b", "720x480, 49 frames: 17550 video tokens, 226 text tokens, "
                                          "batch 1", _cogvideox_inputs(49, 480, 720), default=False),
    "cosmos_7b_704p_25f": ModelCase("cosmos_7b_704p_25f", "CosmosTransformer3DModel", COSMOS_1_0_7B,
                                    "diffusers' class defaults (Cosmos 1.0, 7B text-to-world)",
                                    "1280x704, 25 frames: 14080 video tokens, 512 text tokens, batch 1",
                                    _cosmos_inputs(25, 704, 1280), default=False),
    "hunyuan_video_544p_61f": ModelCase("hunyuan_video_544p_61f", "HunyuanVideoTransformer3DModel", HUNYUAN_VIDEO,
                                    "hunyuanvideo-community/HunyuanVideo",
                                    "960x544, 61 frames: 32640 video tokens, 256 text tokens, batch 1",
                                    _hunyuan_video_inputs(61, 544, 960), default=False),
    "longcat_image_1024": ModelCase("longcat_image_1024", "LongCatImageTransformer2DModel", LONGCAT_IMAGE,
                                    "diffusers' class defaults (LongCat-Image)",
                                    "1024x1024: 4096 image + 512 text tokens, batch 1",
                                    _flux_inputs(4096, text_dim=3584, pooled_dim=0, guidance=False), default=False),
    "cogview4_1024": ModelCase("cogview4_1024", "CogView4Transformer2DModel", COGVIEW4,
                               "diffusers' class defaults (CogView4, 2.85B)",
                               "1024x1024: 4096 image + 256 text tokens, batch 1", _cogview4_inputs(1024),
                               default=False),
    "cogview4_6b_1024": ModelCase("cogview4_6b_1024", "CogView4Transformer2DModel", COGVIEW4_6B, "THUDM/CogView4-6B",
                                  "1024x1024: 4096 image + 256 text tokens, batch 1", _cogview4_inputs(1024),
                                  default=False),
    "hunyuan_image_2048": ModelCase("hunyuan_image_2048", "HunyuanImageTransformer2DModel", HUNYUAN_IMAGE,
                                    "diffusers' class defaults (HunyuanImage 2.1)",
                                    "2048x2048: 4096 image + 256 text tokens, batch 1", _hunyuan_image_inputs(2048),
                                    default=False),
    "chroma_1024": ModelCase("chroma_1024", "ChromaTransformer2DModel", CHROMA, "lodestones/Chroma1-HD",
                             "1024x1024: 4096 image + 512 text tokens, batch 1, no padding mask",
                             _chroma_inputs(4096), default=False),
}


def build(case: ModelCase, torch, device: str, dtype):
    """The transformer with random weights, created directly in ``dtype`` on ``device``, except the
    modules its class keeps in fp32 (``_keep_in_fp32_modules``: Wan's rotary tables, time embedder and
    norms), which stay fp32 as ``from_pretrained(torch_dtype=dtype)`` leaves them."""
    import diffusers

    cls = getattr(diffusers, case.cls_name)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(**case.config)
    finally:
        torch.set_default_dtype(old)
    from int8dit.serialization import cast_floating

    # (not the model's .to(dtype): diffusers' warns where a class keeps modules in fp32, and a bf16 cast
    # first would round what those modules computed, Wan's rotary tables, before their fp32 cast)
    model = torch.nn.Module.to(model, device=device).eval().requires_grad_(False)
    return cast_floating(model, dtype, getattr(cls, "_keep_in_fp32_modules", None) or ())
