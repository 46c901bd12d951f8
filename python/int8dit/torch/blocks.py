"""Transformer blocks whose inline modulated norms quantize their own output: the image models' fused
forwards, and the registry of all of them (the video models' from blocks_video.py) that
fuse_block_norms reads.

diffusers' transformer blocks modulate some LayerNorms inline in their forward,
``layer_norm(h) * (1 + scale) + shift`` as three PyTorch passes, and feed the result to int8dit Linears
that quantize it once more:

- BasicTransformerBlock (DiT: ``norm_type="ada_norm_zero"``; PixArt: ``"ada_norm_single"``): the norm
  before the MLP, and in PixArt the one before self-attention too;
- JointTransformerBlock (SD3) and FluxTransformerBlock (Flux's double-stream blocks): the norms
  before the image and the text stream's MLPs;
- Flux2TransformerBlock and Flux2SingleTransformerBlock (FLUX.2): every norm, whose modulation comes
  from the model's shared modulation tables rather than a norm module: both streams' before attention
  and before the MLPs (the residual update before each MLP norm in the norm's kernel), and the
  single-stream block's before its fused qkv + MLP projection, whose gated residual update then runs
  as one gated_add;
- QwenImageTransformerBlock (Qwen-Image): both streams' norms before attention and before the MLPs,
  modulated from the block's own img_mod / txt_mod tables (in edit mode a row set per image token);
- QwenImage21TransformerBlock (Qwen-Image 2.1): both norms of its single-stream block, scaled (no shift)
  from the model's shared modulation, a row set per token with causal_condition;
- ChromaTransformerBlock and ChromaSingleTransformerBlock (Chroma): the pruned adaLN norms (modules
  without parameters, fed the model's precomputed modulation rows) and the double-stream block's norms
  before both MLPs; the single-stream block's gated residual update as one gated_add;
- ZImageTransformerBlock (Z-Image): the RMSNorms before attention and before the MLP, scaled by the
  block's modulation (each sample's scale folds into its norm's weight: a kernel call a sample);
- Lumina2TransformerBlock (Lumina-Image 2.0): the same two RMSNorms as Z-Image's, its ancestor, with
  the attention norm's scale computed by LuminaRMSNormZero's linear;
- SanaTransformerBlock (Sana): the norm before its linear self-attention, and the gated residual update
  after it as one gated_add (the MLP's norm feeds GLUMBConv's convolutions and stays as it is);
- Krea2TransformerBlock (Krea 2): its fp32 RMSNorms before attention and the MLP, modulated with a shift
  and a scale, into which the norm's zero-centered weight folds (the LayerNorm kernel with RMSNorm's
  statistics), the attention's gated update in the MLP norm's kernel;
- Flux3ModeTransformerBlock and Flux3SingleTransformerBlock (FLUX.3), whose forwards live in flux3.py
  with the model's forward that gives them one modulation row a sample;
- the video models' blocks (LTX-Video, Mochi, HunyuanVideo 1 and 1.5, Wan), whose forwards live in
  blocks_video.py (its docstring lists what each fuses).

Those norms are not modules of their own, so int8dit.torch.adanorm cannot replace them;
``fuse_block_norms`` gives each such block a forward of its own that computes them with
``layernorm_modulate_quantize`` (the bf16 output and its int8 rows in one kernel) and records the rows
for the layers that read them (produced.py), built from the steps of block_steps.py. Everything else is
the block's own computation, op for op, in the same order.

The forward is replaced on the instance, so the module, its class, its children and its state dict
stay as they are. The replacements handle the configurations the models use (no positional
embedding, GLIGEN, chunked feed-forward or SD3.5's dual attention) on plain eager calls with
bf16/fp16 activations; any other call runs the class's own forward. (A model pickled with
``torch.save`` would carry the bound forward: save it with int8dit.save_quantized.)
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .block_steps import (fusable_input, gated_add, joint_block_fits, modulated_norm, modulation_fits,
                          per_batch_modulation, plain_layer_norm, residual_mlp_update, residual_then_modulated_norm,
                          scaled_rms_norm, weighted_rms_norm)
from .blocks_video import VIDEO_BLOCKS
from .flux3 import FLUX3_BLOCKS
from .instance_forward import set_forward
from .ops import any_needs_grad


_NORM_TYPES = ("ada_norm_zero", "ada_norm_single")


def _basic_block_fits(block: nn.Module) -> bool:
    if getattr(block, "norm_type", None) not in _NORM_TYPES:
        return False
    if getattr(block, "pos_embed", True) is not None or getattr(block, "only_cross_attention", True):
        return False
    if block.norm_type == "ada_norm_zero":
        return plain_layer_norm(getattr(block, "norm3", None))
    return plain_layer_norm(getattr(block, "norm1", None)) and plain_layer_norm(getattr(block, "norm2", None))


def _basic_forward(self, hidden_states: Tensor, attention_mask=None, encoder_hidden_states=None,
                   encoder_attention_mask=None, timestep=None, cross_attention_kwargs=None, class_labels=None,
                   added_cond_kwargs=None) -> Tensor:
    if (not fusable_input(hidden_states) or self._chunk_size is not None or
            (cross_attention_kwargs and "gligen" in cross_attention_kwargs)):
        return type(self).forward(self, hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask,
                                  timestep, cross_attention_kwargs, class_labels, added_cond_kwargs)
    kwargs = dict(cross_attention_kwargs) if cross_attention_kwargs else {}
    zero = self.norm_type == "ada_norm_zero"
    if zero:  # the norm is a module (int8dit.torch.adanorm fuses it)
        y, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(hidden_states, timestep, class_labels,
                                                                  hidden_dtype=hidden_states.dtype)
        gate_msa, gate_mlp = gate_msa.unsqueeze(1), gate_mlp.unsqueeze(1)
    else:  # PixArt: one modulation table for the whole model, added to the block's own
        batch = hidden_states.shape[0]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.scale_shift_table[None] + timestep.reshape(batch, 6, -1)).chunk(6, dim=1)
        y = modulated_norm(self.norm1, hidden_states, shift_msa, scale_msa)

    # The residual update right before the MLP's norm is fused into it: self-attention's (gated) where
    # there is no cross-attention (DiT), else the cross-attention's (ungated).
    update, gate = self.attn1(y, encoder_hidden_states=None, attention_mask=attention_mask, **kwargs), gate_msa
    if self.attn2 is not None:  # cross-attention: PixArt reads the residual stream as it is
        hidden_states = gated_add(hidden_states, gate, update)
        h = self.norm2(hidden_states) if zero else hidden_states
        update, gate = self.attn2(h, encoder_hidden_states=encoder_hidden_states,
                                  attention_mask=encoder_attention_mask, **kwargs), None
    return residual_mlp_update(self.norm3 if zero else self.norm2, self.ff, hidden_states, update, gate, shift_mlp,
                                scale_mlp, gate_mlp)


def _sd3_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                 joint_attention_kwargs=None):
    if (not fusable_input(hidden_states) or not fusable_input(encoder_hidden_states) or
            self._chunk_size is not None or self.use_dual_attention):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, joint_attention_kwargs)
    kwargs = joint_attention_kwargs or {}
    norm_hidden, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(hidden_states, emb=temb)
    if self.context_pre_only:
        norm_context = self.norm1_context(encoder_hidden_states, temb)
    else:
        norm_context, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp = self.norm1_context(encoder_hidden_states,
                                                                                           emb=temb)
    attn_output, context_attn_output = self.attn(hidden_states=norm_hidden, encoder_hidden_states=norm_context,
                                                 **kwargs)
    hidden_states = residual_mlp_update(self.norm2, self.ff, hidden_states, attn_output, gate_msa.unsqueeze(1),
                                         shift_mlp, scale_mlp, gate_mlp.unsqueeze(1))
    if self.context_pre_only:
        return None, hidden_states
    encoder_hidden_states = residual_mlp_update(self.norm2_context, self.ff_context, encoder_hidden_states,
                                                 context_attn_output, c_gate_msa.unsqueeze(1), c_shift_mlp, c_scale_mlp,
                                                 c_gate_mlp.unsqueeze(1))
    return encoder_hidden_states, hidden_states


def _flux_streams_after_attention(block: nn.Module, hidden_states: Tensor, encoder_hidden_states: Tensor,
                                  outputs: tuple, image: tuple, text: tuple) -> tuple[Tensor, Tensor]:
    """The end of a Flux (or Chroma) double-stream block after its attention: each stream's gated update,
    MLP norm and gated MLP update, from its (gate_msa, shift_mlp, scale_mlp, gate_mlp) rows [B, K], and
    an IP-adapter's attention output (outputs[2]) added to the image stream where there is one."""
    gate_msa, shift_mlp, scale_mlp, gate_mlp = image
    hidden_states = residual_mlp_update(block.norm2, block.ff, hidden_states, outputs[0], gate_msa.unsqueeze(1),
                                         shift_mlp, scale_mlp, gate_mlp.unsqueeze(1))
    if len(outputs) == 3:
        hidden_states = hidden_states + outputs[2]
    gate_msa, shift_mlp, scale_mlp, gate_mlp = text
    encoder_hidden_states = residual_mlp_update(block.norm2_context, block.ff_context, encoder_hidden_states,
                                                 outputs[1], gate_msa.unsqueeze(1), shift_mlp, scale_mlp,
                                                 gate_mlp.unsqueeze(1))
    if encoder_hidden_states.dtype == torch.float16:
        encoder_hidden_states = encoder_hidden_states.clip(-65504, 65504)
    return encoder_hidden_states, hidden_states


