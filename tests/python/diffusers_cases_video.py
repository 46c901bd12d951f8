"""Small CPU configurations of diffusers video (and multimodal) transformers for the drop-in test
(test_torch_more_diffusers_models.py): LTX-2 (2.0 and 2.3/2.5), Kandinsky 5 and 6, SkyReels-V2 (diffusion
forcing and I2V), Wan VACE, Sana-Video (T2V and I2V), Cosmos 1.0 and 2.5, Allegro, Latte, EasyAnimate,
HunyuanVideo FramePack and OmniGen. Each case: (diffusers class name, config, a function giving the
forward's keyword arguments); the comment above it says what it exercises."""
import torch

BF16 = torch.bfloat16


# LTX-2: video (2 heads x 32) and audio (2 heads x 16) streams, split RoPE as every LTX-2 checkpoint has it.
# The audio cross-attention dim must be the audio width (it sizes the a2v/v2a RoPE), the video one the video width.
LTX2 = dict(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=32,
            cross_attention_dim=64, audio_in_channels=8, audio_out_channels=8, audio_num_attention_heads=2,
            audio_attention_head_dim=16, audio_cross_attention_dim=32, num_layers=2, caption_channels=64,
            rope_type="split")


def ltx2_inputs(text_dim, audio_text_dim, **extra):
    # 2 x 4 x 4 = 32 video tokens, 8 audio tokens, 8 text tokens; timestep and sigma as the pipeline passes them
    def make():
        return dict(hidden_states=torch.randn(1, 32, 8, dtype=BF16), audio_hidden_states=torch.randn(1, 8, 8, dtype=BF16),
                    encoder_hidden_states=torch.randn(1, 8, text_dim, dtype=BF16),
                    audio_encoder_hidden_states=torch.randn(1, 8, audio_text_dim, dtype=BF16),
                    timestep=torch.tensor([500.0]), encoder_attention_mask=torch.ones(1, 8),
                    audio_encoder_attention_mask=torch.ones(1, 8), num_frames=2, height=4, width=4, audio_num_frames=8,
                    return_dict=False, **extra)
    return make


# Kandinsky 5: head_dim = sum(axes_dims) = 32, model_dim 64 (2 heads); visual_cond as the T2V checkpoints (latents
# + condition + mask channels, [B, T, H, W, C] layout); 1 text (encoder) block, 2 visual (decoder) blocks.
KANDINSKY5 = dict(in_visual_dim=4, in_text_dim=64, in_text_dim2=32, time_dim=32, out_visual_dim=4, patch_size=(1, 2, 2),
                  model_dim=64, ff_dim=128, num_text_blocks=1, num_visual_blocks=2, axes_dims=(8, 12, 12),
                  visual_cond=True)


def kandinsky5_inputs():
    return dict(hidden_states=torch.randn(1, 2, 8, 8, 9, dtype=BF16), encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                timestep=torch.tensor([500.0], dtype=BF16), pooled_projections=torch.randn(1, 32, dtype=BF16),
                visual_rope_pos=[torch.arange(2), torch.arange(4), torch.arange(4)], text_rope_pos=torch.arange(8),
                return_dict=False)


SKYREELS = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=4,
                text_dim=64, freq_dim=32, ffn_dim=128, num_layers=2, rope_max_seq_len=32)

COSMOS = dict(out_channels=4, num_attention_heads=2, attention_head_dim=64, num_layers=2, mlp_ratio=4.0,
              text_embed_dim=64, adaln_lora_dim=32, max_size=(4, 16, 16), patch_size=(1, 2, 2),
              concat_padding_mask=False)

def allegro_inputs():
    # The rotary tables Allegro's pipeline builds (AllegroPipeline._prepare_rotary_positional_embeddings) for
    # a 2-frame 4 x 4 patch grid; head dim 48 (a third a grid axis).
    from diffusers.models.embeddings import get_3d_rotary_pos_embed_allegro

    freqs_t, freqs_h, freqs_w, grid_t, grid_h, grid_w = get_3d_rotary_pos_embed_allegro(
        embed_dim=48, crops_coords=((0, 0), (4, 4)), grid_size=(4, 4), temporal_size=2, interpolation_scale=(2.2, 2.0, 2.0))
    pos = torch.cartesian_prod(grid_t.long(), grid_h.long(), grid_w.long()).reshape(-1, 3).transpose(0, 1)
    grid_t, grid_h, grid_w = pos.reshape(3, 1, -1).contiguous()
    return dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16), encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                timestep=torch.tensor([500]), encoder_attention_mask=torch.ones(1, 8),
                image_rotary_emb=((freqs_t, freqs_h, freqs_w), (grid_t, grid_h, grid_w)), return_dict=False)


