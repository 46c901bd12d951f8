"""What int8dit's fused attention processors (int8dit.torch.attention_prep) share: the processor each
replaced, which serves the calls it does not fuse and which unfuse_attention_prep puts back; the
attention backend settings diffusers keeps on a processor; the count of fused calls; the tests of
whether a call may take the fused path at all (per-head norms, diffusers' real rotary pairs); one
part of q, k or v written into its place with one kernel (write_heads); and complex rotary tables in
the kernel's cos/sin form, made once a forward."""
from __future__ import annotations

import weakref
from typing import Optional

import torch
from torch import Tensor, nn

from .attention import HEAD_DIMS, join_heads, qk_norm_rope
from .ops import any_needs_grad, plain_eager_call

_FUSED_DTYPES = (torch.bfloat16, torch.float16)
_QK_NORMS = ("norm_q", "norm_k", "norm_added_q", "norm_added_k")


def norm_eps_weight(norm: nn.Module, dtype: torch.dtype):
    """(eps, weight or None) of an RMSNorm the kernel computes, or None where it cannot: torch.nn.RMSNorm
    or diffusers' RMSNorm (no bias), with its weight (if any) in the activations' dtype."""
    if type(norm).__name__ != "RMSNorm" or getattr(norm, "bias", None) is not None:
        return None
    weight = getattr(norm, "weight", None)
    if weight is not None and (weight.dtype != dtype or weight.dim() != 1):
        return None
    eps = getattr(norm, "eps", None)
    if eps is None:  # torch.nn.RMSNorm(eps=None): the dtype's machine epsilon, as torch computes it
        eps = torch.finfo(dtype).eps
    return float(eps), weight


class FusedProcessor:
    """The base of the fused processors. ``fallback``: the processor replaced. ``fused_calls``: calls that
    took the fused path (tests and the benchmark read it)."""

    _attention_backend = None
    _parallel_config = None

    def __init__(self, fallback, dispatch: bool = False):
        self.fallback = fallback
        self._attention_backend = getattr(fallback, "_attention_backend", None)
        self._parallel_config = getattr(fallback, "_parallel_config", None)
        self.fused_calls = 0
        if dispatch:
            try:
                from diffusers.models.attention_dispatch import dispatch_attention_fn
            except ImportError as e:  # a diffusers older than the processor it replaces (0.42.1 is pinned)
                raise RuntimeError(f"{type(self).__name__} calls diffusers' dispatch_attention_fn, which this "
                                   f"diffusers lacks ({e}): install the version scripts/setup.sh pins") from e
            self._dispatch = dispatch_attention_fn

    @staticmethod
    def applies_to(attn: nn.Module) -> bool:
        """Whether this processor serves ``attn`` at all (fuse_attention_prep leaves the others' processors)."""
        return True

    @staticmethod
    def call_fits(attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor], head_dim: int,
                  kernel_norms: bool = True) -> bool:
        """What every fused path needs: an eager bf16/fp16 call on CUDA (or the CPU reference) that autograd
        does not record, a head_dim the kernel takes, and (``kernel_norms``: the kernel computes them) q/k
        norms that are per-head RMSNorms the kernel computes, or none."""
        if not plain_eager_call(hidden_states) or hidden_states.dtype not in _FUSED_DTYPES:
            return False
        if head_dim not in HEAD_DIMS or not (hidden_states.is_cuda or hidden_states.is_cpu):
            return False
        # the kernel has no backward: with autograd recording (a trainable projection or norm, or an input
        # that needs a gradient), PyTorch's ops
        if torch.is_grad_enabled() and (any_needs_grad(encoder_hidden_states) or
                                        any(p.requires_grad for p in attn.parameters())):
            return False
        if not kernel_norms:
            return True
        norms = (getattr(attn, n, None) for n in _QK_NORMS)
        return all(n is None or head_norm(n, hidden_states.dtype, head_dim) is not None for n in norms)



class SequencePrepProcessor(FusedProcessor):
    """The fused processors of diffusers' self-attention processors over one [B, S, K] sequence, called as
    (attn, hidden_states, attention_mask, image_rotary_emb) (FLUX.3's, Krea 2's): a call fuses where it is
    an eager bf16/fp16 call with diffusers' real (cos, sin) pair (or none) for its S tokens and ``_norms``
    gives q's and k's norms as (eps, weight) pairs; ``_fused`` then computes it. Others go to the fallback."""

    def _norms(self, attn: nn.Module, hidden_states: Tensor):
        raise NotImplementedError

    def _fused(self, attn: nn.Module, hidden_states: Tensor, attention_mask: Optional[Tensor], image_rotary_emb,
               norms) -> Tensor:
        raise NotImplementedError

    def __call__(self, attn: nn.Module, hidden_states: Tensor, attention_mask: Optional[Tensor] = None,
                 image_rotary_emb=None) -> Tensor:
        head_dim = getattr(attn, "head_dim", 0)
        fits = (hidden_states.dim() == 3 and self.call_fits(attn, hidden_states, None, head_dim, kernel_norms=False)
                and real_rotary_fits(image_rotary_emb, head_dim, hidden_states.shape[1], hidden_states.device))
        norms = self._norms(attn, hidden_states) if fits else None
        if norms is None:
            return self.fallback(attn, hidden_states, attention_mask, image_rotary_emb)
        self.fused_calls += 1
        return self._fused(attn, hidden_states, attention_mask, image_rotary_emb, norms)