def _flux_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor, image_rotary_emb=None,
                  joint_attention_kwargs=None):
    if not fusable_input(hidden_states) or not fusable_input(encoder_hidden_states):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb,
                                  joint_attention_kwargs)
    norm_hidden, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(hidden_states, emb=temb)
    norm_context, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp = self.norm1_context(encoder_hidden_states, emb=temb)
    outputs = self.attn(hidden_states=norm_hidden, encoder_hidden_states=norm_context,
                        image_rotary_emb=image_rotary_emb, **(joint_attention_kwargs or {}))
    return _flux_streams_after_attention(self, hidden_states, encoder_hidden_states, outputs,
                                         (gate_msa, shift_mlp, scale_mlp, gate_mlp),
                                         (c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp))


def _bria_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor, image_rotary_emb=None,
                  attention_kwargs=None):
    # Bria's block is Flux's with the attention keywords under another name
    return _flux_forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb, attention_kwargs)


def _cogview4_block_fits(block: nn.Module) -> bool:
    norm1 = getattr(block, "norm1", None)
    return (all(plain_layer_norm(getattr(norm1, name, None)) for name in ("norm", "norm_context")) and
            isinstance(getattr(norm1, "linear", None), nn.Module) and
            plain_layer_norm(getattr(block, "norm2", None)) and plain_layer_norm(getattr(block, "norm2_context", None)))


