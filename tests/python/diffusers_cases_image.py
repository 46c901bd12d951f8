"""Small CPU configurations of diffusers image transformers for the drop-in test
(test_torch_more_diffusers_models.py): CogView4, HiDream-I1, HunyuanImage-2.1, ERNIE-Image, Qwen-Image 2.1,
Bria, Bria FIBO, LongCat-Image, Ovis-Image, GLM-Image and PRX. Each case: (diffusers class name, config,
a function giving the forward's keyword arguments); the comment above it says what it exercises."""
import torch

BF16 = torch.bfloat16


def qwen_image21_inputs():
    # the vision-language sequence: 4 text tokens, 4 slots of a condition image (each a 2x2 group of latent
    # tokens: 1x4x4), 4 text tokens (the last one padding); then the target image's 8 slots (1x4x8)
    img_mask = torch.tensor([[False] * 4 + [True] * 4 + [False] * 4 + [True] * 8])
    return dict(hidden_states=torch.randn(1, 16 + 32, 16, dtype=BF16), encoder_hidden_states=torch.randn(1, 12, 64, dtype=BF16),
                timestep=torch.tensor([0.5], dtype=BF16), img_shapes=[[(1, 4, 4), (1, 4, 8)]], img_mask=img_mask,
                encoder_hidden_states_mask=torch.tensor([[True] * 11 + [False]]), return_dict=False)


def _grid_ids(tokens, side, axes=3):
    """Flux-style (0, row, col[, 0]) position ids of a side x side image grid: [tokens, axes] fp32."""
    cols = [torch.zeros(tokens), torch.arange(tokens) // side, torch.arange(tokens) % side]
    return torch.stack(cols + [torch.zeros(tokens)] * (axes - 3), dim=1).float()


def flux_like_inputs(timestep, **extra):
    """Flux-family inputs: 64 packed image tokens of 16 channels, 8 text tokens of 64, 2-D position ids."""
    def make():
        return dict(hidden_states=torch.randn(1, 64, 16, dtype=BF16), encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                    timestep=torch.tensor([timestep]), img_ids=_grid_ids(64, 8), txt_ids=torch.zeros(8, 3),
                    return_dict=False, **{k: v() if callable(v) else v for k, v in extra.items()})
    return make


# Flux-family image transformers with Flux's double-stream (joint attention, tanh-GELU FeedForwards) and
# single-stream blocks; their block and attention classes are their own copies of Flux's.
FLUX_LIKE = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=32,
                 num_attention_heads=2, joint_attention_dim=64, axes_dims_rope=(8, 12, 12))

