"""SmoothQuant calibration: move activation outliers into the weights before quantizing.

For a linear layer with input channels k, SmoothQuant picks s_k = max|X_k|^alpha / max|W_k|^(1-alpha)
(max over calibration tokens and over output channels), divides the activations by s (inside the
per-token quantization kernel, never as an extra pass) and multiplies the weight columns by s (folded
offline, before the weight is quantized). alpha = 0 leaves activations alone; larger alpha moves
more of the outliers into the weights.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import torch
from torch import Tensor, nn

from .torch.quantize import DIT_DEFAULT_EXCLUDE, DIT_MIN_FEATURES, QuantizeReport, quantize_, selected_linears


def _run(model: nn.Module, batch: Any) -> None:
    if isinstance(batch, dict):
        model(**batch)
    elif isinstance(batch, (tuple, list)):
        model(*batch)
    else:
        model(batch)


@torch.no_grad()
def collect_activation_maxima(model: nn.Module, batches: Iterable[Any], layers: dict[str, nn.Linear]) -> dict[str, Tensor]:
    """Per-input-channel max |x| seen by each of ``layers`` (name -> nn.Linear) while ``model`` runs on
    ``batches`` (each a tensor, a tuple of positional arguments or a dict of keyword arguments)."""
    maxima: dict[str, Tensor] = {}

    def hook(name):
        def record(_module, args):
            x = args[0].detach()
            m = x.reshape(-1, x.shape[-1]).abs().amax(dim=0).to(torch.float32)
            maxima[name] = m if name not in maxima else torch.maximum(maxima[name], m)
        return record

    handles = [module.register_forward_pre_hook(hook(name)) for name, module in layers.items()]
    try:
        seen = 0
        for batch in batches:
            _run(model, batch)
            seen += 1
        if seen == 0:
            raise ValueError("calibrate: batches was empty; pass at least one batch of representative inputs")
    finally:
        for h in handles:
            h.remove()
    return maxima


def smoothing_factors(act_max: Tensor, weight: Tensor, alpha: float = 0.5, eps: float = 1e-5) -> Tensor:
    """s_k = max|X_k|^alpha / max|W_k|^(1-alpha), fp32 [K]; channels never active (or with zero
    weight columns) get s = 1 so that they stay as they are."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha = {alpha} must lie in [0, 1]")
    a = act_max.to(torch.float32).clamp_min(eps)
    w = weight.detach().abs().amax(dim=0).to(device=a.device, dtype=torch.float32).clamp_min(eps)
    s = a.pow(alpha) / w.pow(1.0 - alpha)
    dead = (act_max <= eps) | (weight.detach().abs().amax(dim=0).to(a.device) <= eps) | ~torch.isfinite(s)
    return torch.where(dead, torch.ones_like(s), s)


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[Any], alpha: float = 0.5, include: Optional[Sequence[str]] = None,
              exclude: Optional[Sequence[str]] = DIT_DEFAULT_EXCLUDE, min_features: int = DIT_MIN_FEATURES,
              verbose: bool = False) -> QuantizeReport:
    """Run the float ``model`` on ``batches``, compute SmoothQuant factors for every layer quantize_ would
    replace (same include/exclude/min_features), and quantize the model in place with the factors
    folded into the int8 weights and handed to the activation quantization kernel."""
    layers, _ = selected_linears(model, include, exclude, min_features)
    maxima = collect_activation_maxima(model, batches, layers)
    factors = {name: smoothing_factors(maxima[name], layers[name].weight, alpha)
               for name in layers if name in maxima}
    return quantize_(model, include=include, exclude=exclude, min_features=min_features, smoothing=factors,
                     verbose=verbose)
