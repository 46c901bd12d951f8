"""LoRA adapters fused into a model's weights, int8dit-quantized layers included.

A LoRA adds ``multiplier * B @ A`` (A [r, K], B [N, r]) to a linear layer's weight. diffusers applies
one through PEFT, which wraps ``nn.Linear`` modules and so cannot wrap int8dit's Linear. ``fuse_lora``
adds the update to the weights themselves, on the device they live on:

- an int8dit Linear: its weight is dequantized (``int8 * weight_scale``, the SmoothQuant factors folded
  in as they are), the update added (multiplied by the factors too, since the activations are divided
  by them), and the row quantized again with the library's own ``quantize_weight``. The result is
  what quantizing the adapted float weight would give, except that the base weight went through
  int8 once before: an element may land one quantization step from it where the two roundings add
  up. For the weights closest to the float model's, fuse the LoRA into the float model first (this
  function takes ``nn.Linear`` layers too) and quantize after;
- a layer kept in float (``nn.Linear``): ``weight += update`` in its dtype.

Tensors are written in place (``copy_``), so models already captured in CUDA graphs
(``use_cuda_graphs``) replay with the new weights. Every key is checked before anything is written: a
LoRA naming a module the model lacks, of the wrong shape, or with parts this function does not apply
(DoRA magnitudes, LoRA biases) is refused whole, with the keys at fault, and the model is unchanged.

The state dict takes diffusers' naming, ``<module path>.lora_A.weight`` / ``.lora_B.weight`` (with a
``transformer.`` prefix or without), which ``<Pipeline>.lora_state_dict(path)`` returns for the
formats it converts (kohya, XLabs, the original repositories'); ``<module path>.alpha`` (or the
``network_alphas`` diffusers returns with ``return_alphas=True``) scales the update by alpha / r.
``keep_original=True`` keeps a copy of every weight the call changes (on the CPU: int8 weights and
their fp32 scales, the float layers' weights as they are) so that ``unfuse_lora`` can put them back
bit for bit; the first fusion's copies are kept across later fusions, so unfuse_lora returns to the
model before any LoRA. Without it, keep the quantized checkpoint (``int8dit.save_quantized``) and
load it again to change adapters.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import torch
from torch import Tensor, nn

from .linear import Linear
from .weights import quantize_weight

_PARTS = {"lora_A.weight": "A", "lora_B.weight": "B", "alpha": "alpha"}
_PREFIX = "transformer."


@dataclass
class LoraFusion:
    """What fuse_lora changed: the int8dit layers requantized and the float layers updated (module
    paths), and the keys it left alone because they belong to another part of a pipeline (those not
    under ``prefix`` when the state dict uses one, e.g. a text encoder's)."""

    quantized_layers: list = field(default_factory=list)
    float_layers: list = field(default_factory=list)
    other_components_keys: list = field(default_factory=list)

    @property
    def layers(self) -> int:
        return len(self.quantized_layers) + len(self.float_layers)


def _split(key: str):
    """(module path, part name) of a LoRA key, or None where the key is no part fuse_lora knows."""
    for suffix, part in _PARTS.items():
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1], part
    return None


def _adapters(state_dict: Mapping[str, Tensor], network_alphas: Optional[Mapping], prefix: str, report: LoraFusion):
    """{module path: {"A": ..., "B": ..., "alpha": ...}} of the keys under ``prefix`` (of every key where
    none has it), and the keys it cannot apply."""
    has_prefix = bool(prefix) and any(k.startswith(prefix) for k in state_dict)
    adapters, unknown = {}, []
    for key, value in state_dict.items():
        if has_prefix:
            if not key.startswith(prefix):
                report.other_components_keys.append(key)
                continue
            key = key[len(prefix):]
        split = _split(key)
        if split is None:
            unknown.append(key)
            continue
        path, part = split
        adapters.setdefault(path, {})[part] = value
    for key, alpha in (network_alphas or {}).items():  # diffusers' return_alphas=True: "<path>.alpha"
        if prefix and key.startswith(prefix):
            key = key[len(prefix):]
        path = key[: -len(".alpha")] if key.endswith(".alpha") else key
        if path in adapters:
            adapters[path]["alpha"] = alpha
    return adapters, unknown