def head_norm(norm: Optional[nn.Module], dtype: torch.dtype, head_dim: int):
    """(eps, weight or None) of a per-head q/k norm the kernel computes (norm_eps_weight, with a weight of
    head_dim elements, not one across the heads), or None: no norm, or one the kernel cannot compute."""
    spec = norm_eps_weight(norm, dtype) if norm is not None else None
    if spec is None or (spec[1] is not None and spec[1].shape[0] != head_dim):
        return None
    return spec


# The largest head group (threads = heads * head_dim / 8) whose norm the fused processors put into the rotation's
# kernel: measured on the H100 (bench/results/h100/qk_norm_across_heads_*.md) against PyTorch's norm and the
# rotation kernel, the one kernel took 1.35-1.42x less time at 192 and 256 threads (Wan 1.3B, LTX-Video 2B),
# 1.07x at 384 (Wan 2.2 TI2V), and lost at 640 (Wan 14B, 0.94x: a CTA a token group of 20 warps, fewer loads
# in flight an SM and a longer chain before the stores); larger groups keep PyTorch's norm.
MAX_FUSED_NORM_THREADS = 384


def across_heads_norm(norm: Optional[nn.Module], x: Tensor, heads: int, head_dim: int):
    """(eps, weight or None) of an RMSNorm over a token's heads x head_dim values (Wan's and LTX-Video's q/k
    norms, ``qk_norm="rms_norm_across_heads"``) that the fused processors compute in the rotation's kernel
    (qk_norm_rope with ``norm_heads=heads``), or None: another norm, a shape the kernel does not take (head_dim
    64 or 128, heads * head_dim / 8 a multiple of 32), or a group over MAX_FUSED_NORM_THREADS, where the kernel
    was measured slower than PyTorch's norm. The CPU takes the same decision, so the CPU tests run the path the
    GPU does."""
    spec = norm_eps_weight(norm, x.dtype) if norm is not None else None
    if spec is None or tuple(getattr(norm, "normalized_shape", ())) != (heads * head_dim,):
        return None
    if spec[1] is not None and (spec[1].shape[0] != heads * head_dim or spec[1].device != x.device):
        return None
    threads = heads * head_dim // 8
    if head_dim not in (64, 128) or threads % 32 or threads > MAX_FUSED_NORM_THREADS:
        return None
    return spec


def real_rotary_fits(rotary, head_dim: int, tokens: int, device: torch.device) -> bool:
    """Whether ``rotary`` is None or diffusers' real (cos, sin) pair the kernel takes for ``tokens``
    tokens: fp32 [tokens, head_dim] on ``device``."""
    if rotary is None:
        return True
    if not (isinstance(rotary, (tuple, list)) and len(rotary) == 2):
        return False
    return all(isinstance(t, Tensor) and t.dtype == torch.float32 and t.dim() == 2 and t.shape[1] == head_dim and
               t.shape[0] == tokens and t.device == device for t in rotary)


def write_heads(rows: Tensor, target: Tensor, norm=None, rotary=None, rope_offset: int = 0) -> None:
    """rows [B, T, H, D] into target (a [B, T, H, D] view): normalized where ``norm`` is head_norm's
    (eps, weight), rotated where ``rotary`` is a (cos, sin) pair (token t takes row rope_offset + t),
    moved as they are where neither; one kernel either way."""
    if norm is None and rotary is None:
        join_heads(rows, target)
        return
    eps, weight = norm if norm is not None else (0.0, None)
    qk_norm_rope(rows, weight, eps, rotary, out=target, rope_offset=rope_offset, normalize=norm is not None)


def prepared_heads(tensors, norms, rotary) -> list:
    """Each of ``tensors`` ([B, T, H, D]: q, k) normalized with its norm (head_norm's (eps, weight)) and
    rotated where ``rotary`` is a (cos, sin) pair, into a new tensor of its own: one kernel each."""
    prepared = []
    for rows, norm in zip(tensors, norms):
        out = torch.empty(rows.shape, dtype=rows.dtype, device=rows.device)
        write_heads(rows, out, norm, rotary)
        prepared.append(out)
    return prepared


class ComplexRotaryTables:
    """The kernel's cos/sin [..., S, D] fp32 of a complex rotary table [..., S, D/2] (a complex product
    per pair is the kernel's pair rotation with cos = Re and sin = Im on both elements), remembered for
    the last table object seen: a model makes one table a forward and every block reuses it."""

    def __init__(self):
        self._source = None  # weakref to the table the kernel's were made from
        self._tables = None

    def of(self, freqs: Tensor):
        if self._source is not None and self._source() is freqs:
            return self._tables
        cos = freqs.real.float().repeat_interleave(2, dim=-1).contiguous()
        sin = freqs.imag.float().repeat_interleave(2, dim=-1).contiguous()
        self._source, self._tables = weakref.ref(freqs), (cos, sin)
        return self._tables