def framepack_inputs():
    # FramePack's history: 2 clean frames (start + last), 2 frames at 2x and 4 at 4x downsampling, then the
    # window's latent frame; 1-D frame indices laid out as the pipeline splits them (0 | 1-4 | 5-6 | 7 | 8).
    return dict(hidden_states=torch.randn(1, 4, 1, 8, 8, dtype=BF16), timestep=torch.tensor([500]),
                encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), encoder_attention_mask=torch.ones(1, 8),
                pooled_projections=torch.randn(1, 32, dtype=BF16), image_embeds=torch.randn(1, 4, 32, dtype=BF16),
                indices_latents=torch.tensor([8]), guidance=torch.tensor([10.0]),
                latents_clean=torch.randn(1, 4, 2, 8, 8, dtype=BF16), indices_latents_clean=torch.tensor([0, 7]),
                latents_history_2x=torch.randn(1, 4, 2, 8, 8, dtype=BF16), indices_latents_history_2x=torch.tensor([5, 6]),
                latents_history_4x=torch.randn(1, 4, 4, 8, 8, dtype=BF16),
                indices_latents_history_4x=torch.tensor([1, 2, 3, 4]), return_dict=False)


def omnigen_inputs():
    # 12 condition tokens, of which 4 (2..5) are an input image's patches, the time token, then 16 output
    # image tokens: causal attention over the condition, full attention among the time and image tokens.
    seq, image = 12 + 1 + 16, 1 + 16
    mask = torch.tril(torch.ones(seq, seq))
    mask[-image:, -image:] = 1
    return dict(hidden_states=torch.randn(1, 4, 8, 8, dtype=BF16), timestep=torch.tensor([0.5]),
                input_ids=torch.randint(1, 128, (1, 12)), input_img_latents=[torch.randn(1, 4, 4, 4, dtype=BF16)],
                input_image_sizes={0: [(2, 6)]}, attention_mask=mask[None], position_ids=torch.arange(seq)[None],
                return_dict=False)