def _cogview4_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Optional[Tensor] = None,
                      image_rotary_emb=None, attention_mask=None, attention_kwargs=None, **attention_extra):
    # CogView4's joint block (and GLM-Image's, whose kv_cache comes in attention_extra): its own
    # adaLN-Zero (CogView4AdaLayerNormZero: twelve rows, both streams' attention norms inside it) and one
    # MLP for both streams
    if temb is None or not fusable_input(hidden_states) or not fusable_input(encoder_hidden_states):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb, attention_mask,
                                  attention_kwargs, **attention_extra)
    adaln = self.norm1
    (shift_msa, c_shift_msa, scale_msa, c_scale_msa, gate_msa, c_gate_msa, shift_mlp, c_shift_mlp, scale_mlp,
     c_scale_mlp, gate_mlp, c_gate_mlp) = adaln.linear(temb).chunk(12, dim=1)
    attn_hidden, attn_context = self.attn1(
        hidden_states=modulated_norm(adaln.norm, hidden_states, shift_msa, scale_msa),
        encoder_hidden_states=modulated_norm(adaln.norm_context, encoder_hidden_states, c_shift_msa, c_scale_msa),
        image_rotary_emb=image_rotary_emb, attention_mask=attention_mask, **attention_extra, **(attention_kwargs or {}))
    hidden_states = residual_mlp_update(self.norm2, self.ff, hidden_states, attn_hidden, gate_msa.unsqueeze(1),
                                         shift_mlp, scale_mlp, gate_mlp.unsqueeze(1))
    encoder_hidden_states = residual_mlp_update(self.norm2_context, self.ff, encoder_hidden_states, attn_context,
                                                 c_gate_msa.unsqueeze(1), c_shift_mlp, c_scale_mlp,
                                                 c_gate_mlp.unsqueeze(1))
    return hidden_states, encoder_hidden_states


def _glm_image_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Optional[Tensor] = None,
                       image_rotary_emb=None, attention_mask=None, attention_kwargs=None, kv_cache=None):
    # GLM-Image's block is CogView4's with a kv_cache for its attention (positional under gradient checkpointing)
    return _cogview4_forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb, attention_mask,
                             attention_kwargs, kv_cache=kv_cache)


def _hidream_block_fits(block: nn.Module) -> bool:
    names = ("norm1_i", "norm3_i") + (("norm1_t", "norm3_t") if hasattr(block, "ff_t") else ())
    return all(plain_layer_norm(getattr(block, name, None)) for name in names) and isinstance(
        getattr(block, "adaLN_modulation", None), nn.Module)


def _hidream_forward(self, hidden_states: Tensor, hidden_states_masks=None, encoder_hidden_states=None,
                     temb: Optional[Tensor] = None, image_rotary_emb=None):
    # HiDream-I1's double-stream block: one adaLN linear giving both streams' twelve rows ([B, 1, K] each)
    if (temb is None or encoder_hidden_states is None or not fusable_input(hidden_states) or
            not fusable_input(encoder_hidden_states)):
        return type(self).forward(self, hidden_states, hidden_states_masks, encoder_hidden_states, temb,
                                  image_rotary_emb)
    (shift_msa_i, scale_msa_i, gate_msa_i, shift_mlp_i, scale_mlp_i, gate_mlp_i, shift_msa_t, scale_msa_t, gate_msa_t,
     shift_mlp_t, scale_mlp_t, gate_mlp_t) = self.adaLN_modulation(temb)[:, None].chunk(12, dim=-1)
    attn_image, attn_text = self.attn1(modulated_norm(self.norm1_i, hidden_states, shift_msa_i, scale_msa_i),
                                       hidden_states_masks,
                                       modulated_norm(self.norm1_t, encoder_hidden_states, shift_msa_t, scale_msa_t),
                                       image_rotary_emb=image_rotary_emb)
    hidden_states = residual_mlp_update(self.norm3_i, self.ff_i, hidden_states, attn_image, gate_msa_i, shift_mlp_i,
                                         scale_mlp_i, gate_mlp_i)
    encoder_hidden_states = residual_mlp_update(self.norm3_t, self.ff_t, encoder_hidden_states, attn_text, gate_msa_t,
                                                 shift_mlp_t, scale_mlp_t, gate_mlp_t)
    return hidden_states, encoder_hidden_states


def _hidream_single_forward(self, hidden_states: Tensor, hidden_states_masks=None, encoder_hidden_states=None,
                            temb: Optional[Tensor] = None, image_rotary_emb=None) -> Tensor:
    # HiDream-I1's single-stream block (its tokens already joined by the model)
    if temb is None or not fusable_input(hidden_states):
        return type(self).forward(self, hidden_states, hidden_states_masks, encoder_hidden_states, temb,
                                  image_rotary_emb)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(temb)[:, None].chunk(6, dim=-1)
    attn_output = self.attn1(modulated_norm(self.norm1_i, hidden_states, shift_msa, scale_msa), hidden_states_masks,
                             image_rotary_emb=image_rotary_emb)
    return residual_mlp_update(self.norm3_i, self.ff_i, hidden_states, attn_output, gate_msa, shift_mlp, scale_mlp,
                               gate_mlp)


def _prx_block_fits(block: nn.Module) -> bool:
    return (plain_layer_norm(getattr(block, "img_pre_norm", None)) and
            plain_layer_norm(getattr(block, "post_attention_layernorm", None)) and
            isinstance(getattr(block, "modulation", None), nn.Module))


def _prx_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor, image_rotary_emb,
                 attention_mask: Optional[Tensor] = None, **kwargs) -> Tensor:
    # PRX's block: the image tokens' attention norm and (after the attention's gated update) the MLP's
    # norm, modulated by one row set a sample ([B, 1, K] each); its MLP is gated with tanh-GELU
    if not fusable_input(hidden_states):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb, attention_mask,
                                  **kwargs)
    (attn_shift, attn_scale, attn_gate), (mlp_shift, mlp_scale, mlp_gate) = self.modulation(temb)
    attn_out = self.attention(hidden_states=modulated_norm(self.img_pre_norm, hidden_states, attn_shift, attn_scale),
                              encoder_hidden_states=encoder_hidden_states, attention_mask=attention_mask,
                              image_rotary_emb=image_rotary_emb)
    hidden_states, x = residual_then_modulated_norm(self.post_attention_layernorm, hidden_states, attn_out, attn_gate,
                                                    mlp_shift, mlp_scale)
    return gated_add(hidden_states, mlp_gate, self.down_proj(self.mlp_act(self.gate_proj(x)) * self.up_proj(x)))


