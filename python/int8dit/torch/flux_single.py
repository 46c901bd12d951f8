"""Flux's single-stream blocks with GELU and the concatenation fused into proj_out's quantization; also
diffusers' copies of the block (LongCat-Image, Bria) and HunyuanVideo's (HunyuanImage 2.1, FramePack),
which computes the same with the image tokens first (_hunyuan_single_forward).

diffusers' FluxSingleTransformerBlock computes ``proj_out(cat([attn(n), GELU(proj_mlp(n))], -1))``.
With int8dit Linears that is a GELU pass over proj_mlp's output (4608 x 12288 at 1024 px), a
concatenation pass over both inputs (4608 x 15360) and proj_out's own quantization pass reading the
concatenation back: about 0.5 GB a block moved that ``concat_gelu_quantize`` does not move. It reads
the attention output and proj_mlp's output once and writes only proj_out's int8 rows, and proj_out
then runs only its GEMM.

``fuse_flux_single_blocks`` gives each such block a forward of its own, set on the instance (the
module, its class, children and state dict stay as they are). It is the block's own computation op
for op, with the GELU moved after the attention (they are independent) and fused. It applies where
proj_out is an int8dit Linear and act_mlp the tanh GELU, to calls with bf16/fp16 activations that
need no gradient, eager (straight to the implementation) or traced (torch.compile: through the
registered op); any other call runs the class's forward.

Two more passes go where the block's tensors allow (eager calls): the residual update is one
``torch.addcmul`` (block_steps.gated_add), and the concatenation of the text and image tokens at the
block's start is no copy where they are the two halves of the previous single block's output, as
they are from the second block on (``joined_tokens``): 4608 x 3072 read and written again, 57 MB a
block at 1024 px.

Numerics: the unfused path rounds GELU's output to bf16 before quantizing it; the fused one
quantizes the fp32 GELU value, so int8 values may differ by one, as in int8dit.torch.mlp.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .block_steps import gated_add
from .fused import concat_gelu_quantize_impl
from .instance_forward import set_forward
from .linear import Linear
from .ops import any_needs_grad, plain_eager_call

_FUSED_DTYPES = (torch.bfloat16, torch.float16)


def _single_block_fits(block: nn.Module) -> bool:
    """A diffusers FluxSingleTransformerBlock, or one of its copies (_COPIES), matched by class name and
    attributes so that diffusers need not be importable here, whose proj_out is an int8dit Linear reading
    [attention | GELU(proj_mlp)]."""
    if type(block).__name__ != "FluxSingleTransformerBlock" and type(block).__name__ not in _COPIES:
        return False
    act, proj_mlp, proj_out = (getattr(block, n, None) for n in ("act_mlp", "proj_mlp", "proj_out"))
    return (isinstance(act, nn.GELU) and act.approximate == "tanh" and isinstance(proj_out, Linear) and
            proj_mlp is not None and getattr(proj_mlp, "out_features", -1) < proj_out.in_features)


def _fusable(x: Tensor) -> bool:
    # Traced calls fuse too (through the registered op): unlike the producers' table of the fused norms,
    # this rewrite holds no state between ops. Calls that need a gradient take the class's forward.
    return x.dim() == 3 and x.dtype in _FUSED_DTYPES and not any_needs_grad(x)


def joined_tokens(first: Tensor, second: Tensor) -> Tensor:
    """torch.cat([first, second], dim=1) (Flux: text then image; HunyuanVideo: image then text), without
    the copy where the two are the halves of one contiguous [B, T, C] tensor in that order (a previous
    single block's split output): that tensor, as a view. Eager calls only (tracing sees no storage)."""
    if plain_eager_call(first) and _halves_of_one_tensor(first, second):
        batch, tokens, channels = first.shape[0], first.shape[1] + second.shape[1], first.shape[2]
        return first.as_strided((batch, tokens, channels), (tokens * channels, channels, 1), first.storage_offset())
    return torch.cat([first, second], dim=1)


def _halves_of_one_tensor(first: Tensor, second: Tensor) -> bool:
    # NOTE: ordered for host time (~1 us where it fails early): the storage comparison, which builds
    # two storage objects, comes last. Adjacent memory alone would not do: the caching allocator hands
    # out neighbouring blocks of one segment as separate tensors.
    if first.dim() != 3 or second.dim() != 3 or first.dtype != second.dtype:
        return False
    batch, first_tokens, channels = first.shape
    if second.shape[0] != batch or second.shape[2] != channels:
        return False
    if second.data_ptr() != first.data_ptr() + first_tokens * channels * first.element_size():
        return False
    tokens = first_tokens + second.shape[1]
    strides = (tokens * channels, channels, 1)
    if batch == 1:  # a batch stride of a 1-element dimension says nothing
        strides_fit = first.stride()[1:] == strides[1:] and second.stride()[1:] == strides[1:]
    else:
        strides_fit = first.stride() == strides and second.stride() == strides
    return strides_fit and first.untyped_storage().data_ptr() == second.untyped_storage().data_ptr()


def _gated_proj_out(block: nn.Module, residual: Tensor, gate: Tensor, attn_output: Tensor,
                    mlp_hidden_states: Tensor) -> Tensor:
    """residual + gate * proj_out([attention | GELU(mlp)]): the end of a single-stream block, with GELU, the
    concatenation and proj_out's quantization in one kernel where the tensors allow."""
    proj_out = block.proj_out
    if (attn_output.dtype != mlp_hidden_states.dtype or attn_output.shape[:-1] != mlp_hidden_states.shape[:-1] or
            attn_output.shape[-1] + mlp_hidden_states.shape[-1] != proj_out.in_features or
            any_needs_grad(attn_output, mlp_hidden_states)):
        # an attention processor that changed the dtype, the tokens or the width (proj_out then says what
        # does not fit), or inputs autograd must see (an adapter on the attention or on proj_mlp): the
        # block's own ops
        out = proj_out(torch.cat([attn_output, block.act_mlp(mlp_hidden_states)], dim=2))
    else:
        smooth = proj_out._buffers["smooth"]
        if plain_eager_call(attn_output):  # skip the dispatcher (ops.py says why)
            q, q_scale = concat_gelu_quantize_impl(attn_output, mlp_hidden_states, smooth)
        else:  # traced (torch.compile, make_fx): the registered op, which has a fake implementation
            q, q_scale = torch.ops.int8dit.concat_gelu_quantize(attn_output, mlp_hidden_states, smooth)
        out = proj_out.gemm_on_own_rows(q, q_scale, residual.dtype)
    hidden_states = gated_add(residual, gate.unsqueeze(1), out)
    if hidden_states.dtype == torch.float16:
        hidden_states = hidden_states.clip(-65504, 65504)
    return hidden_states


def _single_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                    image_rotary_emb=None, joint_attention_kwargs=None):
    if not _fusable(hidden_states) or not _fusable(encoder_hidden_states):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb,
                                  joint_attention_kwargs)
    text_seq_len = encoder_hidden_states.shape[1]
    hidden_states = joined_tokens(encoder_hidden_states, hidden_states)

    residual = hidden_states
    norm_hidden_states, gate = self.norm(hidden_states, emb=temb)
    mlp_hidden_states = self.proj_mlp(norm_hidden_states)  # GELU: fused below
    attn_output = self.attn(hidden_states=norm_hidden_states, image_rotary_emb=image_rotary_emb,
                            **(joint_attention_kwargs or {}))

    hidden_states = _gated_proj_out(self, residual, gate, attn_output, mlp_hidden_states)
    encoder_hidden_states, hidden_states = hidden_states[:, :text_seq_len], hidden_states[:, text_seq_len:]
    return encoder_hidden_states, hidden_states


