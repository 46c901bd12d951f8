"""Saving and loading int8dit-quantized models as safetensors.

A file holds the model's whole state dict: for each quantized layer ``<name>.weight`` (int8 [N, K]),
``<name>.weight_scale`` (fp32 [N]), ``<name>.bias`` (fp32 [N], if any) and ``<name>.smooth`` (fp32 [K],
the SmoothQuant divisor, if any); every other tensor as the model holds it. The safetensors metadata
(string -> string) carries:

    format           "int8dit"
    format_version   "1"         (FORMAT_VERSION; a reader refuses other versions)
    int8dit_version  the library version that wrote the file
    quantized        JSON: {layer name: {"in_features", "out_features", "bias", "smooth"}}

load_quantized() takes the unquantized model skeleton (the same architecture, any weights, even on
the meta device), swaps the listed layers for int8dit Linear modules and loads every tensor, failing
with a message that names the first mismatch.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

FORMAT = "int8dit"
FORMAT_VERSION = "1"


class FormatError(ValueError):
    """The file is not an int8dit checkpoint this version can read, or does not fit the model."""


def make_metadata(quantized: Mapping[str, Mapping[str, Any]], version: str) -> dict[str, str]:
    """The safetensors metadata for a checkpoint whose quantized layers are ``quantized``."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "int8dit_version": version,
        "quantized": json.dumps(dict(quantized), sort_keys=True),
    }


def parse_metadata(metadata: Mapping[str, str] | None, path: str = "<file>") -> dict[str, dict[str, Any]]:
    """The quantized-layer table of a checkpoint's metadata; FormatError when it is not one we read."""
    md = metadata or {}
    if md.get("format") != FORMAT:
        raise FormatError(f"{path} is not an int8dit checkpoint (metadata 'format' is {md.get('format')!r}, expected "
                          f"{FORMAT!r}): save it with int8dit.save_quantized")
    if md.get("format_version") != FORMAT_VERSION:
        raise FormatError(f"{path} has int8dit format version {md.get('format_version')!r} (written by int8dit "
                          f"{md.get('int8dit_version', '?')}); this int8dit reads version {FORMAT_VERSION}: "
                          "quantize the model again with this version")
    try:
        table = json.loads(md["quantized"])
    except (KeyError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: metadata 'quantized' is missing or not JSON ({e})") from e
    for name, info in table.items():
        missing = {"in_features", "out_features", "bias", "smooth"} - set(info)
        if missing:
            raise FormatError(f"{path}: quantized layer {name!r} lacks {sorted(missing)} in the metadata")
    return table


def expected_tensors(name: str, info: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Tensor name -> (shape, dtype name) that a quantized layer's entries must have."""
    n, k = int(info["out_features"]), int(info["in_features"])
    out = {f"{name}.weight": ((n, k), "int8"), f"{name}.weight_scale": ((n,), "float32")}
    if info["bias"]:
        out[f"{name}.bias"] = ((n,), "float32")
    if info["smooth"]:
        out[f"{name}.smooth"] = ((k,), "float32")
    return out


def save_quantized(model, path: str) -> None:
    """Write ``model`` (quantized with int8dit.quantize_ or calibrate) to ``path`` as safetensors."""
    from safetensors.torch import save_file

    from . import __version__
    from .torch.linear import Linear

    table = {
        name: {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None,
               "smooth": m.smooth is not None}
        for name, m in model.named_modules() if isinstance(m, Linear)
    }
    if not table:
        raise ValueError("save_quantized: the model holds no int8dit Linear layer; run int8dit.quantize_ first")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, path, metadata=make_metadata(table, __version__))


def load_quantized(model, path: str, device=None, strict: bool = True, share_inputs: bool = True,
                   fuse_gelu: bool = True, fuse_norms: bool = True, fuse_swiglu: bool = False):
    """Load a checkpoint written by save_quantized into ``model``, an unquantized skeleton of the same
    architecture: the layers the file lists become int8dit Linear modules, then every tensor is
    loaded (``strict``: the file and the model hold exactly the same tensors), then the model gets
    quantize_'s rewrites (``share_inputs``, ``fuse_gelu``, ``fuse_norms``, ``fuse_swiglu``: the same switches, the same
    defaults; they change no tensor). Returns ``model``."""
    import torch
    from safetensors import safe_open

    from .torch.linear import Linear
    from .torch.quantize import _set_submodule

    with safe_open(path, framework="pt", device=str(device) if device is not None else "cpu") as f:
        table = parse_metadata(f.metadata(), path)
        state = {k: f.get_tensor(k) for k in f.keys()}

    for name, info in table.items():
        try:
            old = model.get_submodule(name)
        except AttributeError as e:
            raise FormatError(f"{path}: quantized layer {name!r} does not exist in this model: the file was saved "
                              f"from another architecture") from e
        if not isinstance(old, (torch.nn.Linear, Linear)):
            raise FormatError(f"{path}: {name!r} is a {type(old).__name__} in this model, not a Linear")
        if (old.in_features, old.out_features) != (info["in_features"], info["out_features"]):
            raise FormatError(f"{path}: layer {name!r} is {info['in_features']} -> {info['out_features']} in the file "
                              f"but {old.in_features} -> {old.out_features} in this model")
        for key, (shape, dtype) in expected_tensors(name, info).items():
            t = state.get(key)
            if t is None or tuple(t.shape) != shape or str(t.dtype) != f"torch.{dtype}":
                got = "missing" if t is None else f"{tuple(t.shape)} {t.dtype}"
                raise FormatError(f"{path}: tensor {key!r} should be {shape} {dtype}, found {got}")
        dev = device if device is not None else next(
            (p.device for p in old.parameters() if p.device.type != "meta"), torch.device("cpu"))
        _set_submodule(model, name, Linear(info["in_features"], info["out_features"], bias=info["bias"],
                                           smooth=info["smooth"], device=dev))

    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        model.to_empty(device=device if device is not None else "cpu")
    result = model.load_state_dict(state, strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise FormatError(f"{path} does not fit this model: missing {result.missing_keys[:5]}"
                          f"{'...' if len(result.missing_keys) > 5 else ''}, unexpected {result.unexpected_keys[:5]}"
                          f"{'...' if len(result.unexpected_keys) > 5 else ''}")
    from .torch.quantize import QuantizeReport, apply_fusions

    apply_fusions(model, QuantizeReport(), share_inputs=share_inputs, fuse_gelu=fuse_gelu, fuse_norms=fuse_norms,
                  fuse_swiglu=fuse_swiglu)
    return model