def _flux2_block_fits(block: nn.Module) -> bool:
    return all(plain_layer_norm(getattr(block, name, None)) for name in ("norm1", "norm1_context", "norm2",
                                                                           "norm2_context"))


def _flux2_single_block_fits(block: nn.Module) -> bool:
    return plain_layer_norm(getattr(block, "norm", None))


def _flux2_modulation(mod: Tensor, sets: int) -> tuple[tuple[Tensor, Tensor, Tensor], ...]:
    """FLUX.2's (shift, scale, gate) sets from one modulation table (diffusers' Flux2Modulation.split,
    restated so that diffusers need not be importable here): [B, 1, K] views of [B, (1,) 3 * sets * K], or
    [B, T, K] views of a table with a row per token."""
    if mod.dim() == 2:
        mod = mod.unsqueeze(1)
    params = mod.chunk(3 * sets, dim=-1)
    return tuple(params[3 * i:3 * (i + 1)] for i in range(sets))


def _flux2_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb_mod_img: Tensor,
                   temb_mod_txt: Tensor, image_rotary_emb=None, joint_attention_kwargs=None):
    if (not fusable_input(hidden_states) or not fusable_input(encoder_hidden_states) or
            not modulation_fits(temb_mod_img, *hidden_states.shape[:2]) or
            not modulation_fits(temb_mod_txt, *encoder_hidden_states.shape[:2])):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb_mod_img, temb_mod_txt,
                                  image_rotary_emb, joint_attention_kwargs)
    (shift_msa, scale_msa, gate_msa), (shift_mlp, scale_mlp, gate_mlp) = _flux2_modulation(temb_mod_img, 2)
    (c_shift_msa, c_scale_msa, c_gate_msa), (c_shift_mlp, c_scale_mlp, c_gate_mlp) = _flux2_modulation(temb_mod_txt, 2)
    norm_hidden = modulated_norm(self.norm1, hidden_states, shift_msa, scale_msa)
    norm_context = modulated_norm(self.norm1_context, encoder_hidden_states, c_shift_msa, c_scale_msa)
    attn_output, context_attn_output = self.attn(hidden_states=norm_hidden, encoder_hidden_states=norm_context,
                                                 image_rotary_emb=image_rotary_emb, **(joint_attention_kwargs or {}))
    hidden_states = residual_mlp_update(self.norm2, self.ff, hidden_states, attn_output, gate_msa, shift_mlp,
                                         scale_mlp, gate_mlp)
    encoder_hidden_states = residual_mlp_update(self.norm2_context, self.ff_context, encoder_hidden_states,
                                                 context_attn_output, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp)
    if encoder_hidden_states.dtype == torch.float16:
        encoder_hidden_states = encoder_hidden_states.clip(-65504, 65504)
    return encoder_hidden_states, hidden_states


def _flux2_single_forward(self, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor], temb_mod: Tensor,
                          image_rotary_emb=None, joint_attention_kwargs=None, split_hidden_states: bool = False,
                          text_seq_len: Optional[int] = None):
    tokens = hidden_states.shape[1] + (0 if encoder_hidden_states is None else encoder_hidden_states.shape[1])
    if (not fusable_input(hidden_states) or not modulation_fits(temb_mod, hidden_states.shape[0], tokens) or
            (encoder_hidden_states is not None and not fusable_input(encoder_hidden_states))):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb_mod, image_rotary_emb,
                                  joint_attention_kwargs, split_hidden_states, text_seq_len)
    if encoder_hidden_states is not None:
        text_seq_len = encoder_hidden_states.shape[1]
        hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
    (shift, scale, gate), = _flux2_modulation(temb_mod, 1)
    norm_hidden = modulated_norm(self.norm, hidden_states, shift, scale)
    attn_output = self.attn(hidden_states=norm_hidden, image_rotary_emb=image_rotary_emb,
                            **(joint_attention_kwargs or {}))
    hidden_states = gated_add(hidden_states, gate, attn_output)
    if hidden_states.dtype == torch.float16:
        hidden_states = hidden_states.clip(-65504, 65504)
    if split_hidden_states:
        return hidden_states[:, :text_seq_len], hidden_states[:, text_seq_len:]
    return hidden_states


def _qwen_block_fits(block: nn.Module) -> bool:
    return all(plain_layer_norm(getattr(block, name, None)) for name in ("img_norm1", "img_norm2", "txt_norm1",
                                                                           "txt_norm2"))


def _rows_picked_per_token(mod_params: Tensor, index: Tensor, x: Tensor) -> Optional[Tensor]:
    """Qwen-Image's edit-mode modulation: mod_params [2B, n] holds two row sets a sample (the first B rows, then
    the second B), index [B, L] picks one for each of x's L tokens (0: the first). Returns the [B, L, n] table
    of each token's row set, or None where the shapes are not those."""
    batch, tokens = x.shape[0], x.shape[1]
    if not (mod_params.dim() == 2 and mod_params.shape[0] == 2 * batch and isinstance(index, Tensor) and
            tuple(index.shape) == (batch, tokens) and index.device == mod_params.device):
        return None
    return torch.where((index == 0).unsqueeze(-1), mod_params[:batch].unsqueeze(1), mod_params[batch:].unsqueeze(1))


