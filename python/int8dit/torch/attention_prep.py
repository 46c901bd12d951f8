"""``fuse_attention_prep(model)``: the work between the q/k/v projections and attention, fused.

Some processors of diffusers spend more on the tensors' way into attention than their layouts need:

- FluxAttention's stock FluxAttnProcessor (Flux, Chroma; diffusers' copies of it in LongCat-Image, Bria,
  Bria FIBO and Ovis-Image): per-head RMSNorm of q and k, the text/image
  join and the rotary embedding, about eleven kernels a block over the whole sequence
  (``FluxQKNormRopeProcessor``: one kernel per tensor part, int8dit.torch.flux_attention);
- Flux2Attention's Flux2AttnProcessor and Flux2ParallelSelfAttention's Flux2ParallelSelfAttnProcessor
  (FLUX.2): as Flux's, in its double- and single-stream blocks (int8dit.torch.flux2_attention);
- Attention's JointAttnProcessor2_0 (SD3, SD3.5): the text/image join of q, k and v over transposed
  views, an element-by-element gather, and SD3.5's q/k RMSNorm (``JointAttentionPrepProcessor``,
  int8dit.torch.joint_attention);
- Attention's QwenDoubleStreamAttnProcessor2_0 (Qwen-Image): as Flux's, with complex rotary tables
  (``QwenAttentionPrepProcessor``, int8dit.torch.qwen_attention);
- Attention's HunyuanVideoAttnProcessor2_0 (HunyuanVideo; HunyuanImage 2.1's copy of it) and
  HunyuanVideo15AttnProcessor2_0 (HunyuanVideo 1.5): as Flux's, the text tokens after the video tokens
  (``HunyuanVideoAttentionPrepProcessor``, ``HunyuanVideo15AttentionPrepProcessor``,
  int8dit.torch.hunyuan_video_attention);
- Flux3Attention's Flux3AttnProcessor (FLUX.3): per-head fp32 RMSNorm of q and k and the rotary
  embedding, rounded once (``Flux3AttentionPrepProcessor``, int8dit.torch.flux3_attention);
- Krea2Attention's Krea2AttnProcessor (Krea 2): per-head fp32 RMSNorm of q and k with a zero-centered
  fp32 weight and the rotary embedding, each rounded once (``Krea2AttentionPrepProcessor``,
  int8dit.torch.krea2_attention);
- Attention's ZSingleStreamAttnProcessor (Z-Image): per-head q/k RMSNorm and a complex rotation with
  one table per sample (``ZImageAttentionPrepProcessor``, int8dit.torch.z_image_attention);
- WanAttention's WanAttnProcessor (Wan 2.1 / 2.2; SkyReels-V2's copy of it): the rotary embedding
  alone, its q/k norm being one across the heads (``WanRotaryProcessor``, int8dit.torch.wan_attention);
- LTXAttention's LTXVideoAttnProcessor (LTX-Video): the rotary embedding alone, with tables that differ
  in every channel of the row (``LTXRotaryProcessor``, int8dit.torch.ltx_attention);
- Attention's CogView4AttnProcessor (CogView4): per-head q/k LayerNorm and the rotary embedding of the
  image tokens on the halves of each row (``CogView4AttentionPrepProcessor``, int8dit.torch.cogview4_attention);
- Attention's CogVideoXAttnProcessor2_0 (CogVideoX): as CogView4's, with the LayerNorm's bias and
  neighbouring rotary pairs (``CogVideoXAttentionPrepProcessor``, int8dit.torch.cogview4_attention);
- Attention's CosmosAttnProcessor2_0 (Cosmos 1.0 and 2.5): per-head q/k RMSNorm and the self-attention's
  rotary embedding on the halves of each row (``CosmosAttentionPrepProcessor``, int8dit.torch.cosmos_attention).

They work on bf16 and int8dit-quantized models alike (the kernels are not int8 ones; the end-to-end
benchmark's ``*_prep_graph`` paths time them on both), serve eager calls that autograd does not record,
and hand every other call to the processor they replaced, which ``unfuse_attention_prep`` puts back.
The module, its parameters and state dict are unchanged. Needs diffusers.
"""
from __future__ import annotations

from torch import nn

