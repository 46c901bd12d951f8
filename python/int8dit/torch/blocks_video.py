"""The fused block forwards of diffusers' video transformers (int8dit.torch.blocks says what they do and
holds the registry that fuse_block_norms reads; these are its video half):

- LTXVideoTransformerBlock (LTX-Video): the RMSNorms (without weight) before self-attention and the MLP,
  modulated with a shift and a scale (a row set per sample, or per token with the conditioning
  pipelines' per-token timesteps): layernorm_modulate_quantize with RMSNorm's statistics, the
  cross-attention's update in the MLP norm's kernel;
- MochiTransformerBlock (Mochi): the unweighted RMSNorms before attention and before both streams'
  MLPs, which diffusers runs in fp32 and scales by (1 + the block's modulation): the scale is the
  weight of the norm's kernel (a kernel call a sample, as Z-Image's);
- HunyuanVideoTransformerBlock and HunyuanVideo15TransformerBlock (HunyuanVideo 1 and 1.5's
  dual-stream blocks): the norms before both streams' MLPs, as Flux's;
- WanTransformerBlock (Wan 2.1 / 2.2): the norms before self-attention and the MLP, which diffusers runs
  in fp32 over the whole [tokens, dim] stream (an fp32 copy, the norm, the product, the sum and the
  rounding back: ~2 GB a norm at 480p), and the gated residual updates around them; the modulation
  rows are rounded to the stream's dtype for the kernels. Wan 2.2 TI2V's per-token timesteps (a row set
  per token, [B, T, 6, K]) and SkyReels-V2's diffusion forcing (per frame, as a row per token) too: the
  kernels read a row per token where they read one per sample;
- CogVideoXBlock (CogVideoX): both CogVideoXLayerNormZero norms, LayerNorms with their own weight and
  bias modulated a row per sample, as the kernel's weight and bias rows (block_steps.
  folded_affine_modulation), the attention's gated update in the MLP norm's kernel; the MLP runs on each
  stream where the stock block runs it once on the joined [text, video] tokens (a row's values do not
  depend on the others');
- CosmosTransformerBlock (Cosmos 1.0 / 2.5): its three adaLN-LoRA norms, each with the residual update before
  it in its kernel (the learnable extra positional embedding's sum before the self-attention's, the
  attention's gated update before the cross-attention's and the MLP's), where the stock block runs an add,
  a product and an add between the norms; the MLP's gated update as one kernel.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .adanorm import cosmos_modulation, is_cosmos_adaln_zero
from .block_steps import (affine_layer_norm, affine_layer_norm_fits, affine_modulated_norm, fusable_input, gated_add,
                          has_affine, joint_block_fits, modulated_norm, plain_layer_norm, residual_mlp_update,
                          residual_then_modulated_norm, rounded_modulation, scaled_rms_norm, unweighted_rms_norm)


def _ltx_block_fits(block: nn.Module) -> bool:
    return (unweighted_rms_norm(getattr(block, "norm1", None)) and unweighted_rms_norm(getattr(block, "norm2", None))
            and isinstance(getattr(block, "scale_shift_table", None), Tensor))


def _ltx_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                 image_rotary_emb=None, encoder_attention_mask: Optional[Tensor] = None) -> Tensor:
    # One modulation row set per sample ([B, 1, 6K]) or, with per-token timesteps (the conditioning
    # pipelines'), one per token ([B, T, 6K]); the kernels read either.
    if (not fusable_input(hidden_states) or temb.dim() != 3 or
            temb.shape[1] not in (1, hidden_states.shape[1])):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb,
                                  encoder_attention_mask)
    batch_size, dtype = hidden_states.shape[0], hidden_states.dtype
    ada_values = rounded_modulation(self.scale_shift_table[None, None].to(temb.device),
                                    temb.reshape(batch_size, temb.shape[1], 6, -1), dtype)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = ada_values.unbind(dim=2)
    attn_hidden_states = self.attn1(hidden_states=modulated_norm(self.norm1, hidden_states, shift_msa, scale_msa),
                                    encoder_hidden_states=None, image_rotary_emb=image_rotary_emb)
    hidden_states = gated_add(hidden_states, gate_msa, attn_hidden_states)
    attn_hidden_states = self.attn2(hidden_states, encoder_hidden_states=encoder_hidden_states, image_rotary_emb=None,
                                    attention_mask=encoder_attention_mask)
    # the cross-attention's (ungated) update in the MLP norm's kernel, the MLP, its gated update
    return residual_mlp_update(self.norm2, self.ff, hidden_states, attn_hidden_states, None, shift_mlp, scale_mlp,
                               gate_mlp)


def _mochi_rms_norms(block: nn.Module, zero: str, modulated: str) -> bool:
    norm_zero, norm_mod = getattr(block, zero, None), getattr(block, modulated, None)
    return (type(norm_zero).__name__ == "MochiRMSNormZero" and unweighted_rms_norm(getattr(norm_zero, "norm", None)) and
            isinstance(getattr(norm_zero, "linear", None), nn.Module) and
            type(norm_mod).__name__ == "MochiModulatedRMSNorm" and unweighted_rms_norm(getattr(norm_mod, "norm", None)))


def _mochi_block_fits(block: nn.Module) -> bool:
    return _mochi_rms_norms(block, "norm1", "norm3") and (
        getattr(block, "context_pre_only", None) is True or _mochi_rms_norms(block, "norm1_context", "norm3_context"))


def _mochi_zero_norm(norm: nn.Module, x: Tensor, temb: Tensor):
    # MochiRMSNormZero's steps, with its fp32 RMSNorm, product and rounding in one kernel
    scale_msa, gate_msa, scale_mlp, gate_mlp = norm.linear(norm.silu(temb)).chunk(4, dim=1)
    return scaled_rms_norm(norm.norm, x, 1 + scale_msa[:, None].float()), gate_msa, scale_mlp, gate_mlp


def _mochi_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                   encoder_attention_mask: Tensor, image_rotary_emb: Optional[Tensor] = None):
    # A modulation row per sample (each folded into its norms' weights), as the model always computes it
    if (temb.dim() != 2 or temb.shape[0] != hidden_states.shape[0] or not fusable_input(hidden_states) or
            not fusable_input(encoder_hidden_states)):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, encoder_attention_mask,
                                  image_rotary_emb)
    norm_hidden_states, gate_msa, scale_mlp, gate_mlp = _mochi_zero_norm(self.norm1, hidden_states, temb)
    if not self.context_pre_only:
        norm_context, enc_gate_msa, enc_scale_mlp, enc_gate_mlp = _mochi_zero_norm(self.norm1_context,
                                                                                 encoder_hidden_states, temb)
    else:
        norm_context = self.norm1_context(encoder_hidden_states, temb)
    attn_hidden_states, context_attn_hidden_states = self.attn1(
        hidden_states=norm_hidden_states, encoder_hidden_states=norm_context, image_rotary_emb=image_rotary_emb,
        attention_mask=encoder_attention_mask)
    hidden_states = hidden_states + self.norm2(attn_hidden_states, torch.tanh(gate_msa).unsqueeze(1))
    ff_output = self.ff(scaled_rms_norm(self.norm3.norm, hidden_states, 1 + scale_mlp.unsqueeze(1).float()))
    hidden_states = hidden_states + self.norm4(ff_output, torch.tanh(gate_mlp).unsqueeze(1))
    if not self.context_pre_only:
        encoder_hidden_states = encoder_hidden_states + self.norm2_context(context_attn_hidden_states,
                                                                           torch.tanh(enc_gate_msa).unsqueeze(1))
        context_ff_output = self.ff_context(scaled_rms_norm(self.norm3_context.norm, encoder_hidden_states,
                                                            1 + enc_scale_mlp.unsqueeze(1).float()))
        encoder_hidden_states = encoder_hidden_states + self.norm4_context(context_ff_output,
                                                                           torch.tanh(enc_gate_mlp).unsqueeze(1))
    return hidden_states, encoder_hidden_states


def _hunyuan_video_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                           attention_mask: Optional[Tensor] = None, freqs_cis=None, *args, **kwargs):
    if not fusable_input(hidden_states) or not fusable_input(encoder_hidden_states):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, attention_mask, freqs_cis, *args,
                                  **kwargs)
    norm_hidden, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(hidden_states, emb=temb)
    norm_context, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp = self.norm1_context(encoder_hidden_states, emb=temb)
    attn_output, context_attn_output = self.attn(hidden_states=norm_hidden, encoder_hidden_states=norm_context,
                                                 attention_mask=attention_mask, image_rotary_emb=freqs_cis)
    hidden_states = residual_mlp_update(self.norm2, self.ff, hidden_states, attn_output, gate_msa.unsqueeze(1),
                                         shift_mlp, scale_mlp, gate_mlp.unsqueeze(1))
    encoder_hidden_states = residual_mlp_update(self.norm2_context, self.ff_context, encoder_hidden_states,
                                                 context_attn_output, c_gate_msa.unsqueeze(1), c_shift_mlp, c_scale_mlp,
                                                 c_gate_mlp.unsqueeze(1))
    return hidden_states, encoder_hidden_states  # (this order: HunyuanVideo's blocks return the image stream first)


def _hunyuan_image_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                           attention_mask: Optional[Tensor] = None, image_rotary_emb=None, *args, **kwargs):
    # HunyuanImage 2.1's double-stream block is HunyuanVideo's with the rotary embedding under another name
    # (its model passes it by keyword)
    return _hunyuan_video_forward(self, hidden_states, encoder_hidden_states, temb, attention_mask, image_rotary_emb,
                                  *args, **kwargs)


def _wan_block_fits(block: nn.Module) -> bool:
    return (plain_layer_norm(getattr(block, "norm1", None)) and plain_layer_norm(getattr(block, "norm3", None)) and
            isinstance(getattr(block, "scale_shift_table", None), Tensor))


def _wan_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor, rotary_emb) -> Tensor:
    # One modulation row set per sample ([B, 6, K]) or, Wan 2.2 TI2V's per-token timesteps, one per token
    # ([B, T, 6, K]); the kernels read either.
    tokens = hidden_states.shape[1] if hidden_states.dim() == 3 else -1
    if not fusable_input(hidden_states) or not (temb.dim() == 3 or (temb.dim() == 4 and temb.shape[1] == tokens)):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, rotary_emb)
    rows = (rounded_modulation(self.scale_shift_table.unsqueeze(0), temb, hidden_states.dtype).unbind(dim=2)
            if temb.dim() == 4 else None)
    return _wan_fused(self, hidden_states, encoder_hidden_states, temb, rotary_emb, None, rows)


def _skyreels_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor, rotary_emb,
                      attention_mask: Optional[Tensor] = None) -> Tensor:
    # SkyReels-V2's block is Wan's with a self-attention mask (diffusion forcing's causal frame blocks);
    # diffusion forcing modulates per frame, as a row per token ([B, 6, T, K])
    tokens = hidden_states.shape[1] if hidden_states.dim() == 3 else -1
    if not fusable_input(hidden_states) or not (temb.dim() == 3 or (temb.dim() == 4 and temb.shape[2] == tokens)):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, rotary_emb, attention_mask)
    rows = (rounded_modulation(self.scale_shift_table.unsqueeze(2), temb, hidden_states.dtype).unbind(dim=1)
            if temb.dim() == 4 else None)
    return _wan_fused(self, hidden_states, encoder_hidden_states, temb, rotary_emb, attention_mask, rows)


def _wan_fused(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor, rotary_emb,
               attention_mask: Optional[Tensor], token_rows: Optional[tuple[Tensor, ...]] = None) -> Tensor:
    # NOTE: diffusers keeps the modulation in fp32 and the stream's updates in fp32 until a final rounding;
    # the kernels read the rows in the stream's dtype and round each result once (within an ulp of it).
    # token_rows: the six [B, T, K] tables of per-token modulation, already rounded (views read in place)
    rows = token_rows if token_rows is not None else (
        (self.scale_shift_table + temb.float()).to(hidden_states.dtype).chunk(6, dim=1))
    shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = rows
    attn_output = self.attn1(modulated_norm(self.norm1, hidden_states, shift_msa, scale_msa), None, attention_mask,
                             rotary_emb)
    hidden_states = gated_add(hidden_states, gate_msa, attn_output)
    # the cross-attention's norm (FP32LayerNorm with weight and bias, where the config sets cross_attn_norm)
    # in the kernel whose int8 rows its q projection reads
    normed = (affine_layer_norm(self.norm2, hidden_states) if affine_layer_norm_fits(self.norm2, hidden_states)
              else self.norm2(hidden_states.float()).type_as(hidden_states))
    attn_output = self.attn2(normed, encoder_hidden_states, None, None)
    # the cross-attention's (ungated) update, in the MLP norm's kernel
    return residual_mlp_update(self.norm3, self.ffn, hidden_states, attn_output, None, c_shift_msa, c_scale_msa,
                                c_gate_msa)


def _allegro_block_fits(block: nn.Module) -> bool:
    return (plain_layer_norm(getattr(block, "norm1", None)) and plain_layer_norm(getattr(block, "norm2", None)) and
            isinstance(getattr(block, "scale_shift_table", None), Tensor))


def _allegro_forward(self, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                     temb: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                     encoder_attention_mask: Optional[Tensor] = None, image_rotary_emb=None) -> Tensor:
    # Allegro's block: PixArt's (one modulation table for the model, added to the block's own; the
    # cross-attention reads the residual stream as it is), with the MLP's norm in norm2 (norm3 unused)
    if temb is None or hidden_states.dim() != 3 or not fusable_input(hidden_states):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, attention_mask, encoder_attention_mask,
                                  image_rotary_emb)
    batch = hidden_states.shape[0]
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
        self.scale_shift_table[None] + temb.reshape(batch, 6, -1)).chunk(6, dim=1)
    update = self.attn1(modulated_norm(self.norm1, hidden_states, shift_msa, scale_msa), encoder_hidden_states=None,
                        attention_mask=attention_mask, image_rotary_emb=image_rotary_emb)
    gate = gate_msa
    if self.attn2 is not None:
        hidden_states = gated_add(hidden_states, gate_msa, update)
        update = self.attn2(hidden_states, encoder_hidden_states=encoder_hidden_states,
                            attention_mask=encoder_attention_mask, image_rotary_emb=None)
        gate = None
    # the last residual update, in the MLP norm's kernel
    return residual_mlp_update(self.norm2, self.ff, hidden_states, update, gate, shift_mlp, scale_mlp, gate_mlp)


def _kandinsky5_block_fits(block: nn.Module) -> bool:
    return all(plain_layer_norm(getattr(block, name, None)) for name in (
        "self_attention_norm", "cross_attention_norm", "feed_forward_norm")) and isinstance(
        getattr(block, "visual_modulation", None), nn.Module)


def _kandinsky5_forward(self, visual_embed: Tensor, text_embed: Tensor, time_embed: Tensor, rope,
                        sparse_params) -> Tensor:
    # Kandinsky 5's visual block: three modulated norms (self-attention, cross-attention, MLP) from one fp32
    # modulation of nine rows a sample. diffusers computes each norm and residual update in fp32 and
    # rounds once; the kernels do too, reading the rows rounded to the stream's dtype.
    if time_embed.dim() != 2 or not fusable_input(visual_embed):
        return type(self).forward(self, visual_embed, text_embed, time_embed, rope, sparse_params)
    (shift_sa, scale_sa, gate_sa, shift_ca, scale_ca, gate_ca, shift_ff, scale_ff, gate_ff) = (
        self.visual_modulation(time_embed).to(visual_embed.dtype).unsqueeze(1).chunk(9, dim=-1))
    update = self.self_attention(modulated_norm(self.self_attention_norm, visual_embed, shift_sa, scale_sa),
                                 rotary_emb=rope, sparse_params=sparse_params)
    visual_embed, y = residual_then_modulated_norm(self.cross_attention_norm, visual_embed, update, gate_sa, shift_ca,
                                                   scale_ca)
    update = self.cross_attention(y, encoder_hidden_states=text_embed)
    return residual_mlp_update(self.feed_forward_norm, self.feed_forward, visual_embed, update, gate_ca, shift_ff,
                               scale_ff, gate_ff)


# diffusers class name -> (whether an instance's configuration fits, the fused forward)
def _cogvideox_block_fits(block: nn.Module) -> bool:
    norms = (getattr(block, "norm1", None), getattr(block, "norm2", None))
    return all(isinstance(getattr(n, "linear", None), nn.Module) and has_affine(getattr(n, "norm", None))
               for n in norms) and isinstance(getattr(block, "ff", None), nn.Module)


def _cogvideox_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                       image_rotary_emb=None, attention_kwargs=None):
    if temb is None or temb.dim() != 2 or not fusable_input(hidden_states) or not fusable_input(encoder_hidden_states):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb, attention_kwargs)
    norm1, norm2 = self.norm1, self.norm2
    shift, scale, gate, c_shift, c_scale, c_gate = norm1.linear(norm1.silu(temb)).chunk(6, dim=1)
    attn_hidden, attn_context = self.attn1(
        hidden_states=affine_modulated_norm(norm1.norm, hidden_states, shift, scale),
        encoder_hidden_states=affine_modulated_norm(norm1.norm, encoder_hidden_states, c_shift, c_scale),
        image_rotary_emb=image_rotary_emb, **(attention_kwargs or {}))
    shift2, scale2, gate2, c_shift2, c_scale2, c_gate2 = norm2.linear(norm2.silu(temb)).chunk(6, dim=1)
    hidden_states = residual_mlp_update(norm2.norm, self.ff, hidden_states, attn_hidden, gate[:, None], shift2,
                                        scale2, gate2[:, None])
    encoder_hidden_states = residual_mlp_update(norm2.norm, self.ff, encoder_hidden_states, attn_context,
                                                c_gate[:, None], c_shift2, c_scale2, c_gate2[:, None])
    return hidden_states, encoder_hidden_states


def _cosmos_block_fits(block: nn.Module) -> bool:
    # (Cosmos 2.5's control branch projects the stream before and after a block: the stock forward runs those)
    return (all(is_cosmos_adaln_zero(getattr(block, n, None)) for n in ("norm1", "norm2", "norm3")) and
            getattr(block, "before_proj", None) is None and getattr(block, "after_proj", None) is None and
            all(isinstance(getattr(block, n, None), nn.Module) for n in ("attn1", "attn2", "ff")))


def _cosmos_forward(self, hidden_states: Tensor, encoder_hidden_states, embedded_timestep: Tensor,
                    temb: Optional[Tensor] = None, image_rotary_emb=None, extra_pos_emb: Optional[Tensor] = None,
                    attention_mask: Optional[Tensor] = None, controlnet_residual: Optional[Tensor] = None, **kwargs):
    def stock():
        extra = dict(kwargs, controlnet_residual=controlnet_residual) if controlnet_residual is not None else kwargs
        return type(self).forward(self, hidden_states, encoder_hidden_states, embedded_timestep, temb, image_rotary_emb,
                                  extra_pos_emb, attention_mask, **extra)

    if controlnet_residual is not None or kwargs.get("latents") is not None or not fusable_input(hidden_states):
        return stock()
    # The norms' modulation rows as CosmosAdaLayerNormZero computes them (shift, scale, gate; a row set a
    # sample, or a token with Cosmos 2.5's per-frame timesteps), or None where they fit no fused norm.
    rows = [cosmos_modulation(n, hidden_states, embedded_timestep, temb) for n in (self.norm1, self.norm2, self.norm3)]
    if any(r is None for r in rows):
        return stock()
    (shift1, scale1, gate1), (shift2, scale2, gate2), (shift3, scale3, gate3) = rows
    if extra_pos_emb is not None:  # the embedding's (ungated) sum, in the self-attention norm's kernel
        hidden_states, normed = residual_then_modulated_norm(self.norm1.norm, hidden_states, extra_pos_emb, None,
                                                             shift1, scale1)
    else:
        normed = modulated_norm(self.norm1.norm, hidden_states, shift1, scale1)
    attn_output = self.attn1(normed, image_rotary_emb=image_rotary_emb)
    hidden_states, normed = residual_then_modulated_norm(self.norm2.norm, hidden_states, attn_output, gate1, shift2,
                                                         scale2)
    attn_output = self.attn2(normed, encoder_hidden_states=encoder_hidden_states, attention_mask=attention_mask)
    return residual_mlp_update(self.norm3.norm, self.ff, hidden_states, attn_output, gate2, shift3, scale3, gate3)


VIDEO_BLOCKS = {
    "CosmosTransformerBlock": (_cosmos_block_fits, _cosmos_forward),
    "CogVideoXBlock": (_cogvideox_block_fits, _cogvideox_forward),
    "LTXVideoTransformerBlock": (_ltx_block_fits, _ltx_forward),
    "MochiTransformerBlock": (_mochi_block_fits, _mochi_forward),
    "WanTransformerBlock": (_wan_block_fits, _wan_forward),
    "SkyReelsV2TransformerBlock": (_wan_block_fits, _skyreels_forward),
    "AllegroTransformerBlock": (_allegro_block_fits, _allegro_forward),
    "Kandinsky5TransformerDecoderBlock": (_kandinsky5_block_fits, _kandinsky5_forward),
    "HunyuanVideoTransformerBlock": (joint_block_fits, _hunyuan_video_forward),
    "HunyuanVideo15TransformerBlock": (joint_block_fits, _hunyuan_video_forward),
    "HunyuanImageTransformerBlock": (joint_block_fits, _hunyuan_image_forward),
}