def _qwen_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, encoder_hidden_states_mask: Tensor,
                  temb: Tensor, image_rotary_emb=None, joint_attention_kwargs=None, modulate_index=None):
    def own_forward():
        return type(self).forward(self, hidden_states, encoder_hidden_states, encoder_hidden_states_mask, temb,
                                  image_rotary_emb, joint_attention_kwargs, modulate_index)

    if not fusable_input(hidden_states) or not fusable_input(encoder_hidden_states):
        return own_forward()
    img_mod_params = self.img_mod(temb)  # [B, 6K]: shift, scale, gate of norm1, then of norm2
    txt_mod_params = self.txt_mod(torch.chunk(temb, 2, dim=0)[0] if self.zero_cond_t else temb)
    if modulate_index is not None:
        # Edit mode (zero_cond_t): two row sets a sample (the timestep's, then t = 0's), each image token
        # picking one by its index (the target image's tokens 0, the condition images' 1), as the class's
        # torch.where picks them: a table of a row set per token, [B, L, 6K], that the kernels read as such.
        img_mod_params = _rows_picked_per_token(img_mod_params, modulate_index, hidden_states)
        if img_mod_params is None:
            return own_forward()
    elif not per_batch_modulation(img_mod_params, hidden_states):
        return own_forward()
    if not per_batch_modulation(txt_mod_params, encoder_hidden_states):
        return own_forward()
    (shift1, scale1, gate1), (shift2, scale2, gate2) = (m.chunk(3, dim=-1) for m in img_mod_params.chunk(2, dim=-1))
    (c_shift1, c_scale1, c_gate1), (c_shift2, c_scale2, c_gate2) = (m.chunk(3, dim=-1)
                                                                    for m in txt_mod_params.chunk(2, dim=-1))
    img_modulated = modulated_norm(self.img_norm1, hidden_states, shift1, scale1)
    txt_modulated = modulated_norm(self.txt_norm1, encoder_hidden_states, c_shift1, c_scale1)
    img_attn_output, txt_attn_output = self.attn(hidden_states=img_modulated, encoder_hidden_states=txt_modulated,
                                                 encoder_hidden_states_mask=encoder_hidden_states_mask,
                                                 image_rotary_emb=image_rotary_emb, **(joint_attention_kwargs or {}))
    if gate1.dim() == 2:  # (a row per sample: over its tokens)
        gate1, gate2 = gate1.unsqueeze(1), gate2.unsqueeze(1)
    hidden_states = residual_mlp_update(self.img_norm2, self.img_mlp, hidden_states, img_attn_output,
                                         gate1, shift2, scale2, gate2)
    encoder_hidden_states = residual_mlp_update(self.txt_norm2, self.txt_mlp, encoder_hidden_states, txt_attn_output,
                                                 c_gate1.unsqueeze(1), c_shift2, c_scale2, c_gate2.unsqueeze(1))
    if encoder_hidden_states.dtype == torch.float16:
        encoder_hidden_states = encoder_hidden_states.clip(-65504, 65504)
    if hidden_states.dtype == torch.float16:
        hidden_states = hidden_states.clip(-65504, 65504)
    return encoder_hidden_states, hidden_states


def _qwen_image21_block_fits(block: nn.Module) -> bool:
    return plain_layer_norm(getattr(block, "img_norm1", None)) and plain_layer_norm(getattr(block, "img_norm2", None))


def _qwen_image21_rows(modulation: Tensor, target_token_mask: Optional[Tensor], x: Tensor) -> Optional[Tensor]:
    """Qwen-Image 2.1's shared modulation as its blocks read it (diffusers' _select_modulation_rows): [B, 1, n]
    from [B, n], or with causal_condition ([B + 1, n] and a [L] mask, True at the target image's tokens) the
    [B, L, n] table whose target tokens take their sample's row and the others the trailing t = 0 row. None
    where the shapes are not those."""
    batch, tokens = x.shape[0], x.shape[1]
    if modulation.dim() != 2:
        return None
    if target_token_mask is None:
        return modulation.unsqueeze(1) if modulation.shape[0] == batch else None
    if (modulation.shape[0] != batch + 1 or not isinstance(target_token_mask, Tensor) or
            target_token_mask.numel() != tokens or target_token_mask.device != modulation.device):
        return None
    return torch.where(target_token_mask.view(1, -1, 1), modulation[:-1].unsqueeze(1), modulation[-1:].unsqueeze(0))


def _qwen_image21_forward(self, hidden_states: Tensor, modulation: Tensor, rotary_emb=None, attention_mask=None,
                          target_token_mask: Optional[Tensor] = None, layer_cache=None, kv_cache_mode=None,
                          cache_write_slice=None, segments=None, key_valid=None) -> Tensor:
    # Qwen-Image 2.1's single-stream block: both LayerNorms scaled by (1 + scale) without a shift (the
    # kernels' shift a zero table), each residual update gated by tanh(gate); the modulation one row set a
    # sample or, with causal_condition, one a token. The attention's cache arguments pass through.
    attention = dict(attention_mask=attention_mask, rotary_emb=rotary_emb, layer_cache=layer_cache,
                     kv_cache_mode=kv_cache_mode, cache_write_slice=cache_write_slice, segments=segments,
                     key_valid=key_valid)
    rows = _qwen_image21_rows(modulation, target_token_mask, hidden_states) if fusable_input(hidden_states) else None
    if rows is None:
        return type(self).forward(self, hidden_states, modulation, target_token_mask=target_token_mask, **attention)
    scale1, gate1, scale2, gate2 = rows.chunk(4, dim=-1)
    no_shift = torch.zeros(scale1.shape, dtype=scale1.dtype, device=scale1.device)
    attn_output = self.attn(hidden_states=modulated_norm(self.img_norm1, hidden_states, no_shift, scale1), **attention)
    hidden_states, y = residual_then_modulated_norm(self.img_norm2, hidden_states, attn_output, gate1.tanh(), no_shift,
                                                    scale2)
    hidden_states = gated_add(hidden_states, gate2.tanh(), self.img_mlp(y))
    if hidden_states.dtype == torch.float16:
        hidden_states = hidden_states.clip(-65504, 65504)
    return hidden_states


def _chroma_pruned_norm(norm: Optional[nn.Module]) -> bool:
    """Chroma's pruned adaLN norm (ChromaAdaLayerNormZero(Single)Pruned) over a plain LayerNorm, fed its
    modulation rows (no embedding of its own)."""
    return norm is not None and getattr(norm, "emb", None) is None and plain_layer_norm(getattr(norm, "norm", None))


