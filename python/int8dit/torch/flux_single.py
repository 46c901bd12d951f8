"""Flux's single-stream blocks with GELU and the concatenation fused into proj_out's quantization.

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


def joined_tokens(text: Tensor, image: Tensor) -> Tensor:
    """torch.cat([text, image], dim=1), without the copy where the two are the halves of one contiguous
    [B, T, C] tensor, text's tokens first (a previous single block's split output): that tensor,
    as a view. Eager calls only (tracing sees no storage)."""
    if plain_eager_call(text) and _halves_of_one_tensor(text, image):
        batch, tokens, channels = text.shape[0], text.shape[1] + image.shape[1], text.shape[2]
        return text.as_strided((batch, tokens, channels), (tokens * channels, channels, 1), text.storage_offset())
    return torch.cat([text, image], dim=1)


def _halves_of_one_tensor(text: Tensor, image: Tensor) -> bool:
    # NOTE: ordered for host time (~1 us where it fails early): the storage comparison, which builds
    # two storage objects, comes last. Adjacent memory alone would not do: the caching allocator hands
    # out neighbouring blocks of one segment as separate tensors.
    if text.dim() != 3 or image.dim() != 3 or text.dtype != image.dtype:
        return False
    batch, text_tokens, channels = text.shape
    if image.shape[0] != batch or image.shape[2] != channels:
        return False
    if image.data_ptr() != text.data_ptr() + text_tokens * channels * text.element_size():
        return False
    tokens = text_tokens + image.shape[1]
    strides = (tokens * channels, channels, 1)
    if batch == 1:  # a batch stride of a 1-element dimension says nothing
        strides_fit = text.stride()[1:] == strides[1:] and image.stride()[1:] == strides[1:]
    else:
        strides_fit = text.stride() == strides and image.stride() == strides
    return strides_fit and text.untyped_storage().data_ptr() == image.untyped_storage().data_ptr()


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

    proj_out = self.proj_out
    if (attn_output.dtype != mlp_hidden_states.dtype or attn_output.shape[:-1] != mlp_hidden_states.shape[:-1] or
            attn_output.shape[-1] + mlp_hidden_states.shape[-1] != proj_out.in_features or
            any_needs_grad(attn_output, mlp_hidden_states)):
        # an attention processor that changed the dtype, the tokens or the width (proj_out then says what
        # does not fit), or inputs autograd must see (an adapter on the attention or on proj_mlp): the
        # block's own ops
        out = proj_out(torch.cat([attn_output, self.act_mlp(mlp_hidden_states)], dim=2))
    else:
        smooth = proj_out._buffers["smooth"]
        if plain_eager_call(attn_output):  # skip the dispatcher (ops.py says why)
            q, q_scale = concat_gelu_quantize_impl(attn_output, mlp_hidden_states, smooth)
        else:  # traced (torch.compile, make_fx): the registered op, which has a fake implementation
            q, q_scale = torch.ops.int8dit.concat_gelu_quantize(attn_output, mlp_hidden_states, smooth)
        out = proj_out.gemm_on_own_rows(q, q_scale, hidden_states.dtype)
    hidden_states = gated_add(residual, gate.unsqueeze(1), out)
    if hidden_states.dtype == torch.float16:
        hidden_states = hidden_states.clip(-65504, 65504)

    encoder_hidden_states, hidden_states = hidden_states[:, :text_seq_len], hidden_states[:, text_seq_len:]
    return encoder_hidden_states, hidden_states


def _bria_single_forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor, temb: Tensor,
                         image_rotary_emb=None, attention_kwargs=None):
    # Bria's single-stream block is Flux's with the attention keywords under another name
    return _single_forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb, attention_kwargs)


# diffusers' copies of Flux's single-stream block, forward for forward -> the fused forward they take.
# (Ovis-Image's gates its MLP with SiLU and Bria FIBO's has no text stream: neither is one.)
_COPIES = {"LongCatImageSingleTransformerBlock": _single_forward, "BriaSingleTransformerBlock": _bria_single_forward}


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
