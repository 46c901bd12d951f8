"""Quantize a diffusers transformer once and save it as an int8dit checkpoint.

    python -m int8dit.convert black-forest-labs/FLUX.1-dev --out flux-dev-int8.safetensors
    python -m int8dit.convert ./my-model --subfolder transformer --out my-int8.safetensors --verify

The source is a Hugging Face repository id or a local folder in diffusers' layout; the transformer is
read from its ``transformer`` subfolder where it has one (``--subfolder`` to say otherwise). The
transformer is loaded in bf16 (or fp16) as ``from_pretrained(torch_dtype=...)`` loads it, quantized
with int8dit.quantize_ (its DiT defaults: the embedders and the output layer stay in float), and
written with int8dit.save_quantized, which records the class and config, so that

    transformer = int8dit.load_quantized_model("flux-dev-int8.safetensors", device="cuda")

rebuilds it without the original weights (about half their size on disk). ``--lora FILE[:SCALE]``
fuses LoRAs into the float weights first (int8dit.fuse_lora), so the checkpoint carries them at the
best accuracy int8 allows. ``--verify`` loads the file back and compares every tensor with the
quantized model. Quantization runs where ``--device``
says (default: the GPU where there is one; the CPU works, slower).
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def _log(step: str, message: str) -> None:
    print(f"int8dit.convert: [{step}] {message}", flush=True)


def _subfolder(source: str, asked) -> str | None:
    if asked is not None:
        return asked or None  # --subfolder "": the source is the transformer's own folder
    if os.path.isdir(source):
        return "transformer" if os.path.isfile(os.path.join(source, "transformer", "config.json")) else None
    return "transformer"  # a diffusers pipeline repository


def _read_config(source: str, subfolder: str | None) -> dict:
    """The transformer's config.json: from the folder, or downloaded from the Hub (as from_pretrained
    would, into its cache)."""
    import json

    if os.path.isdir(source):
        path = os.path.join(source, subfolder or "", "config.json")
    else:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(source, "config.json", subfolder=subfolder)
    with open(path) as f:
        return json.load(f)


def main(argv=None) -> int:
    import torch  # before int8dit's library: see int8dit/__init__.py

    from int8dit.torch.quantize import DIT_DEFAULT_EXCLUDE, DIT_MIN_FEATURES

    ap = argparse.ArgumentParser(prog="python -m int8dit.convert", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="a Hugging Face repository id or a local folder (diffusers layout)")
    ap.add_argument("--out", required=True, help="the .safetensors file to write")
    ap.add_argument("--subfolder", default=None,
                    help="the transformer's subfolder (default: 'transformer' where there is one; '' for none)")
    ap.add_argument("--dtype", choices=("bf16", "fp16"), default="bf16", help="the float dtype (default bf16)")
    ap.add_argument("--device", default=None, help="where to quantize: cuda, cuda:1, cpu (default: cuda if available)")
    ap.add_argument("--exclude", action="append", default=None, metavar="PATTERN",
                    help="keep layers matching this fnmatch pattern in float (repeatable; default: int8dit's DiT "
                    f"list, {', '.join(DIT_DEFAULT_EXCLUDE)})")
    ap.add_argument("--min-features", type=int, default=DIT_MIN_FEATURES,
                    help=f"keep layers narrower than this in float (default {DIT_MIN_FEATURES})")
    ap.add_argument("--lora", action="append", default=None, metavar="FILE[:SCALE]",
                    help="fuse this LoRA (a .safetensors state dict in diffusers' naming, as "
                    "<Pipeline>.lora_state_dict returns it; SCALE default 1) into the float weights before "
                    "quantizing: the closest int8 weights to the adapted model (repeatable)")
    ap.add_argument("--verify", action="store_true", help="load the file back and compare every tensor")
    ap.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = ap.parse_args(argv)

    if os.path.exists(args.out) and not args.force:
        print(f"int8dit.convert: {args.out} exists: pass --force to overwrite it", file=sys.stderr)
        return 2
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        print(f"int8dit.convert: the folder {out_dir} does not exist: create it first", file=sys.stderr)
        return 2
    try:
        import diffusers
    except ImportError:
        print("int8dit.convert: diffusers is not installed (scripts/setup.sh installs the pinned version)",
              file=sys.stderr)
        return 2

    import int8dit
    from int8dit.serialization import cast_floating
    from int8dit.torch import quantize_

    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float16
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    subfolder = _subfolder(args.source, args.subfolder)
    where = f"{args.source}" + (f" ({subfolder}/)" if subfolder else "")

    t0 = time.perf_counter()
    _log("1/3", f"reading the config of {where}")
    try:
        config = _read_config(args.source, subfolder)
    except Exception as e:  # noqa: BLE001 - any reason the source cannot be read is the user's to fix
        print(f"int8dit.convert: cannot read a diffusers config from {where}: {e}", file=sys.stderr)
        return 2
    class_name = config.get("_class_name")
    cls = getattr(diffusers, class_name or "", None)
    if cls is None:
        print(f"int8dit.convert: {where} holds a {class_name!r}, not a diffusers model class this diffusers "
              f"({diffusers.__version__}) has", file=sys.stderr)
        return 2
    _log("1/3", f"loading {class_name} in {args.dtype} onto {device}")
    model = cls.from_pretrained(args.source, subfolder=subfolder, torch_dtype=dtype)
    # (diffusers without accelerate leaves the weights in fp32 whatever torch_dtype says: cast as it would)
    model = cast_floating(model, dtype, getattr(cls, "_keep_in_fp32_modules", None) or ()).to(device).eval()
    float_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())

    for spec in args.lora or ():
        path, _, scale = spec.partition(":")
        try:
            from safetensors.torch import load_file

            fusion = int8dit.fuse_lora(model, load_file(path), scale=float(scale or 1.0))
        except (OSError, ValueError) as e:
            print(f"int8dit.convert: --lora {spec}: {e}", file=sys.stderr)
            return 2
        _log("1/3", f"fused the LoRA {path} (scale {float(scale or 1.0):g}) into {fusion.layers} layers")

    _log("2/3", "quantizing")
    exclude = tuple(args.exclude) if args.exclude is not None else DIT_DEFAULT_EXCLUDE
    with torch.no_grad():
        report = quantize_(model, exclude=exclude, min_features=args.min_features)
    _log("2/3", f"{len(report.quantized)} linear layers quantized, {len(report.skipped)} kept in float")
    if not report.quantized:
        print(f"int8dit.convert: no linear layer of {class_name} was quantized (each is excluded or narrower than "
              f"--min-features {args.min_features}): nothing to write", file=sys.stderr)
        return 2

    _log("3/3", f"writing {args.out}")
    int8dit.save_quantized(model, args.out)
    size = os.path.getsize(args.out)
    _log("3/3", f"{size / 2**30:.2f} GiB ({float_bytes / 2**30:.2f} GiB in {args.dtype}), "
                f"{time.perf_counter() - t0:.0f} s in all")

    if args.verify:
        _log("verify", "loading the file back")
        loaded = int8dit.load_quantized_model(args.out, device=device)
        want, got = model.state_dict(), loaded.state_dict()
        bad = [k for k in want if k not in got or not torch.equal(want[k], got[k])]
        if bad or set(got) != set(want):
            print(f"int8dit.convert: the file read back differs in {bad[:5] or sorted(set(got) ^ set(want))[:5]}",
                  file=sys.stderr)
            return 1
        _log("verify", f"every tensor ({len(want)}) read back as written")
    print(f"load it with: int8dit.load_quantized_model({args.out!r}, device=\"cuda\")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