def _chroma_block_fits(block: nn.Module) -> bool:
    return (_chroma_pruned_norm(getattr(block, "norm1", None)) and
            _chroma_pruned_norm(getattr(block, "norm1_context", None)) and joint_block_fits(block))


def _chroma_single_block_fits(block: nn.Module) -> bool:
    return _chroma_pruned_norm(getattr(block, "norm", None))


def _chroma_rows(temb: Tensor, sets: int, x: Tensor) -> Optional[tuple[Tensor, ...]]:
    """Chroma's modulation rows for one norm module: temb [B, sets, K] as the pruned norms split it
    (shift, scale, gate, ...: [B, K] each), or None where they are not one row set per batch element of x."""
    if temb.dim() != 3 or temb.shape[:2] != (x.shape[0], sets) or temb.shape[2] != x.shape[-1]:
        return None
    return temb.flatten(1, 2).chunk(sets, dim=1)


def _chroma_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor, image_rotary_emb=None,
                    attention_mask=None, joint_attention_kwargs=None):
    rows = _chroma_rows(temb[:, :6], 6, hidden_states) if temb.dim() == 3 else None
    c_rows = _chroma_rows(temb[:, 6:], 6, encoder_hidden_states) if temb.dim() == 3 else None
    if rows is None or c_rows is None or not fusable_input(hidden_states) or not fusable_input(encoder_hidden_states):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb, attention_mask,
                                  joint_attention_kwargs)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = rows
    c_shift_msa, c_scale_msa, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp = c_rows
    norm_hidden = modulated_norm(self.norm1.norm, hidden_states, shift_msa, scale_msa)
    norm_context = modulated_norm(self.norm1_context.norm, encoder_hidden_states, c_shift_msa, c_scale_msa)
    if attention_mask is not None:
        attention_mask = attention_mask[:, None, None, :] * attention_mask[:, None, :, None]
    outputs = self.attn(hidden_states=norm_hidden, encoder_hidden_states=norm_context,
                        image_rotary_emb=image_rotary_emb, attention_mask=attention_mask,
                        **(joint_attention_kwargs or {}))
    return _flux_streams_after_attention(self, hidden_states, encoder_hidden_states, outputs,
                                         (gate_msa, shift_mlp, scale_mlp, gate_mlp),
                                         (c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp))


def _chroma_single_forward(self, hidden_states: Tensor, temb: Tensor, image_rotary_emb=None, attention_mask=None,
                           joint_attention_kwargs=None):
    rows = _chroma_rows(temb, 3, hidden_states)
    if rows is None or not fusable_input(hidden_states):
        return type(self).forward(self, hidden_states, temb, image_rotary_emb, attention_mask, joint_attention_kwargs)
    shift, scale, gate = rows
    norm_hidden = modulated_norm(self.norm.norm, hidden_states, shift, scale)
    mlp_hidden_states = self.act_mlp(self.proj_mlp(norm_hidden))
    if attention_mask is not None:
        attention_mask = attention_mask[:, None, None, :] * attention_mask[:, None, :, None]
    attn_output = self.attn(hidden_states=norm_hidden, image_rotary_emb=image_rotary_emb, attention_mask=attention_mask,
                            **(joint_attention_kwargs or {}))
    out = self.proj_out(torch.cat([attn_output, mlp_hidden_states], dim=2))
    hidden_states = gated_add(hidden_states, gate.unsqueeze(1), out)
    if hidden_states.dtype == torch.float16:
        hidden_states = hidden_states.clip(-65504, 65504)
    return hidden_states


def _z_image_block_fits(block: nn.Module) -> bool:
    dim = getattr(block, "dim", None)
    return (getattr(block, "modulation", False) and isinstance(dim, int) and
            weighted_rms_norm(getattr(block, "attention_norm1", None), dim) and
            weighted_rms_norm(getattr(block, "ffn_norm1", None), dim))


def _z_image_forward(self, x: Tensor, attn_mask: Tensor, freqs_cis: Tensor, adaln_input: Optional[Tensor] = None,
                     noise_mask: Optional[Tensor] = None, adaln_noisy: Optional[Tensor] = None,
                     adaln_clean: Optional[Tensor] = None) -> Tensor:
    # A modulation row per sample: each sample's scale folds into its norm's weight (a noise mask picks a
    # row per token; the class's forward computes that).
    if noise_mask is not None or adaln_input is None or adaln_input.shape[0] != x.shape[0] or not fusable_input(x):
        return type(self).forward(self, x, attn_mask, freqs_cis, adaln_input, noise_mask, adaln_noisy, adaln_clean)
    scale_msa, gate_msa, scale_mlp, gate_mlp = self.adaLN_modulation(adaln_input).unsqueeze(1).chunk(4, dim=2)
    gate_msa, gate_mlp = gate_msa.tanh(), gate_mlp.tanh()
    scale_msa, scale_mlp = 1.0 + scale_msa, 1.0 + scale_mlp
    attn_out = self.attention(scaled_rms_norm(self.attention_norm1, x, scale_msa), attention_mask=attn_mask,
                              freqs_cis=freqs_cis)
    x = x + gate_msa * self.attention_norm2(attn_out)
    return x + gate_mlp * self.ffn_norm2(self.feed_forward(scaled_rms_norm(self.ffn_norm1, x, scale_mlp)))


def _lumina2_block_fits(block: nn.Module) -> bool:
    norm1, dim = getattr(block, "norm1", None), None
    weight = getattr(getattr(norm1, "norm", None), "weight", None)
    if isinstance(weight, Tensor) and weight.dim() == 1:
        dim = weight.shape[0]
    return (getattr(block, "modulation", False) and type(norm1).__name__ == "LuminaRMSNormZero" and
            isinstance(getattr(norm1, "linear", None), nn.Module) and dim is not None and
            weighted_rms_norm(norm1.norm, dim) and weighted_rms_norm(getattr(block, "ffn_norm1", None), dim))


