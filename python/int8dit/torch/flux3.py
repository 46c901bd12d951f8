"""FLUX.3 (diffusers' Flux3Transformer2DModel): its modulation computed once per sample, and its blocks'
modulated norms quantizing their own output.

FLUX.3 modulates every token with a row of its own: the model expands each mode's timestep embedding to
``[batch, tokens, dim]`` (the image tokens at the step's timestep, the text and reference tokens at 0),
applies SiLU to that (which materializes it) and runs each modulation head, a dim -> 3 * dim linear,
over every token. Within a mode every row is the same, so the model computes the same row thousands
of times: at 1024 px (4096 image tokens, dim 3072) the two image heads are 2 x 232 GFLOP a forward,
and every block then reads its shift, scale and gate as ``[batch, tokens, dim]`` tensors (~75 MB a
block, ~2.5 GB a forward over its 33 image blocks).

``compute_modulation_once`` gives the model a forward of its own (set on the instance) that is the
class's forward op for op, but with each mode's embedding kept as one row a sample: the heads and the
output norm's linear run on one row, and the blocks get ``[batch, 1, 3 * dim]`` tables, which they
broadcast as they broadcast the per-token ones. The values are the same rows (an int8dit Linear gives
the same bits for a row whichever other rows it is called with; a float linear may round a one-row
product differently in the last place). It changes nothing int8-specific, so int8dit's end-to-end
benchmark gives it to its bf16 and other baselines too. Calls it does not handle (gradient
checkpointing with gradients, a LoRA ``scale`` in ``attention_kwargs``) run the class's forward.

With one row a sample, the blocks' norms fuse (``FLUX3_BLOCKS``, in fuse_block_norms' registry):

- Flux3ModeTransformerBlock: the norm before its parallel attention and MLP, both of which read the
  int8 rows (a LayerNorm + modulation + quantization kernel), and ``h + gate * (attn + mlp)`` as one
  gated_add after PyTorch's sum;
- Flux3SingleTransformerBlock: the text and content tokens' norms, each with its own modulation,
  written by two kernels straight into the halves of the concatenated sequence that attention and MLP
  read (no torch.cat of the bf16 values, and the int8 rows of the whole sequence recorded for them).

Reference-image tokens (``image_cond_hidden_states``, image-to-image) carry a modulation of their own
inside the joint blocks' content sequence [image | reference]. The model's forward then builds the
content table per token, as the class does (a block that runs its class's forward reads it), and
registers which rows it repeats (``content_parts``): a fused joint block given that very table
normalizes the image and the reference tokens each with its own row (three kernel calls a sample with
the text's) and gates their update with the table's per-token gate in one addcmul.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .block_steps import fusable_input, gated_add, modulated_norm, per_batch_modulation, plain_layer_norm
from .fused import layernorm_modulate_quantize_into
from .instance_forward import has_forward, set_forward
from .ops import any_needs_grad
from .produced import PRODUCED


def _is_flux3_model(module: nn.Module) -> bool:
    return type(module).__name__ == "Flux3Transformer2DModel" and all(
        isinstance(getattr(module, name, None), nn.Module) for name in (
            "time_proj", "timestep_embedder", "early_stream_modulations", "single_stream_modulations",
            "x_embedders", "context_embedder", "pos_embed", "mode_blocks", "txt_mode_blocks",
            "single_transformer_blocks", "norm_out", "proj_out"))


def compute_modulation_once(model: nn.Module) -> int:
    """Give every Flux3Transformer2DModel in ``model`` the forward that computes each mode's modulation
    once per sample (this module's docstring). Returns how many models it changed; calling it again
    changes nothing more."""
    changed = 0
    for module in model.modules():
        if not _is_flux3_model(module) or has_forward(module, _flux3_model_forward):
            continue
        set_forward(module, _flux3_model_forward)  # (under accelerate's hook where it has one)
        changed += 1
    return changed


def _flux3_model_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, timestep: Tensor,
                         img_ids: Tensor, txt_ids: Tensor, image_cond_hidden_states: Optional[Tensor] = None,
                         image_cond_ids: Optional[Tensor] = None, target_timestep: Optional[Tensor] = None,
                         attention_kwargs: Optional[dict[str, Any]] = None, return_dict: bool = True):
    if (attention_kwargs or (torch.is_grad_enabled() and self.gradient_checkpointing) or
            (image_cond_hidden_states is None) != (image_cond_ids is None) or
            (target_timestep is not None) != bool(self.config.flow_map)):
        # (the class's forward raises the errors of a bad call, and scales LoRA layers for `scale`)
        return type(self).forward(self, hidden_states, encoder_hidden_states, timestep, img_ids, txt_ids,
                                  image_cond_hidden_states, image_cond_ids, target_timestep, attention_kwargs,
                                  return_dict)
    batch_size, image_seq_len = hidden_states.shape[:2]
    dtype = hidden_states.dtype

    # 1. Timestep embeddings, one row a sample ([B, 1, dim]) where the class expands them to every token
    image_temb = self.timestep_embedder(self.time_proj(timestep.to(dtype) * 1000).to(dtype))[:, None, :]
    zero_temb = self.time_proj(torch.zeros(batch_size, device=hidden_states.device, dtype=dtype))
    zero_temb = self.timestep_embedder(zero_temb.to(dtype))[:, None, :]
    if target_timestep is not None:
        target_temb = self.time_proj(target_timestep.to(dtype) * 1000)
        target_temb = self.target_timestep_embedder(target_temb.to(dtype))[:, None, :]
        image_temb = image_temb + target_temb
        zero_temb = zero_temb + target_temb
    zero_temb_act = F.silu(zero_temb)
    image_temb_act = F.silu(image_temb)

    # 2.-4. Each mode's two modulation tables ([B, 1, 3 * dim]), input projection and RoPE
    txt_early_mod = self.early_stream_modulations["txt"](zero_temb_act)
    txt_single_mod = self.single_stream_modulations["txt"](zero_temb_act)
    encoder_hidden_states = self.context_embedder(encoder_hidden_states)
    txt_rotary_emb = self.pos_embed(txt_ids)
    image_early_mod = self.early_stream_modulations["image"](image_temb_act)
    image_single_mod = self.single_stream_modulations["image"](image_temb_act)
    hidden_states = self.x_embedders["image"](hidden_states)
    image_rotary_emb = self.pos_embed(img_ids)
    if image_cond_hidden_states is not None:
        cond_early_mod = self.early_stream_modulations["image_cond"](zero_temb_act)
        cond_single_mod = self.single_stream_modulations["image_cond"](zero_temb_act)
        image_cond_hidden_states = self.x_embedders["image_cond"](image_cond_hidden_states)
        cond_rotary_emb = self.pos_embed(image_cond_ids)

    # 5. Per-mode blocks
    for block in self.txt_mode_blocks:
        encoder_hidden_states = block(encoder_hidden_states, txt_early_mod, txt_rotary_emb)
    for block in self.mode_blocks["image"]:
        hidden_states = block(hidden_states, image_early_mod, image_rotary_emb)
    if image_cond_hidden_states is not None:
        for block in self.mode_blocks["image_cond"]:
            image_cond_hidden_states = block(image_cond_hidden_states, cond_early_mod, cond_rotary_emb)

    # 6. Joint blocks over [text, image, reference]: with reference tokens, the content's table is a row
    # per token, as the class builds it
    if image_cond_hidden_states is not None:
        content_states = torch.cat([hidden_states, image_cond_hidden_states], dim=1)
        cond_seq_len = image_cond_hidden_states.shape[1]
        content_mod = torch.cat([image_single_mod.expand(-1, image_seq_len, -1),
                                 cond_single_mod.expand(-1, cond_seq_len, -1)], dim=1)
        joint_rotary_emb = tuple(torch.cat([txt_rotary_emb[i], image_rotary_emb[i], cond_rotary_emb[i]], dim=0)
                                 for i in range(2))
        parts = ((image_seq_len, image_single_mod), (cond_seq_len, cond_single_mod))
    else:
        content_states = hidden_states
        content_mod = image_single_mod
        joint_rotary_emb = tuple(torch.cat([txt_rotary_emb[i], image_rotary_emb[i]], dim=0) for i in range(2))
        parts = None
    with content_parts(content_mod, parts):
        for block in self.single_transformer_blocks:
            encoder_hidden_states, content_states = block(hidden_states=content_states,
                                                          encoder_hidden_states=encoder_hidden_states,
                                                          temb_mod=content_mod, temb_mod_context=txt_single_mod,
                                                          image_rotary_emb=joint_rotary_emb)

    # 7. Output layers on the image tokens (the output norm's linear on one row a sample too)
    output = self.proj_out(self.norm_out(content_states[:, :image_seq_len], image_temb))
    if not return_dict:
        return (output,)
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    return Transformer2DModelOutput(sample=output)


def _flux3_block_fits(block: nn.Module) -> bool:
    return plain_layer_norm(getattr(block, "norm", None)) and all(
        isinstance(getattr(block, name, None), nn.Module) for name in ("attn", "ff"))


def _flux3_mode_forward(self, hidden_states: Tensor, temb_mod: Tensor, image_rotary_emb) -> Tensor:
    if not fusable_input(hidden_states) or not per_batch_modulation(temb_mod, hidden_states):
        return type(self).forward(self, hidden_states, temb_mod, image_rotary_emb)
    shift, scale, gate = temb_mod.chunk(3, dim=-1)
    norm_hidden_states = modulated_norm(self.norm, hidden_states, shift, scale)
    attn_output = self.attn(hidden_states=norm_hidden_states, image_rotary_emb=image_rotary_emb)
    ff_output = self.ff(norm_hidden_states)
    return gated_add(hidden_states, gate, attn_output + ff_output)


def _joint_modulated_norms(norm: nn.Module, parts: list[tuple[Tensor, Tensor, Tensor]]) -> Tensor:
    """torch.cat([norm(x) * (1 + scale) + shift for x, shift, scale in parts], dim=1), each part
    normalized by a kernel writing straight into its tokens of the joined sequence (a call a part and
    sample), with the int8 rows of the whole sequence recorded for its readers."""
    batch, width = parts[0][0].shape[0], parts[0][0].shape[-1]
    tokens = sum(x.shape[1] for x, _, _ in parts)
    x0 = parts[0][0]
    y = torch.empty((batch, tokens, width), dtype=x0.dtype, device=x0.device)
    q = torch.empty((batch, tokens, width), dtype=torch.int8, device=x0.device)
    q_scale = torch.empty((batch, tokens), dtype=torch.float32, device=x0.device)
    for b in range(batch):
        start = 0
        for x, shift, scale in parts:
            end = start + x.shape[1]
            layernorm_modulate_quantize_into(x[b:b + 1], shift[b:b + 1], scale[b:b + 1], norm.eps,
                                             q[b:b + 1, start:end], q_scale[b:b + 1, start:end],
                                             y[b:b + 1, start:end])
            start = end
    PRODUCED.remember(y, q, q_scale)
    return y


# id(a per-token content table) -> (a weak reference to it, its parts: (tokens, [B, 1, 3K] row) each), for
# the joint blocks of the forward that built it (content_parts)
_CONTENT_PARTS: dict = {}


@contextlib.contextmanager
def content_parts(table: Tensor, parts):
    """While the joint blocks run: ``table`` (per token) repeats each row of ``parts`` over its tokens.
    Traced calls (torch.compile) register nothing: their blocks run the class's forward anyway."""
    if parts is None or torch.compiler.is_compiling():
        yield
        return
    _CONTENT_PARTS[id(table)] = (weakref.ref(table), parts)
    try:
        yield
    finally:
        _CONTENT_PARTS.pop(id(table), None)


def _content_rows(temb_mod: Tensor, hidden_states: Tensor):
    """The content's modulation as parts (tokens, [B, 1, 3K] row), or None where it is a row per token
    that content_parts did not register."""
    if per_batch_modulation(temb_mod, hidden_states):
        return ((hidden_states.shape[1], temb_mod),)
    entry = _CONTENT_PARTS.get(id(temb_mod))
    if entry is None or entry[0]() is not temb_mod or sum(n for n, _ in entry[1]) != hidden_states.shape[1]:
        return None
    return entry[1] if all(per_batch_modulation(row, hidden_states) for _, row in entry[1]) else None


def _flux3_single_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb_mod: Tensor,
                          temb_mod_context: Tensor, image_rotary_emb) -> tuple[Tensor, Tensor]:
    # (fusable_input first: a traced call must not reach _content_rows' id())
    fits = (fusable_input(hidden_states) and fusable_input(encoder_hidden_states) and
            per_batch_modulation(temb_mod_context, encoder_hidden_states) and
            not any_needs_grad(hidden_states, encoder_hidden_states, temb_mod, temb_mod_context))
    parts = _content_rows(temb_mod, hidden_states) if fits else None
    if parts is None:
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb_mod, temb_mod_context,
                                  image_rotary_emb)
    c_shift, c_scale, c_gate = temb_mod_context.chunk(3, dim=-1)
    norm_parts, start = [(encoder_hidden_states, c_shift, c_scale)], 0
    for tokens, row in parts:
        shift, scale, _ = row.chunk(3, dim=-1)
        norm_parts.append((hidden_states[:, start:start + tokens], shift, scale))
        start += tokens
    combined = _joint_modulated_norms(self.norm, norm_parts)
    attn_output = self.attn(hidden_states=combined, image_rotary_emb=image_rotary_emb)
    output = attn_output + self.ff(combined)
    text_tokens = encoder_hidden_states.shape[1]
    context_output, content_output = output.split([text_tokens, hidden_states.shape[1]], dim=1)
    # one row for all content tokens: one gated_add; several: the table's per-token gate, one addcmul
    gate = parts[0][1].chunk(3, dim=-1)[2] if len(parts) == 1 else temb_mod.chunk(3, dim=-1)[2]
    content = (gated_add(hidden_states, gate, content_output) if len(parts) == 1 else
               torch.addcmul(hidden_states, gate, content_output))
    return gated_add(encoder_hidden_states, c_gate, context_output), content


# diffusers class name -> (whether an instance's configuration fits, the fused forward)
FLUX3_BLOCKS = {
    "Flux3ModeTransformerBlock": (_flux3_block_fits, _flux3_mode_forward),
    "Flux3SingleTransformerBlock": (_flux3_block_fits, _flux3_single_forward),
}