def _bria_single_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                         image_rotary_emb=None, attention_kwargs=None):
    # Bria's single-stream block is Flux's with the attention keywords under another name
    return _single_forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb, attention_kwargs)


def _hunyuan_single_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                            attention_mask=None, image_rotary_emb=None, *args, **kwargs):
    # HunyuanVideo's single-stream block: Flux's with the image tokens first and an attention that takes
    # the two parts apart and returns them apart (joined again before proj_out, as the block does)
    if not _fusable(hidden_states) or not _fusable(encoder_hidden_states):
        return type(self).forward(self, hidden_states, encoder_hidden_states, temb, attention_mask, image_rotary_emb,
                                  *args, **kwargs)
    text_seq_len = encoder_hidden_states.shape[1]
    hidden_states = joined_tokens(hidden_states, encoder_hidden_states)

    residual = hidden_states
    norm_hidden_states, gate = self.norm(hidden_states, emb=temb)
    mlp_hidden_states = self.proj_mlp(norm_hidden_states)  # GELU: fused below
    attn_output, context_attn_output = self.attn(
        hidden_states=norm_hidden_states[:, :-text_seq_len], encoder_hidden_states=norm_hidden_states[:, -text_seq_len:],
        attention_mask=attention_mask, image_rotary_emb=image_rotary_emb)
    attn_output = torch.cat([attn_output, context_attn_output], dim=1)

    hidden_states = _gated_proj_out(self, residual, gate, attn_output, mlp_hidden_states)
    return hidden_states[:, :-text_seq_len], hidden_states[:, -text_seq_len:]


# diffusers' copies of Flux's single-stream block, forward for forward, and HunyuanVideo's (also in
# HunyuanImage 2.1 and FramePack) -> the fused forward they take. (Ovis-Image's gates its MLP with SiLU
# and Bria FIBO's has no text stream: neither is one.)
_COPIES = {"LongCatImageSingleTransformerBlock": _single_forward, "BriaSingleTransformerBlock": _bria_single_forward,
           "HunyuanVideoSingleTransformerBlock": _hunyuan_single_forward,
           "HunyuanImageSingleTransformerBlock": _hunyuan_single_forward}


def fuse_flux_single_blocks(model: nn.Module) -> int:
    """Give every Flux single-stream block of ``model`` whose proj_out is an int8dit Linear the fused
    forward (see the module docstring). Returns how many."""
    count = 0
    for module in model.modules():
        if getattr(module, "_int8dit_fused_concat_gelu", False) or not _single_block_fits(module):
            continue
        set_forward(module, _COPIES.get(type(module).__name__, _single_forward))
        module._int8dit_fused_concat_gelu = True
        count += 1
    return count