def _lumina2_forward(self, hidden_states: Tensor, attention_mask: Tensor, image_rotary_emb: Tensor,
                     temb: Optional[Tensor] = None) -> Tensor:
    # Z-Image's fold: a modulation row per sample, folded into its norm's weight
    if temb is None or temb.shape[0] != hidden_states.shape[0] or not fusable_input(hidden_states):
        return type(self).forward(self, hidden_states, attention_mask, image_rotary_emb, temb)
    # LuminaRMSNormZero's own steps, with its RMSNorm and product in one kernel
    scale_msa, gate_msa, scale_mlp, gate_mlp = self.norm1.linear(self.norm1.silu(temb)).chunk(4, dim=1)
    norm_hidden_states = scaled_rms_norm(self.norm1.norm, hidden_states, 1 + scale_msa[:, None])
    attn_output = self.attn(hidden_states=norm_hidden_states, encoder_hidden_states=norm_hidden_states,
                            attention_mask=attention_mask, image_rotary_emb=image_rotary_emb)
    hidden_states = hidden_states + gate_msa.unsqueeze(1).tanh() * self.norm2(attn_output)
    mlp_output = self.feed_forward(scaled_rms_norm(self.ffn_norm1, hidden_states, 1 + scale_mlp.unsqueeze(1)))
    return hidden_states + gate_mlp.unsqueeze(1).tanh() * self.ffn_norm2(mlp_output)


def _sana_block_fits(block: nn.Module) -> bool:
    return (plain_layer_norm(getattr(block, "norm1", None)) and
            isinstance(getattr(block, "scale_shift_table", None), Tensor) and hasattr(block, "attn1"))


def _sana_cross_attention(self, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor],
                          encoder_attention_mask: Optional[Tensor]) -> Tensor:
    # Sana's (and Sana-Video's) cross-attention reads the residual stream as it is, its update ungated
    if self.attn2 is None:
        return hidden_states
    return self.attn2(hidden_states, encoder_hidden_states=encoder_hidden_states,
                      attention_mask=encoder_attention_mask) + hidden_states


def _sana_forward(self, hidden_states: Tensor, attention_mask: Optional[Tensor] = None,
                  encoder_hidden_states: Optional[Tensor] = None, encoder_attention_mask: Optional[Tensor] = None,
                  timestep: Optional[Tensor] = None, height: Optional[int] = None, width: Optional[int] = None) -> Tensor:
    # A modulation row set per sample, in the stream's dtype (a table of another dtype would promote the
    # block's sums: the class's forward computes that)
    dtype = hidden_states.dtype
    if (timestep is None or not fusable_input(hidden_states) or self.scale_shift_table.dtype != dtype or
            timestep.dtype != dtype or timestep.numel() != hidden_states.shape[0] * self.scale_shift_table.numel()):
        return type(self).forward(self, hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask,
                                  timestep, height, width)
    batch_size = hidden_states.shape[0]
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
        self.scale_shift_table[None] + timestep.reshape(batch_size, 6, -1)).chunk(6, dim=1)
    attn_output = self.attn1(modulated_norm(self.norm1, hidden_states, shift_msa, scale_msa))
    hidden_states = _sana_cross_attention(self, gated_add(hidden_states, gate_msa, attn_output), encoder_hidden_states,
                                          encoder_attention_mask)
    # the MLP's norm feeds GLUMBConv's convolutions, which int8dit does not quantize: the block's own ops
    norm_hidden_states = self.norm2(hidden_states) * (1 + scale_mlp) + shift_mlp
    ff_output = self.ff(norm_hidden_states.unflatten(1, (height, width)).permute(0, 3, 1, 2))
    return hidden_states + gate_mlp * ff_output.flatten(2, 3).permute(0, 2, 1)


def _sana_video_forward(self, hidden_states: Tensor, attention_mask: Optional[Tensor] = None,
                        encoder_hidden_states: Optional[Tensor] = None, encoder_attention_mask: Optional[Tensor] = None,
                        timestep: Optional[Tensor] = None, frames: Optional[int] = None, height: Optional[int] = None,
                        width: Optional[int] = None, rotary_emb=None) -> Tensor:
    # Sana-Video's block: Sana's with rotary q/k and a 3-D MLP. One modulation row set a sample
    # ([B, 1, 6K], text to video) or, image to video, one a token ([B, T, 6K]: the first frame at t = 0)
    # fuses the attention's norm; a table of another dtype than the stream's takes the class's forward.
    dtype = hidden_states.dtype
    if (timestep is None or not fusable_input(hidden_states) or self.scale_shift_table.dtype != dtype or
            timestep.dtype != dtype or timestep.dim() != 3 or timestep.shape[1] not in (1, hidden_states.shape[1])):
        return type(self).forward(self, hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask,
                                  timestep, frames, height, width, rotary_emb)
    batch_size = hidden_states.shape[0]
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
        self.scale_shift_table[None, None] + timestep.reshape(batch_size, timestep.shape[1], 6, -1)).unbind(dim=2)
    attn_output = self.attn1(modulated_norm(self.norm1, hidden_states, shift_msa, scale_msa), rotary_emb=rotary_emb)
    hidden_states = _sana_cross_attention(self, gated_add(hidden_states, gate_msa, attn_output), encoder_hidden_states,
                                          encoder_attention_mask)
    # the MLP's norm feeds convolutions, which int8dit does not quantize: the block's own ops
    norm_hidden_states = self.norm2(hidden_states) * (1 + scale_mlp) + shift_mlp
    ff_output = self.ff(norm_hidden_states.unflatten(1, (frames, height, width)))
    return hidden_states + gate_mlp * ff_output.flatten(1, 3)


def _krea2_norm(norm: Optional[nn.Module], dim: int) -> bool:
    """Krea 2's RMSNorm: a zero-centered fp32 weight (the multiplier is 1 + weight), no bias."""
    weight = getattr(norm, "weight", None)
    return (type(norm).__name__ == "Krea2RMSNorm" and isinstance(weight, Tensor) and tuple(weight.shape) == (dim,)
            and isinstance(getattr(norm, "eps", None), float))


