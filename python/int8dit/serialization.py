"""Saving and loading int8dit-quantized models as safetensors.

A file holds the model's whole state dict: for each quantized layer ``<name>.weight`` (int8 [N, K]),
``<name>.weight_scale`` (fp32 [N]), ``<name>.bias`` (fp32 [N], if any) and ``<name>.smooth`` (fp32 [K],
the SmoothQuant divisor, if any); every other tensor as the model holds it. The safetensors metadata
(string -> string) carries:

    format           "int8dit"
    format_version   "1"         (FORMAT_VERSION; a reader refuses other versions)
    int8dit_version  the library version that wrote the file
    quantized        JSON: {layer name: {"in_features", "out_features", "bias", "smooth"}}

and, where the model is one of diffusers' (save_quantized writes them when it is):

    model_class      the diffusers class, e.g. "FluxTransformer2DModel"
    model_config     its config as diffusers writes it (JSON)

load_quantized() takes the unquantized model skeleton (the same architecture, any weights, its
parameters even on the meta device), swaps the listed layers for int8dit Linear modules and loads
every tensor, failing with a message that names the first mismatch. load_quantized_model() builds that
skeleton itself from the file's model_class and model_config (empty_skeleton: parameters on the meta
device, buffers computed as the class computes them).
"""
from __future__ import annotations

import contextlib
import json
from typing import Any, Mapping, Optional

FORMAT = "int8dit"
FORMAT_VERSION = "1"


class FormatError(ValueError):
    """The file is not an int8dit checkpoint this version can read, or does not fit the model."""


def make_metadata(quantized: Mapping[str, Mapping[str, Any]], version: str, model_class: Optional[str] = None,
                  model_config: Optional[str] = None) -> dict[str, str]:
    """The safetensors metadata for a checkpoint whose quantized layers are ``quantized`` (and, for a
    diffusers model, its class name and config JSON)."""
    md = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "int8dit_version": version,
        "quantized": json.dumps(dict(quantized), sort_keys=True),
    }
    if model_class and model_config:
        md["model_class"], md["model_config"] = model_class, model_config
    return md


def model_of_metadata(metadata: Mapping[str, str] | None, path: str = "<file>") -> tuple[str, dict]:
    """(diffusers class name, config) that a checkpoint names; FormatError where it names none."""
    md = metadata or {}
    if "model_class" not in md or "model_config" not in md:
        raise FormatError(f"{path} does not name its model class (written by int8dit "
                          f"{md.get('int8dit_version', '?')} from a model that is not one of diffusers', or before "
                          "0.1.0 recorded it): build the unquantized model and call int8dit.load_quantized")
    try:
        return md["model_class"], json.loads(md["model_config"])
    except json.JSONDecodeError as e:
        raise FormatError(f"{path}: metadata 'model_config' is not JSON ({e})") from e


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
    model_class = model_config = None
    if type(model).__module__.startswith("diffusers.") and callable(getattr(model, "to_json_string", None)):
        model_class, model_config = type(model).__name__, model.to_json_string()
    save_file(state, path, metadata=make_metadata(table, __version__, model_class, model_config))


@contextlib.contextmanager
def _parameters_on_meta():
    """Every parameter a module registers goes to the meta device (no memory, no initialisation to
    speak of); buffers are made as the module makes them (a rotary table, a position embedding)."""
    import torch

    register = torch.nn.Module.register_parameter

    def on_meta(module, name, param):
        register(module, name, param)
        if param is not None and param.device.type != "meta":
            module._parameters[name] = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    torch.nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def cast_floating(model, dtype, keep_fp32=(), parameters: bool = True):
    """Cast ``model``'s floating parameters (where ``parameters``) and buffers to ``dtype`` as diffusers'
    ``from_pretrained(torch_dtype=dtype)`` leaves them: those whose dotted name has a part in
    ``keep_fp32`` (the class's ``_keep_in_fp32_modules``) to fp32 instead, cast from the values as they
    are (a computed rotary table keeps its fp32 values, not bf16's). Returns the model."""
    import torch

    keep = set(keep_fp32)
    for module_name, module in model.named_modules():
        tensors = [module._buffers] + ([module._parameters] if parameters else [])
        for table in tensors:
            for name, t in table.items():
                if t is None or not t.is_floating_point() or t.is_meta:
                    continue
                full = f"{module_name}.{name}" if module_name else name
                target = torch.float32 if keep.intersection(full.split(".")) else dtype
                if t.dtype != target:
                    t.data = t.data.to(target)
    return model