IMAGE_CASES = {
    # CogView4: joint [text, image] blocks with LayerNorm q/k norm and image-only RoPE, the shared tanh-GELU
    # FeedForward on both streams, its own adaLN-Zero (12 rows), SDXL-style size conditions, scale-shift final norm
    "cogview4": ("CogView4Transformer2DModel",
                 dict(patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=64,
                      num_attention_heads=2, text_embed_dim=64, time_embed_dim=64, condition_dim=16,
                      pos_embed_max_size=32, sample_size=16, rope_axes_dim=(16, 16)),
                 lambda: dict(hidden_states=torch.randn(1, 4, 16, 16, dtype=BF16),
                              encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), timestep=torch.tensor([500]),
                              original_size=torch.tensor([[128.0, 128.0]]), target_size=torch.tensor([[128.0, 128.0]]),
                              crop_coords=torch.tensor([[0.0, 0.0]]), return_dict=False)),
    # HiDream-I1: a double-stream block (image and text q/k/v/out of their own, q/k RMSNorm over all heads) and
    # a single-stream block, each with the routed MoE SwiGLU (4 experts, top 2, plus a shared expert) on the
    # image stream, the text stream's dense SwiGLU, T5 + per-block Llama-layer captions, pooled embedding
    "hidream": ("HiDreamImageTransformer2DModel",
                dict(patch_size=2, in_channels=16, out_channels=16, num_layers=1, num_single_layers=1,
                     attention_head_dim=32, num_attention_heads=2, caption_channels=[64, 48], text_emb_dim=32,
                     num_routed_experts=4, num_activated_experts=2, axes_dims_rope=(16, 8, 8),
                     max_resolution=(16, 16), llama_layers=[0, 1]),
                lambda: dict(hidden_states=torch.randn(1, 16, 16, 16, dtype=BF16), timesteps=torch.tensor([500]),
                             encoder_hidden_states_t5=torch.randn(1, 4, 64, dtype=BF16),
                             encoder_hidden_states_llama3=torch.randn(2, 1, 4, 48, dtype=BF16),
                             pooled_embeds=torch.randn(1, 32, dtype=BF16), return_dict=False)),
    # HunyuanImage-2.1 (distilled): the text token refiner (self-attention + SiLU FeedForward), the ByT5 glyph
    # projection with its valid/padded reordering, double-stream blocks (AdaLayerNormZero, added k/v/q
    # projections, tanh-GELU FeedForwards) and single-stream blocks (AdaLayerNormZeroSingle, [attention | GELU
    # MLP] into proj_out), 2-D RoPE, guidance and meanflow timestep_r embedders, padded text masks
    "hunyuanimage": ("HunyuanImageTransformer2DModel",
                     dict(in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=32, num_layers=1,
                          num_single_layers=1, num_refiner_layers=1, patch_size=(1, 1), guidance_embeds=True,
                          text_embed_dim=64, text_embed_2_dim=32, rope_axes_dim=(16, 16), use_meanflow=True),
                     lambda: dict(hidden_states=torch.randn(1, 16, 8, 8, dtype=BF16),
                                  timestep=torch.tensor([500.0], dtype=BF16),
                                  timestep_r=torch.tensor([250.0], dtype=BF16),
                                  encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                                  encoder_attention_mask=torch.tensor([[1] * 6 + [0] * 2]),
                                  encoder_hidden_states_2=torch.randn(1, 4, 32, dtype=BF16),
                                  encoder_attention_mask_2=torch.tensor([[1] * 3 + [0]]),
                                  guidance=torch.tensor([3500.0], dtype=BF16), return_dict=False)),
    # ERNIE-Image: single-stream [image, text] blocks in sequence-first
    # layout sharing one adaLN modulation, RMSNorm + q/k RMSNorm, 3-axis rotate-half RoPE, the GELU-gated MLP
    # (linear_fc2(up * gelu(gate))), a text projection and a padded text length
    "ernie-image": ("ErnieImageTransformer2DModel",
                    dict(hidden_size=64, num_attention_heads=2, num_layers=2, ffn_hidden_size=128, in_channels=16,
                         out_channels=16, patch_size=1, text_in_dim=48, rope_axes_dim=(8, 12, 12)),
                    lambda: dict(hidden_states=torch.randn(1, 16, 8, 8, dtype=BF16), timestep=torch.tensor([500.0]),
                                 text_bth=torch.randn(1, 8, 48, dtype=BF16), text_lens=torch.tensor([6]),
                                 return_dict=False)),
    # Qwen-Image 2.1: single-stream blocks over [text, condition image, text, target image] with the block-causal
    # SDPA prefill (QwenImage21AttnProcessor), one shared modulation (causal_condition: t = 0 rows for the
    # prefix), SwiGLU MLPs, the RMSNorm + GELU text projection, 3-axis RoPE and a padded prompt
    "qwen-image-2.1": ("QwenImage21Transformer2DModel",
                       dict(patch_size=1, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=32,
                            num_attention_heads=2, context_in_dim=64, mlp_ratio=3, axes_dims_rope=(8, 12, 12)),
                       qwen_image21_inputs),
    # Bria: 1 double-stream block (AdaLayerNormZero x2, joint attention with q/k and added q/k RMSNorm, two
    # tanh-GELU FeedForwards) + 1 single-stream block (AdaLayerNormZeroSingle, [attention | GELU MLP] proj_out)
    "bria": ("BriaTransformer2DModel", dict(FLUX_LIKE), flux_like_inputs(500.0)),
    # Bria FIBO: the same two block kinds, plus the per-block caption projections (64 -> 32) whose outputs
    # replace half of the text stream's channels before each block (one text-encoder layer per block)
    "bria-fibo": ("BriaFiboTransformer2DModel", dict(FLUX_LIKE, text_encoder_dim=64),
                  flux_like_inputs(500.0, text_encoder_layers=lambda: [torch.randn(1, 8, 64, dtype=BF16)
                                                                       for _ in range(2)])),
    # LongCat-Image: Flux's double- and single-stream blocks under LongCat's names, timestep in [0, 1]
    "longcat-image": ("LongCatImageTransformer2DModel", dict(FLUX_LIKE, pooled_projection_dim=64),
                      flux_like_inputs(0.5)),
    # Ovis-Image: the double-stream block's FeedForwards are SwiGLU ([hidden | gate] projection), the
    # single-stream block's MLP a SiLU-gated proj_mlp (gate in the second half), the text RMS-normed first
    "ovis-image": ("OvisImageTransformer2DModel", dict(FLUX_LIKE, out_channels=16), flux_like_inputs(0.5)),
    # GLM-Image: 1 block (its own adaLN with 12 modulation rows, joint self-attention over [text, image] with
    # LayerNorm q/k norms, RoPE on the image tokens, the text-token attention mask, one tanh-GELU FeedForward
    # for both streams), the glyph projector (exact-GELU FeedForward), prior-token embedding and projector
    # (linear-silu FeedForward) with some prior tokens dropped, the size-conditioned timestep embedding
    "glm-image": ("GlmImageTransformer2DModel",
                  dict(patch_size=2, in_channels=4, out_channels=4, num_layers=1, attention_head_dim=32,
                       num_attention_heads=2, text_embed_dim=64, time_embed_dim=64, condition_dim=16,
                       prior_vq_quantizer_codebook_size=64),
                  lambda: dict(hidden_states=torch.randn(1, 4, 16, 16, dtype=BF16),
                               encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                               prior_token_id=torch.randint(0, 64, (1, 64)),
                               prior_token_drop=torch.arange(64).reshape(1, 64) % 4 == 0,
                               timestep=torch.tensor([500.0]), target_size=torch.tensor([[128.0, 128.0]]),
                               crop_coords=torch.tensor([[0.0, 0.0]]), attention_mask=torch.tensor([[1] * 6 + [0] * 2]),
                               return_dict=False)),
    # PRX: 1 block (image-query attention over [text, image] keys with a fused image qkv and text kv
    # projection, RMSNorm q/k, 2-axis RoPE, a padded-text mask; tanh-GELU-gated MLP gate/up/down), the
    # two-layer bottleneck patch projection (PRX-7B) and the resolution embedder.
    # (its modulation starts at zero: the drop-in test wakes it, wake_zero_layers)
    "prx": ("PRXTransformer2DModel",
            dict(in_channels=4, patch_size=2, context_in_dim=64, hidden_size=64, mlp_ratio=2.0, num_heads=2, depth=1,
                 axes_dim=[16, 16], bottleneck_size=32, resolution_embeds=True),
            lambda: dict(hidden_states=torch.randn(1, 4, 16, 16, dtype=BF16), timestep=torch.tensor([0.5]),
                         encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                         attention_mask=torch.tensor([[True] * 6 + [False] * 2]), return_dict=False)),
}
