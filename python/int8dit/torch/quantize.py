"""quantize_(model): replace nn.Linear modules in place with int8dit Linear layers.

The defaults suit diffusion transformers (docs/python.md says which layers stay bf16 and why).
"""
from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from .instance_forward import hooks_around
from .linear import Linear, unsupported_reason

# Layers kept bf16 by default, by qualified-name pattern (fnmatch), in the naming of diffusers'
# Flux, SD3, PixArt and DiT transformers:
DIT_DEFAULT_EXCLUDE: tuple[str, ...] = (
    "*time_text_embed*",   # Flux/SD3 timestep, guidance and pooled-text embedders: M = batch, ~0.1% of time
    "*timestep_embedder*",  # DiT/PixArt timestep MLPs: M = batch
    "*adaln_single.emb*",  # PixArt's shared timestep embedder: M = batch
    "*proj_out_2",         # DiT final projection: N = 32
)
# Layers narrower than this (in or out) stay bf16: patch embedders (Flux K = 64) and final projections
# (N = 32..64) have too little work for an int8 GEMM plus a quantization pass to beat bf16, and their
# errors land directly on the output.
DIT_MIN_FEATURES = 256


@dataclass
class QuantizeReport:
    """What quantize_ did: the names of the replaced layers, and every skipped nn.Linear with why."""

    quantized: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    shared_input_groups: int = 0  # groups of sibling layers that quantize a common input once
    gelu_mlps: int = 0  # tanh-GELU FeedForwards whose fc2 reads int8 straight from the GELU (mlp.py)
    concat_gelu_blocks: int = 0  # Flux / HunyuanVideo single-stream blocks whose proj_out reads [attention | GELU] as int8 (flux_single.py)
    fused_norms: int = 0  # adaLN-Zero norms whose output carries its quantization (adanorm.py)
    fused_blocks: int = 0  # DiT, PixArt, SD3 and Flux blocks whose inline modulated norms do the same (blocks.py)
    swiglu_mlps: int = 0  # gated MLPs whose second linear reads int8 straight from the gate (swiglu.py)
    modulation_once: int = 0  # FLUX.3 models computing each mode's modulation once a sample (flux3.py)

    def __str__(self) -> str:
        lines = [f"int8dit: quantized {len(self.quantized)} linear layers, kept {len(self.skipped)} in float"]
        if self.gelu_mlps:
            lines.append(f"  {self.gelu_mlps} GELU MLPs quantize fc2's input in the GELU kernel")
        if self.concat_gelu_blocks:
            lines.append(f"  {self.concat_gelu_blocks} single-stream blocks quantize proj_out's input "
                         "[attention | GELU] in one kernel")
        if self.fused_norms:
            lines.append(f"  {self.fused_norms} adaLN-Zero norms quantize their output in the norm kernel")
        if self.fused_blocks:
            lines.append(f"  {self.fused_blocks} transformer blocks quantize their inline modulated norms' output")
        if self.swiglu_mlps:
            lines.append(f"  {self.swiglu_mlps} SwiGLU MLPs quantize the second linear's input in the gate kernel")
        if self.modulation_once:
            lines.append(f"  {self.modulation_once} FLUX.3 models compute each mode's modulation once a sample, "
                         "not once a token")
        lines += [f"  kept {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


def _matches(name: str, patterns: Optional[Iterable[str]]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns or ())


_HOOKED = "hooks wrap its forward"


def skip_reason(name: str, module: nn.Linear, include: Optional[Sequence[str]], exclude: Optional[Sequence[str]],
                min_features: int) -> Optional[str]:
    """Why quantize_ keeps this nn.Linear in float, or None when it quantizes it."""
    if include is not None and not _matches(name, include):
        return "not matched by include"
    if _matches(name, exclude):
        return "matched by exclude"
    hooks = hooks_around(module)
    if hooks:
        return (f"{_HOOKED} ({', '.join(hooks)}): replacing the layer would drop them; quantize_ "
                f"first, then install them (enable offload, layerwise casting or caching after quantize_)")
    if min(module.in_features, module.out_features) < min_features:
        return (f"{module.in_features} -> {module.out_features} is narrower than min_features = {min_features}: "
                "too little work for int8 to win")
    return unsupported_reason(module.in_features, module.out_features)


def selected_linears(model: nn.Module, include: Optional[Sequence[str]] = None,
                     exclude: Optional[Sequence[str]] = DIT_DEFAULT_EXCLUDE,
                     min_features: int = DIT_MIN_FEATURES) -> tuple[dict[str, nn.Linear], dict[str, str]]:
    """The nn.Linear modules quantize_ would replace (by name), and the skipped ones with reasons. Layers
    in the modules the model's class keeps in fp32 (diffusers' ``_keep_in_fp32_modules``: Wan's time
    embedder) stay in float unless ``include`` names them: their authors keep them precise."""
    chosen: dict[str, nn.Linear] = {}
    skipped: dict[str, str] = {}
    keep_fp32 = set(getattr(type(model), "_keep_in_fp32_modules", None) or ())
    for name, module in model.named_modules():
        if type(module) is not nn.Linear:
            continue
        why = skip_reason(name, module, include, exclude, min_features)
        if not why and include is None and keep_fp32.intersection(name.split(".")):
            why = f"{type(model).__name__} keeps it in fp32 (_keep_in_fp32_modules)"
        if why:
            skipped[name] = why
        else:
            chosen[name] = module
    return chosen, skipped


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


@torch.no_grad()
def quantize_(model: nn.Module, include: Optional[Sequence[str]] = None,
              exclude: Optional[Sequence[str]] = DIT_DEFAULT_EXCLUDE, min_features: int = DIT_MIN_FEATURES,
              smoothing: Optional[Mapping[str, Tensor]] = None, verbose: bool = False,
              share_inputs: bool = True, fuse_gelu: bool = True, fuse_norms: bool = True,
              fuse_swiglu: bool = True, device=None) -> QuantizeReport:
    """Replace, in place, every nn.Linear of ``model`` whose qualified name matches ``include`` (all when
    None) and no pattern of ``exclude`` (fnmatch patterns; DiT defaults), and whose features are at
    least ``min_features``, by an int8dit Linear. ``smoothing`` maps layer names to SmoothQuant factors
    (see int8dit.calibrate). The float weights are freed as each layer is replaced. With
    ``share_inputs``, sibling layers that are called on the same tensor (attention's q, k and v)
    quantize it once (int8dit.torch.shared_input; bit-identical results), also in graphs inductor
    compiles (int8dit.torch.graph_passes, installed for the process). With ``fuse_gelu``, diffusers'
    tanh-GELU FeedForwards run GELU and fc2's quantization in one kernel (int8dit.torch.mlp; int8
    values may differ by one from the unfused path, which rounds GELU's output to bf16 first), and
    Flux's and HunyuanVideo's single-stream blocks quantize proj_out's input [attention |
    GELU(proj_mlp)] in one kernel without writing GELU's output or the concatenation
    (int8dit.torch.flux_single). With
    ``fuse_norms``, diffusers' AdaLayerNormZero(Single) compute LayerNorm + modulation and the int8 rows
    of their output in one kernel, and the int8dit Linears reading that output run only their GEMMs
    (int8dit.torch.adanorm; the output is rounded once where PyTorch rounds three times), and so do
    the modulated norms inside diffusers' DiT, PixArt, SD3, Flux, FLUX.2, FLUX.3, Krea 2, Qwen-Image,
    Chroma, Z-Image, Wan and HunyuanVideo blocks (int8dit.torch.blocks). With ``fuse_swiglu``, gated
    MLPs (Z-Image, FLUX.2, FLUX.3, Krea 2, Lumina2, AuraFlow, Mochi, HiDream, Qwen-Image 2.1) run SiLU,
    the product and the second linear's quantization in one kernel (int8dit.torch.swiglu; int8 values may differ by one
    from the unfused path, which rounds SiLU's output and the product to bf16 first).

    ``device`` builds the int8 layers there instead of on each float layer's own device: a model held
    in host memory is quantized onto the GPU one layer at a time, so its float weights never need GPU
    memory all together (FLUX.2-dev: 64 GB of bf16 weights, 32 GB as int8, on an 80 GB GPU). Only the
    replaced layers move; ``model.to(device)`` moves the rest (norms, embedders, the layers kept in
    float) afterwards."""
    chosen, skipped = selected_linears(model, include, exclude, min_features)
    hooked = [name for name, why in skipped.items() if why.startswith(_HOOKED)]
    if hooked:
        warnings.warn(f"quantize_ kept {len(hooked)} nn.Linear layer(s) in float because hooks wrap them (first: "
                      f"{hooked[0]}: {skipped[hooked[0]]})", stacklevel=2)
    report = QuantizeReport(skipped=skipped)
    for name, module in chosen.items():
        smooth = smoothing.get(name) if smoothing else None
        _set_submodule(model, name, Linear.from_float(module, smooth=smooth, device=device))
        report.quantized.append(name)
    apply_fusions(model, report, share_inputs=share_inputs, fuse_gelu=fuse_gelu, fuse_norms=fuse_norms,
                  fuse_swiglu=fuse_swiglu)
    if verbose:
        print(report)
    return report


def apply_fusions(model: nn.Module, report: QuantizeReport, share_inputs: bool = True, fuse_gelu: bool = True,
                  fuse_norms: bool = True, fuse_swiglu: bool = True) -> QuantizeReport:
    """The rewrites quantize_ makes once the layers are int8dit Linears (load_quantized makes them too):
    sibling layers sharing one quantization of their input, GELU MLPs, Flux single-stream blocks and
    adaLN-Zero norms that quantize their own output; and, whatever the flags, FLUX.3's modulation computed
    once a sample (int8dit.torch.flux3: the same rows, without which its norms could not fuse). Counts
    what it did into ``report``."""
    from .flux3 import compute_modulation_once

    report.modulation_once = compute_modulation_once(model)
    if share_inputs:
        from .graph_passes import install_compile_pass
        from .shared_input import share_sibling_inputs

        report.shared_input_groups = share_sibling_inputs(model)
        install_compile_pass()  # the same under torch.compile (inductor), process-wide
    if fuse_gelu:
        from .flux_single import fuse_flux_single_blocks
        from .mlp import fuse_gelu_mlps

        report.gelu_mlps = fuse_gelu_mlps(model)
        report.concat_gelu_blocks = fuse_flux_single_blocks(model)
    if fuse_norms:
        from .adanorm import fuse_adaln_zero
        from .blocks import fuse_block_norms

        report.fused_norms = fuse_adaln_zero(model)
        report.fused_blocks = fuse_block_norms(model)
    if fuse_swiglu:
        from .swiglu import fuse_swiglu_mlps

        report.swiglu_mlps = fuse_swiglu_mlps(model)
    return report