def empty_skeleton(cls, config: Mapping[str, Any], dtype=None):
    """``cls.from_config(config)`` (a diffusers model class) with its parameters on the meta device and its
    buffers computed: the skeleton load_quantized fills. ``dtype``: what floating buffers are cast to, as
    ``from_pretrained(torch_dtype=dtype)`` casts them, except in the modules the class keeps in fp32
    (``_keep_in_fp32_modules``: Wan's rotary tables); None: as made."""
    with _parameters_on_meta():
        model = cls.from_config(dict(config))
    if dtype is not None:
        cast_floating(model, dtype, getattr(cls, "_keep_in_fp32_modules", None) or (), parameters=False)
    return model


def _check_meta_buffers(model, state: Mapping[str, Any], path: str) -> None:
    """FormatError where a buffer of the skeleton is on the meta device and the file has no entry for it
    (a non-persistent buffer, which only the class computes): loading would leave it uninitialised."""
    missing = [f"{m_name}.{b_name}" if m_name else b_name for m_name, m in model.named_modules()
               for b_name, b in m._buffers.items()
               if b is not None and b.is_meta and (f"{m_name}.{b_name}" if m_name else b_name) not in state]
    if missing:
        raise FormatError(f"{path}: the skeleton's buffers {missing[:5]} are on the meta device and not in the file "
                          "(non-persistent: the model computes them when it is built). Build the skeleton with "
                          "int8dit.serialization.empty_skeleton (parameters on meta, buffers computed), or on a "
                          "real device")


def _materialize(model, state: Mapping[str, Any], device) -> None:
    """Give every meta parameter and buffer of ``model`` storage on ``device`` (to be filled from
    ``state``, in the dtype the file holds), and move the real ones there where a device is given."""
    import torch

    real = [t.device for t in list(model.parameters()) + list(model.buffers()) if not t.is_meta]
    dev = torch.device(device) if device is not None else (real[0] if real else torch.device("cpu"))

    def place(full: str, t):
        """Storage for a meta tensor in the dtype the file holds it in; a real one, on ``device`` if given."""
        if t.is_meta:
            return torch.empty(t.shape, dtype=state[full].dtype if full in state else t.dtype, device=dev)
        return t.data.to(dev) if device is not None else t.data

    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for name, p in module._parameters.items():
            if p is not None:
                module._parameters[name] = torch.nn.Parameter(place(prefix + name, p), requires_grad=p.requires_grad)
        for name, b in module._buffers.items():
            if b is not None:
                module._buffers[name] = place(prefix + name, b)


def load_quantized(model, path: str, device=None, strict: bool = True, share_inputs: bool = True,
                   fuse_gelu: bool = True, fuse_norms: bool = True, fuse_swiglu: bool = True):
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
    _check_meta_buffers(model, state, path)  # (before the layers are swapped: a refusal changes nothing)

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
        _materialize(model, state, device)
    result = model.load_state_dict(state, strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise FormatError(f"{path} does not fit this model: missing {result.missing_keys[:5]}"
                          f"{'...' if len(result.missing_keys) > 5 else ''}, unexpected {result.unexpected_keys[:5]}"
                          f"{'...' if len(result.unexpected_keys) > 5 else ''}")
    from .torch.quantize import QuantizeReport, apply_fusions

    apply_fusions(model, QuantizeReport(), share_inputs=share_inputs, fuse_gelu=fuse_gelu, fuse_norms=fuse_norms,
                  fuse_swiglu=fuse_swiglu)
    return model


def load_quantized_model(path: str, device=None, strict: bool = True, **switches):
    """The diffusers model a checkpoint names (save_quantized records its class and config), built with
    empty_skeleton and filled by load_quantized (``switches``: its share_inputs, fuse_gelu, fuse_norms,
    fuse_swiglu). Parameters and buffers take the file's dtypes; the buffers the class computes (not in
    the file) the dtype most of the file's floating tensors have, except where the class keeps fp32.
    Returns the model in eval mode."""
    from collections import Counter

    import diffusers
    from safetensors import safe_open

    with safe_open(path, framework="pt", device="cpu") as f:
        metadata = f.metadata()
        table = parse_metadata(metadata, path)
        quantized_keys = {key for name, info in table.items() for key in expected_tensors(name, info)}
        dtypes = Counter(f.get_slice(k).get_dtype() for k in f.keys() if k not in quantized_keys)
    class_name, config = model_of_metadata(metadata, path)
    cls = getattr(diffusers, class_name, None)
    if cls is None:
        raise FormatError(f"{path} holds a {class_name}, which diffusers {diffusers.__version__} lacks: install the "
                          "diffusers version scripts/setup.sh pins")
    import torch

    floating = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
    counts = [(dtypes.get(code, 0), dt) for code, dt in floating.items()]
    dtype = max(counts, key=lambda c: c[0])[1] if any(n for n, _ in counts) else None
    skeleton = empty_skeleton(cls, config, dtype=dtype)
    return load_quantized(skeleton, path, device=device, strict=strict, **switches).eval()