def _krea2_block_fits(block: nn.Module) -> bool:
    table = getattr(block, "scale_shift_table", None)
    if not isinstance(table, Tensor) or table.dim() != 2 or table.shape[0] != 6:
        return False
    return _krea2_norm(getattr(block, "norm1", None), table.shape[1]) and _krea2_norm(getattr(block, "norm2", None),
                                                                                       table.shape[1])


def _krea2_scale(norm: nn.Module, scale: Tensor, dtype: torch.dtype) -> Tensor:
    """(1 + scale) * norm(h) = rms(h) * (1 + scale) * (1 + weight): the norm's zero-centered weight folded into
    the modulation's scale (in fp32, rounded once to the stream's dtype), so that the LayerNorm kernel with
    RMSNorm's statistics computes the modulated norm in one pass."""
    return ((1 + scale.float()) * (1 + norm.weight.float()) - 1).to(dtype)


def _krea2_forward(self, hidden_states: Tensor, temb: Tensor, image_rotary_emb, attention_mask=None) -> Tensor:
    # One modulation row set a sample ([B, 1, 6K]); autograd through the table or the norms' weights takes
    # the class's forward (the folded scale is not its computation).
    if (not fusable_input(hidden_states) or temb.dim() != 3 or temb.shape[1] != 1 or temb.shape[0] != hidden_states.shape[0]
            or any_needs_grad(hidden_states, temb, self.scale_shift_table, self.norm1.weight, self.norm2.weight)):
        return type(self).forward(self, hidden_states, temb, image_rotary_emb, attention_mask)
    dtype = hidden_states.dtype
    modulation = temb.unflatten(-1, (6, -1)) + self.scale_shift_table
    prescale, preshift, pregate, postscale, postshift, postgate = modulation.unbind(-2)
    norm_hidden = modulated_norm(self.norm1, hidden_states, preshift, _krea2_scale(self.norm1, prescale, dtype))
    attn_out = self.attn(norm_hidden, attention_mask=attention_mask, image_rotary_emb=image_rotary_emb)
    hidden_states, norm_hidden = residual_then_modulated_norm(self.norm2, hidden_states, attn_out, pregate, postshift,
                                                               _krea2_scale(self.norm2, postscale, dtype))
    return gated_add(hidden_states, postgate, self.ff(norm_hidden))


# diffusers class name -> (whether an instance's configuration fits, the fused forward)
_BLOCKS = {
    "BasicTransformerBlock": (_basic_block_fits, _basic_forward),
    "JointTransformerBlock": (joint_block_fits, _sd3_forward),
    "FluxTransformerBlock": (joint_block_fits, _flux_forward),
    # diffusers' copies of Flux's double-stream block, forward for forward (Ovis's MLPs are SwiGLU, which
    # the fused forward calls as it calls any MLP)
    "LongCatImageTransformerBlock": (joint_block_fits, _flux_forward),
    "BriaFiboTransformerBlock": (joint_block_fits, _flux_forward),
    "OvisImageTransformerBlock": (joint_block_fits, _flux_forward),
    "BriaTransformerBlock": (joint_block_fits, _bria_forward),
    "CogView4TransformerBlock": (_cogview4_block_fits, _cogview4_forward),
    "GlmImageTransformerBlock": (_cogview4_block_fits, _glm_image_forward),
    "HiDreamImageTransformerBlock": (_hidream_block_fits, _hidream_forward),
    "HiDreamImageSingleTransformerBlock": (_hidream_block_fits, _hidream_single_forward),
    "PRXBlock": (_prx_block_fits, _prx_forward),
    "Flux2TransformerBlock": (_flux2_block_fits, _flux2_forward),
    "Flux2SingleTransformerBlock": (_flux2_single_block_fits, _flux2_single_forward),
    "QwenImageTransformerBlock": (_qwen_block_fits, _qwen_forward),
    "ChromaTransformerBlock": (_chroma_block_fits, _chroma_forward),
    "ChromaSingleTransformerBlock": (_chroma_single_block_fits, _chroma_single_forward),
    "ZImageTransformerBlock": (_z_image_block_fits, _z_image_forward),
    "Lumina2TransformerBlock": (_lumina2_block_fits, _lumina2_forward),
    "SanaTransformerBlock": (_sana_block_fits, _sana_forward),
    "SanaVideoTransformerBlock": (_sana_block_fits, _sana_video_forward),
    "QwenImage21TransformerBlock": (_qwen_image21_block_fits, _qwen_image21_forward),
    "Krea2TransformerBlock": (_krea2_block_fits, _krea2_forward),
    **FLUX3_BLOCKS,
    **VIDEO_BLOCKS,
}


def fuse_block_norms(model: nn.Module) -> int:
    """Give every block of ``model`` whose diffusers class _BLOCKS names (DiT, PixArt, SD3, Flux and its copies
    in LongCat-Image, Bria, Bria FIBO and Ovis-Image, CogView4, GLM-Image, HiDream-I1, PRX, FLUX.2, FLUX.3,
    Qwen-Image and Qwen-Image 2.1, Chroma, Z-Image, Lumina 2, Sana, Krea 2; Sana-Video, LTX-Video, Mochi, HunyuanVideo 1 and 1.5 and its copy in
    HunyuanImage 2.1, Wan and SkyReels-V2, Allegro, CogVideoX, Cosmos) and whose configuration fits the fused forward (see the
    module docstring), matched by class name and attributes so that diffusers need not be importable here.
    Returns how many."""
    count = 0
    for module in model.modules():
        entry = _BLOCKS.get(type(module).__name__)
        if entry is None or getattr(module, "_int8dit_fused_norms", False) or not entry[0](module):
            continue
        set_forward(module, entry[1])
        module._int8dit_fused_norms = True
        count += 1
    return count
