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


@dataclass
class ModelCase:
    name: str
    cls_name: str            # the diffusers class
    config: dict
    repo: str                # where the config comes from
    shape: str               # what the inputs stand for
    inputs: Callable         # (torch, device, dtype) -> kwargs of forward


def _flux_inputs(image_tokens: int, text_tokens: int = 512):
    def make(torch, device, dtype):
        g = torch.Generator(device=device).manual_seed(0)
        side = int(image_tokens ** 0.5)
        ids = torch.zeros(side, side, 3, device=device)
        ids[..., 1] = torch.arange(side, device=device)[:, None]
        ids[..., 2] = torch.arange(side, device=device)[None, :]
        return dict(
            hidden_states=torch.randn(1, image_tokens, 64, generator=g, device=device, dtype=dtype),
            encoder_hidden_states=torch.randn(1, text_tokens, 4096, generator=g, device=device, dtype=dtype),
            pooled_projections=torch.randn(1, 768, generator=g, device=device, dtype=dtype),
            timestep=torch.tensor([0.5], device=device, dtype=dtype),
            guidance=torch.tensor([3.5], device=device, dtype=dtype),
            img_ids=ids.reshape(-1, 3), txt_ids=torch.zeros(text_tokens, 3, device=device), return_dict=False)
    return make


def _sd3_inputs(torch, device, dtype):
    g = torch.Generator(device=device).manual_seed(0)
    return dict(hidden_states=torch.randn(1, 16, 128, 128, generator=g, device=device, dtype=dtype),
                encoder_hidden_states=torch.randn(1, 333, 4096, generator=g, device=device, dtype=dtype),
                pooled_projections=torch.randn(1, 2048, generator=g, device=device, dtype=dtype),
                timestep=torch.tensor([500.0], device=device), return_dict=False)


def _pixart_inputs(torch, device, dtype):
    g = torch.Generator(device=device).manual_seed(0)
    return dict(hidden_states=torch.randn(1, 4, 128, 128, generator=g, device=device, dtype=dtype),
                encoder_hidden_states=torch.randn(1, 300, 4096, generator=g, device=device, dtype=dtype),
                timestep=torch.tensor([500], device=device),
                added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)


def _dit_inputs(torch, device, dtype):
    g = torch.Generator(device=device).manual_seed(0)
    return dict(hidden_states=torch.randn(8, 4, 64, 64, generator=g, device=device, dtype=dtype),
                timestep=torch.full((8,), 500, device=device, dtype=torch.long),
                class_labels=torch.arange(8, device=device, dtype=torch.long) * 100, return_dict=False)


MODELS = {
    "flux_dev_1024": ModelCase("flux_dev_1024", "FluxTransformer2DModel", FLUX_DEV, "black-forest-labs/FLUX.1-dev",
                               "1024x1024: 4096 image + 512 text tokens, batch 1", _flux_inputs(4096)),
    "flux_dev_768": ModelCase("flux_dev_768", "FluxTransformer2DModel", FLUX_DEV, "black-forest-labs/FLUX.1-dev",
                              "768x768: 2304 image + 512 text tokens, batch 1", _flux_inputs(2304)),
    "sd3_medium_1024": ModelCase("sd3_medium_1024", "SD3Transformer2DModel", SD3_MEDIUM,
                                 "stabilityai/stable-diffusion-3-medium-diffusers",
                                 "1024x1024: 4096 image + 333 text tokens, batch 1", _sd3_inputs),
    "pixart_sigma_1024": ModelCase("pixart_sigma_1024", "PixArtTransformer2DModel", PIXART_SIGMA,
                                   "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
                                   "1024x1024: 4096 image tokens, 300 text tokens, batch 1", _pixart_inputs),
    "dit_xl_2_512": ModelCase("dit_xl_2_512", "DiTTransformer2DModel", DIT_XL_2_512, "facebook/DiT-XL-2-512",
                              "512x512: 1024 tokens, batch 8", _dit_inputs),
}


def build(case: ModelCase, torch, device: str, dtype):
    """The transformer with random weights, created directly in ``dtype`` on ``device``."""
    import diffusers

    cls = getattr(diffusers, case.cls_name)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(**case.config)
    finally:
        torch.set_default_dtype(old)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
