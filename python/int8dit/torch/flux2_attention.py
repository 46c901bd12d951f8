"""FLUX.2's attention with the q/k RMSNorm, the rotary embedding and the token join in one kernel a tensor.

diffusers' FLUX.2 transformer (Flux2Transformer2DModel) prepares q and k as FLUX.1 does: per-head
RMSNorm (``torch.nn.RMSNorm``), the text tokens joined before the image tokens, then the rotary
embedding with real cos/sin tables over the joined sequence. Its processors differ in where the work
around attention happens:

- ``Flux2AttnProcessor`` (the double-stream blocks) ends with both output projections, where FLUX.1's
  leaves them to the block when it has no text stream: ``Flux2QKNormRopeProcessor`` is int8dit's
  FLUX.1 processor (int8dit.torch.flux_attention) with that end;
- ``Flux2ParallelSelfAttnProcessor`` (the single-stream blocks, 48 of FLUX.2-dev's 56) splits q, k, v
  and the MLP input out of one fused projection, normalizes and rotates q and k, and after attention
  joins its output with the SwiGLU of the MLP input for one output projection:
  ``Flux2ParallelQKNormRopeProcessor`` writes q and k with one ``qk_norm_rope`` call each (read once,
  written once). Where to_out is an int8dit Linear it also quantizes to_out's input
  ``[attention | silu(gate) * up]`` in one ``concat_swiglu_quantize`` call, which writes neither the
  SwiGLU nor the join (FLUX.2-dev: 6144 + 18432 columns, 4608 rows, 48 blocks; about 170 KB less
  traffic a token and block than the SiLU, product, cat and quantization passes), and runs only
  to_out's GEMM. On the GPU that kernel takes rows of up to CONCAT_SWIGLU_GPU_COLS columns (below).

Calls they cannot serve (autograd, compile tracing, fp32, norms that are not per-head RMSNorms, other
rotary forms) go to the processors they replaced; the KV-cache processors of FLUX.2's reference-image
editing are not replaced. The result is the stock one up to the norm's rounding (an ulp).
"""
from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import Tensor, nn

from .flux_attention import FluxQKNormRopeProcessor
from .fused_processor import FusedProcessor, head_norm, real_rotary_fits, write_heads
from .linear import Linear
from .ops import any_needs_grad

# The widest to_out row the single-stream processor sends to the GPU's concat_swiglu_quantize: all the op
# takes, since its GPU tests passed on 2026-12-05 (tests/cpp/test_concat_swiglu_quantize_gpu.cpp,
# tests/python/test_torch_gpu.py). A module attribute so a test can route rows around the kernel.
# CPU tensors always take it (the C++ reference).
CONCAT_SWIGLU_GPU_COLS = 24576


@functools.lru_cache(maxsize=None)
def _flux2_swiglu_class() -> type:
    from diffusers.models.transformers.transformer_flux2 import Flux2SwiGLU
    return Flux2SwiGLU


def _stock_swiglu(act: nn.Module) -> bool:
    """Whether ``act`` is diffusers' Flux2SwiGLU (silu of the first half times the second), not a user's."""
    return type(act) is _flux2_swiglu_class()


def parallel_output(attn: nn.Module, attention: Tensor, mlp_hidden_states: Tensor) -> Tensor:
    """``attn.to_out(cat([attention, attn.mlp_act_fn(mlp_hidden_states)], -1))``, the end of FLUX.2's
    single-stream attention: through concat_swiglu_quantize and to_out's GEMM where to_out is an int8dit
    Linear and the row fits the kernel (module docstring), else as the stock processor computes it."""
    to_out = attn.to_out
    half = mlp_hidden_states.shape[-1] // 2
    k = attention.shape[-1] + half
    fits = (isinstance(to_out, Linear) and _stock_swiglu(attn.mlp_act_fn) and mlp_hidden_states.shape[-1] % 2 == 0
            and k == to_out.in_features and attention.dtype == mlp_hidden_states.dtype
            and attention.dtype in (torch.bfloat16, torch.float16)
            and attention.shape[:-1] == mlp_hidden_states.shape[:-1]
            and not any_needs_grad(attention, mlp_hidden_states))
    if fits and attention.is_cuda:
        fits = attention.shape[-1] % 8 == 0 and half % 8 == 0 and k <= CONCAT_SWIGLU_GPU_COLS
    if not fits:
        return to_out(torch.cat([attention, attn.mlp_act_fn(mlp_hidden_states)], dim=-1))
    from .swiglu import concat_swiglu_quantize_impl

    q, scale = concat_swiglu_quantize_impl(attention, mlp_hidden_states[..., :half], mlp_hidden_states[..., half:],
                                           to_out._buffers["smooth"])
    return to_out.gemm_on_own_rows(q, scale, attention.dtype)