from .cogview4_attention import CogVideoXAttentionPrepProcessor, CogView4AttentionPrepProcessor
from .cosmos_attention import CosmosAttentionPrepProcessor
from .flux2_attention import Flux2ParallelQKNormRopeProcessor, Flux2QKNormRopeProcessor
from .flux3_attention import Flux3AttentionPrepProcessor
from .flux_attention import FluxQKNormRopeProcessor
from .hunyuan_video_attention import HunyuanVideo15AttentionPrepProcessor, HunyuanVideoAttentionPrepProcessor
from .joint_attention import JointAttentionPrepProcessor
from .krea2_attention import Krea2AttentionPrepProcessor
from .ltx_attention import LTXRotaryProcessor
from .qwen_attention import QwenAttentionPrepProcessor
from .wan_attention import WanRotaryProcessor
from .z_image_attention import ZImageAttentionPrepProcessor

# The stock processors by class name (diffusers need not be imported to match them), and what replaces them.
_REPLACEMENTS = {"FluxAttnProcessor": FluxQKNormRopeProcessor, "JointAttnProcessor2_0": JointAttentionPrepProcessor,
                 "QwenDoubleStreamAttnProcessor2_0": QwenAttentionPrepProcessor,
                 "HunyuanVideoAttnProcessor2_0": HunyuanVideoAttentionPrepProcessor,
                 "HunyuanVideo15AttnProcessor2_0": HunyuanVideo15AttentionPrepProcessor,
                 "WanAttnProcessor": WanRotaryProcessor, "Flux2AttnProcessor": Flux2QKNormRopeProcessor,
                 "Flux2ParallelSelfAttnProcessor": Flux2ParallelQKNormRopeProcessor,
                 "ZSingleStreamAttnProcessor": ZImageAttentionPrepProcessor,
                 "Flux3AttnProcessor": Flux3AttentionPrepProcessor, "Krea2AttnProcessor": Krea2AttentionPrepProcessor,
                 # diffusers' copies of FluxAttnProcessor (heads split by count rather than by width: the same
                 # split without tensor parallelism, which the fused processor does not serve either)
                 "LongCatImageAttnProcessor": FluxQKNormRopeProcessor, "BriaAttnProcessor": FluxQKNormRopeProcessor,
                 "BriaFiboAttnProcessor": FluxQKNormRopeProcessor, "OvisImageAttnProcessor": FluxQKNormRopeProcessor,
                 # and of HunyuanVideo's (HunyuanImage 2.1) and Wan's (SkyReels-V2) processors
                 "HunyuanImageAttnProcessor": HunyuanVideoAttentionPrepProcessor,
                 "SkyReelsV2AttnProcessor": WanRotaryProcessor, "LTXVideoAttnProcessor": LTXRotaryProcessor,
                 "CogView4AttnProcessor": CogView4AttentionPrepProcessor,
                 "CosmosAttnProcessor2_0": CosmosAttentionPrepProcessor,
                 "CogVideoXAttnProcessor2_0": CogVideoXAttentionPrepProcessor}
_FUSED = tuple(set(_REPLACEMENTS.values()))


def _replacement_for(module: nn.Module):
    """The fused processor for a module's stock one: diffusers' own class of one of the names above
    (matched by name, so diffusers need not be imported; a user's class that shares a name is left alone),
    where the fused processor serves that kind of module."""
    cls = type(getattr(module, "processor", None))
    if not cls.__module__.startswith("diffusers."):
        return None
    replacement = _REPLACEMENTS.get(cls.__name__)
    return replacement if replacement is not None and replacement.applies_to(module) else None


def fuse_attention_prep(model: nn.Module) -> int:
    """Give every attention module of ``model`` that runs one of the stock processors above its fused
    processor (module docstring); returns how many. Modules with any other processor (IP-adapters,
    custom ones, ones already fused) are left alone."""
    count = 0
    for module in model.modules():
        replacement = _replacement_for(module)
        if replacement is not None:
            module.processor = replacement(module.processor)
            count += 1
    return count


def attention_prep_applies(model: nn.Module) -> int:
    """How many attention modules fuse_attention_prep would change in ``model`` (nothing is changed)."""
    return sum(_replacement_for(m) is not None for m in model.modules())


def unfuse_attention_prep(model: nn.Module) -> int:
    """Put back the processors fuse_attention_prep replaced; returns how many."""
    count = 0
    for module in model.modules():
        processor = getattr(module, "processor", None)
        if isinstance(processor, _FUSED):
            module.processor = processor.fallback
            count += 1
    return count


def fused_attention_calls(model: nn.Module) -> int:
    """How many calls of ``model``'s fused processors took the fused path (not the fallback), in all."""
    return sum(m.processor.fused_calls for m in model.modules() if isinstance(getattr(m, "processor", None), _FUSED))