VIDEO_CASES = {
    # LTX-2.0: audio+video blocks (self-attn, text cross-attn, a2v / v2a cross-attn, tanh-GELU MLPs on both streams),
    # the caption projections, LTX2AudioVideoAttnProcessor
    "ltx2": ("LTX2VideoTransformer3DModel", dict(LTX2, use_prompt_embeddings=True), ltx2_inputs(64, 64)),
    # LTX-2.3 / 2.5: gated attention (to_gate_logits), 9-parameter adaLN with cross-attention modulation, prompt
    # adaLN (sigma), LTX2PerturbedAttnProcessor with STG on block 1 (attention skipped: to_v -> to_out), the cross
    # timestep, 2.5's bias-free video MLP and keyframe position embedding; prompts come from the connectors at the
    # streams' widths (use_prompt_embeddings=False)
    "ltx2.3": ("LTX2VideoTransformer3DModel",
               dict(LTX2, gated_attn=True, cross_attn_mod=True, audio_gated_attn=True, audio_cross_attn_mod=True,
                    use_prompt_embeddings=False, perturbed_attn=True, ff_bias=False,
                    use_keyframes_abs_pos_embedding=True),
               ltx2_inputs(64, 32, sigma=torch.tensor([500.0]), use_cross_timestep=True,
                           spatio_temporal_guidance_blocks=[1], video_keyframes_mask=torch.ones(1, 32, 1))),
    # Kandinsky 5: text encoder block and visual decoder blocks (self-attn with 1D / 3D RoPE, cross-attn, exact-GELU
    # MLP), fp32 modulation.
    "kandinsky5": ("Kandinsky5Transformer3DModel", KANDINSKY5, kandinsky5_inputs),
    # SkyReels-V2 DF: diffusion forcing (a timestep per frame: [B, T, 6, K] modulation), causal frame-block attention
    # mask (num_frame_per_block=2 over 4 frames), fps injection (fps_projection, a linear-SiLU FeedForward)
    "skyreels-v2-df": ("SkyReelsV2Transformer3DModel", dict(SKYREELS, inject_sample_info=True, num_frame_per_block=2),
                       lambda: dict(hidden_states=torch.randn(1, 4, 4, 4, 4, dtype=BF16),
                                    timestep=torch.tensor([[900, 700, 500, 300]]),
                                    encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), enable_diffusion_forcing=True,
                                    fps=[1], return_dict=False)),
    # SkyReels-V2 I2V: CLIP image embedder and the cross-attention's added (image) K/V projections. The processor
    # takes the last 512 context tokens as text, so the text is 512 tokens here (x 64 features: still tiny).
    "skyreels-v2-i2v": ("SkyReelsV2Transformer3DModel", dict(SKYREELS, in_channels=8, image_dim=32, added_kv_proj_dim=64),
                        lambda: dict(hidden_states=torch.randn(1, 8, 2, 8, 8, dtype=BF16), timestep=torch.tensor([500]),
                                     encoder_hidden_states=torch.randn(1, 512, 64, dtype=BF16),
                                     encoder_hidden_states_image=torch.randn(1, 4, 32, dtype=BF16), return_dict=False)),
    # Wan VACE: Wan blocks (int8dit fuses their norms) plus VACE blocks (proj_in on the first, proj_out on each)
    # whose hints are added after main blocks 0 and 2 (3 main blocks, block 1 without a hint)
    "wan-vace": ("WanVACETransformer3DModel",
                 dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=4,
                      text_dim=64, freq_dim=32, ffn_dim=128, num_layers=3, rope_max_seq_len=32, vace_layers=[0, 2],
                      vace_in_channels=8),
                 lambda: dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16), timestep=torch.tensor([500]),
                              encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                              control_hidden_states=torch.randn(1, 8, 2, 8, 8, dtype=BF16), return_dict=False)),
    # Sana-Video T2V: linear self-attention with RoPE and q/k RMSNorm, softmax cross-attention, GLUMBTempConv MLP
    # (convolutions only), one modulation row set a sample
    "sana-video": ("SanaVideoTransformer3DModel",
                   dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=32, num_layers=2,
                        num_cross_attention_heads=2, cross_attention_head_dim=32, cross_attention_dim=64,
                        caption_channels=64, mlp_ratio=2.5, patch_size=(1, 2, 2), rope_max_seq_len=32),
                   lambda: dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16),
                                encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), timestep=torch.tensor([500.0]),
                                encoder_attention_mask=torch.ones(1, 8), return_dict=False)),
    # Sana-Video I2V: the same blocks with a timestep per token (first frame 0, as the I2V pipeline): [B, T, 6K] rows
    "sana-video-i2v": ("SanaVideoTransformer3DModel",
                       dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=32, num_layers=2,
                            num_cross_attention_heads=2, cross_attention_head_dim=32, cross_attention_dim=64,
                            caption_channels=64, mlp_ratio=2.5, patch_size=(1, 2, 2), rope_max_seq_len=32),
                       lambda: dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16),
                                    encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                                    timestep=torch.cat([torch.zeros(1, 1, 1, 4, 4), torch.full((1, 1, 1, 4, 4), 500.0)], 2),
                                    encoder_attention_mask=torch.ones(1, 8), return_dict=False)),
    # Cosmos 1.0: adaLN-LoRA norms (CosmosAdaLayerNormZero), self-attn with RoPE (fps-scaled) and q/k RMSNorm,
    # cross-attn, exact-GELU MLP, learnable position embedding. The padding-mask channel (concat_padding_mask)
    # needs torchvision's resize; the pipelines pass a zero mask into a bias-free patch embedding, so leaving it out
    # computes the same
    "cosmos-1.0": ("CosmosTransformer3DModel", dict(COSMOS, in_channels=4, extra_pos_embed_type="learnable"),
                   lambda: dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16), timestep=torch.tensor([500.0]),
                                encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), fps=24, return_dict=False)),
    # Cosmos 2.5: text cross-attn projection (crossattn_proj), image-context attention (CosmosAttention's
    # q_img / k_img / v_img, CosmosAttnProcessor2_5), condition-mask channel, a timestep per frame ([B, 1, T, 1, 1])
    "cosmos-2.5": ("CosmosTransformer3DModel",
                   dict(COSMOS, in_channels=5, extra_pos_embed_type=None, use_crossattn_projection=True,
                        crossattn_proj_in_channels=96, encoder_hidden_states_channels=64, img_context_dim_in=32,
                        img_context_num_tokens=4, img_context_dim_out=128),
                   lambda: dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16),
                                timestep=torch.tensor([0.0, 0.5]).view(1, 1, 2, 1, 1),
                                encoder_hidden_states=(torch.randn(1, 8, 96, dtype=BF16), torch.randn(1, 4, 32, dtype=BF16)),
                                condition_mask=torch.cat([torch.ones(1, 1, 1, 8, 8), torch.zeros(1, 1, 1, 8, 8)], 2).to(BF16),
                                fps=24, return_dict=False)),
    # Allegro: PixArt-style single-table adaLN blocks of its own class (self-attention with 3D RoPE, cross-attention
    # to the caption projection, tanh-GELU MLP), AdaLayerNormSingle, the modulated final norm
    "allegro": ("AllegroTransformer3DModel",
                dict(patch_size=2, patch_size_t=1, num_attention_heads=2, attention_head_dim=48, in_channels=4,
                     out_channels=4, num_layers=2, cross_attention_dim=96, sample_height=8, sample_width=8,
                     sample_frames=2, caption_channels=64),
                allegro_inputs),
    # Latte: PixArt's BasicTransformerBlock (ada_norm_single) twice a layer: spatial blocks with cross-attention,
    # temporal blocks without (attn2 None), the temporal position embedding, learned-sigma output (out = 2 x in)
    "latte": ("LatteTransformer3DModel",
              dict(num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=8, num_layers=2,
                   cross_attention_dim=64, attention_bias=True, sample_size=8, patch_size=2,
                   activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
                   norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=64, video_length=2),
              lambda: dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16), timestep=torch.tensor([500]),
                           encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), return_dict=False)),
    # EasyAnimate: an MMDiT block (added k/q/v projections, a text MLP of its own) and a non-MMDiT block (text
    # and video concatenated through one attention and one MLP), fp32 adaLN-Zero norms over both streams,
    # LayerNorm q/k norms, 3D RoPE, AdaLayerNorm output
    "easyanimate": ("EasyAnimateTransformer3DModel",
                    dict(num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=4, patch_size=2,
                         sample_width=8, sample_height=8, num_layers=2, mmdit_layers=1, time_embed_dim=64,
                         text_embed_dim=64),
                    lambda: dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16), timestep=torch.tensor([500]),
                                 encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), return_dict=False)),
    # HunyuanVideo FramePack: HunyuanVideo's double- and single-stream blocks and token refiner, the SigLIP
    # image projection, the clean-history patch embedders (1x, 2x, 4x) with their down-sampled RoPE, guidance
    "hunyuanvideo-framepack": ("HunyuanVideoFramepackTransformer3DModel",
                               dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=32,
                                    num_layers=1, num_single_layers=1, num_refiner_layers=1, patch_size=2,
                                    patch_size_t=1, text_embed_dim=64, pooled_projection_dim=32,
                                    rope_axes_dim=(8, 12, 12), has_image_proj=True, image_proj_dim=32,
                                    has_clean_x_embedder=True),
                               framepack_inputs),
    # Kandinsky 6 (the released flags: ca_rope, cross_gates, fix_modulation, text_token_padding): the video and
    # audio text encoder blocks, the fused video/audio decoder blocks (self-, text cross- and the va/av
    # cross-modal attentions, exact-GELU MLPs, fp32 modulation), video and audio output heads
    "kandinsky6": ("Kandinsky6Transformer3DModel",
                   dict(in_visual_dim=4, out_visual_dim=4, in_text_dim=64, in_text_dim2=32, time_dim=32,
                        patch_size=(1, 2, 2), model_dim=64, ff_dim=128, num_text_blocks=1, num_visual_blocks=2,
                        axes_dims=(8, 12, 12), visual_cond=True, in_audio_dim=16, out_audio_dim=16,
                        text_token_padding=True, ca_rope=True, cross_gates=True, fix_modulation=True),
                   lambda: dict(hidden_states=torch.randn(1, 2, 8, 8, 9, dtype=BF16),
                                encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16),
                                pooled_projections=torch.randn(1, 32, dtype=BF16), timestep=torch.tensor([500.0]),
                                audio_hidden_states=torch.randn(1, 8, 16, dtype=BF16), return_dict=False)),
    # OmniGen: Phi-3 style decoder blocks (RMSNorm, attention with SuScaled RoPE, packed gate_up SwiGLU MLP)
    # over [text with an embedded input image | time token | output image], AdaLayerNorm output
    "omnigen": ("OmniGenTransformer2DModel",
                dict(in_channels=4, patch_size=2, hidden_size=64, num_attention_heads=2, num_key_value_heads=2,
                     intermediate_size=128, num_layers=2, pad_token_id=0, vocab_size=128,
                     rope_scaling=dict(short_factor=[1.0] * 16, long_factor=[1.0] * 16), pos_embed_max_size=16,
                     time_step_dim=32),
                omnigen_inputs),
}