def _problems(model: nn.Module, adapters: dict, unknown: list) -> list:
    problems = [f"{k}: not a LoRA weight fuse_lora applies (only lora_A/lora_B weights and alphas; DoRA "
                f"magnitudes and LoRA biases are not supported)" for k in unknown]
    for path, parts in adapters.items():
        if "A" not in parts or "B" not in parts:
            problems.append(f"{path}: has {sorted(parts)}, needs both lora_A.weight and lora_B.weight")
            continue
        try:
            module = model.get_submodule(path)
        except AttributeError:
            problems.append(f"{path}: no such module in {type(model).__name__}")
            continue
        if not isinstance(module, (Linear, nn.Linear)):
            problems.append(f"{path}: a {type(module).__name__}, not a linear layer")
            continue
        a, b = parts["A"], parts["B"]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            problems.append(f"{path}: lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)} are not [r, K] and [N, r]")
        elif a.shape[1] != module.in_features or b.shape[0] != module.out_features:
            problems.append(f"{path}: the LoRA is {b.shape[0]} x {a.shape[1]} (N x K), the layer "
                            f"{module.out_features} x {module.in_features}")
    return problems


@torch.no_grad()
def _fuse_one(module: nn.Module, update: Tensor) -> bool:
    """Add the fp32 [N, K] ``update`` to the layer's weight; True where the layer is an int8dit one."""
    if isinstance(module, Linear):
        weight = module.weight.to(torch.float32) * module.weight_scale[:, None]
        if module.smooth is not None:
            update = update * module.smooth[None, :]
        q, scale = quantize_weight(weight + update)
        module.weight.copy_(q)
        module.weight_scale.copy_(scale)
        return True
    module.weight.copy_((module.weight.to(torch.float32) + update).to(module.weight.dtype))
    return False


_ORIGINALS = "_int8dit_lora_originals"  # the model attribute keep_original=True fills: {path: tensors}


def _keep_original(model: nn.Module, path: str, module: nn.Module) -> None:
    originals = model.__dict__.setdefault(_ORIGINALS, {})
    if path in originals:  # an earlier fusion's copy: the weights before any LoRA
        return
    names = ("weight", "weight_scale") if isinstance(module, Linear) else ("weight",)
    originals[path] = {n: getattr(module, n).detach().to("cpu", copy=True) for n in names}


@torch.no_grad()
def unfuse_lora(model: nn.Module) -> int:
    """Put back the weights ``fuse_lora(..., keep_original=True)`` kept, bit for bit (in place, as the
    fusion wrote them); returns how many layers. A model without kept weights is left as it is (0)."""
    originals = model.__dict__.pop(_ORIGINALS, {})
    for path, tensors in originals.items():
        module = model.get_submodule(path)
        for name, value in tensors.items():
            getattr(module, name).copy_(value)
    return len(originals)


def fuse_lora(model: nn.Module, state_dict: Mapping[str, Tensor], *, scale: float = 1.0,
              network_alphas: Optional[Mapping[str, float]] = None, prefix: str = _PREFIX,
              keep_original: bool = False) -> LoraFusion:
    """Add the LoRA ``state_dict`` (diffusers naming; module docstring) times ``scale`` to ``model``'s
    weights, int8dit-quantized layers and float ones alike; ``keep_original``: keep copies of the
    weights for ``unfuse_lora``. Returns a LoraFusion; raises ValueError, leaving the model unchanged,
    where any key cannot be applied."""
    report = LoraFusion()
    adapters, unknown = _adapters(state_dict, network_alphas, prefix, report)
    problems = _problems(model, adapters, unknown)
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ValueError(f"fuse_lora: {len(problems)} of the LoRA's entries cannot be applied to "
                         f"{type(model).__name__}, so nothing was changed:\n  {shown}\n"
                         "Is the LoRA for this model, in diffusers' naming? <Pipeline>.lora_state_dict(path) "
                         "converts the usual formats.")
    if not adapters:
        raise ValueError(f"fuse_lora: no lora_A/lora_B weights{' under ' + repr(prefix) if prefix else ''} in the "
                         "state dict: nothing to fuse")
    for path, parts in adapters.items():
        module = model.get_submodule(path)
        device = module.weight.device
        a = parts["A"].to(device=device, dtype=torch.float32)
        b = parts["B"].to(device=device, dtype=torch.float32)
        if keep_original:
            _keep_original(model, path, module)
        multiplier = float(scale)
        if "alpha" in parts:
            multiplier *= float(parts["alpha"]) / a.shape[0]
        quantized = _fuse_one(module, (b @ a) * multiplier)
        (report.quantized_layers if quantized else report.float_layers).append(path)
    return report