class Flux2QKNormRopeProcessor(FluxQKNormRopeProcessor):
    """A Flux2Attention processor: diffusers' Flux2AttnProcessor with q/k's norm, rotation and the token
    join fused (module docstring)."""

    @staticmethod
    def _stock_projections():
        from diffusers.models.transformers.transformer_flux2 import _get_qkv_projections
        return _get_qkv_projections

    @staticmethod
    def _output(attn: nn.Module, hidden_states: Tensor, text_tokens: int, has_text: bool):
        """Flux2AttnProcessor's end: both output projections, whether or not there are text tokens."""
        text_out = None
        if has_text:
            text_out, hidden_states = hidden_states[:, :text_tokens], hidden_states[:, text_tokens:]
            text_out = attn.to_add_out(text_out)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        return hidden_states if text_out is None else (hidden_states, text_out)


class Flux2ParallelQKNormRopeProcessor(FusedProcessor):
    """A Flux2ParallelSelfAttention processor: diffusers' Flux2ParallelSelfAttnProcessor with q's and k's
    norm and rotation fused (module docstring). ``fallback`` is the processor it replaced: it serves
    the calls this one does not fuse, and ``int8dit.unfuse_attention_prep`` puts it back."""

    def __init__(self, fallback):
        super().__init__(fallback, dispatch=True)

    def _fits(self, attn: nn.Module, hidden_states: Tensor, image_rotary_emb) -> bool:
        if hidden_states.dim() != 3 or not self.call_fits(attn, hidden_states, None, attn.head_dim):
            return False
        return real_rotary_fits(image_rotary_emb, attn.head_dim, hidden_states.shape[1], hidden_states.device)

    def __call__(self, attn: nn.Module, hidden_states: Tensor, attention_mask: Optional[Tensor] = None,
                 image_rotary_emb=None) -> Tensor:
        if not self._fits(attn, hidden_states, image_rotary_emb):
            return self.fallback(attn, hidden_states, attention_mask, image_rotary_emb)
        self.fused_calls += 1
        # The stock split of the fused projection into q/k/v and the MLP input, by their global ratio.
        projected = attn.to_qkv_mlp_proj(hidden_states)
        qkv_dim = 3 * attn.inner_dim
        mlp_dim = attn.mlp_hidden_dim * attn.mlp_mult_factor
        local_qkv = projected.shape[-1] * qkv_dim // (qkv_dim + mlp_dim)
        qkv, mlp_hidden_states = torch.split(projected, [local_qkv, projected.shape[-1] - local_qkv], dim=-1)
        query, key, value = (t.unflatten(-1, (-1, attn.head_dim)) for t in qkv.chunk(3, dim=-1))
        dtype = hidden_states.dtype
        prepared = []
        for rows, norm in ((query, attn.norm_q), (key, attn.norm_k)):
            out = torch.empty(rows.shape, dtype=dtype, device=rows.device)
            write_heads(rows, out, head_norm(norm, dtype, attn.head_dim), image_rotary_emb)
            prepared.append(out)
        query, key = prepared
        hidden_states = self._dispatch(query, key, value, attn_mask=attention_mask, backend=self._attention_backend,
                                       parallel_config=self._parallel_config)
        hidden_states = hidden_states.flatten(2, 3).to(query.dtype)
        return parallel_output(attn, hidden_states, mlp_hidden_states)
