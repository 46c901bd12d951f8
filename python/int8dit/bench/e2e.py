"""End-to-end benchmark: diffusers transformers with int8dit against bf16, FP8 and other quantizers.

    python -m int8dit.bench.e2e --out bench/results/h100 [--models flux_dev_1024,...] [--paths bf16,int8dit,...]
                                 [--compile-models flux_dev_1024] [--quick]

For each model (random weights, published config, see models.py) and each path (``*_compile``:
each transformer block compiled; ``*_graph``: the eager forward replayed from a CUDA graph through
``int8dit.use_cuda_graphs``, as a pipeline would run it (each call copies its inputs into the graph's
and its outputs out), which takes the host's per-launch cost out; ``*_compile_graph``: both, the
compiled forward captured): the transformer's forward latency (CUDA
events, after warm-up, median), weight bytes, peak GPU memory, and for the quantized paths the
output's cosine similarity and relative error against bf16. Writes e2e.json, e2e.md and e2e.png
into --out.
"""
from __future__ import annotations

import argparse
import copy
import gc
import itertools
import json
import os
import platform
import statistics
import sys
import time
import traceback

from int8dit.bench.time_limit import time_limit

# In the order they run: the paths the summary needs first, so that a run cut short still has them.
PATHS = ["bf16", "int8dit", "fp8", "bf16_compile", "int8dit_compile", "fake_quant", "torchao_int8", "nf4",
         "torchao_int8_compile", "bf16_graph", "int8dit_graph", "bf16_compile_graph", "int8dit_compile_graph",
         "bf16_prep_graph", "int8dit_prep_graph"]
QUANTIZED = {"int8dit", "int8dit_compile", "fake_quant", "fp8", "torchao_int8", "torchao_int8_compile", "nf4",
             "int8dit_graph", "int8dit_compile_graph", "int8dit_prep_graph"}
BF16_PATHS = ("bf16", "bf16_compile", "bf16_graph", "bf16_compile_graph", "bf16_prep_graph")


def fuses_attention(path: str) -> bool:
    """Whether the path also fuses the work between the q/k/v projections and attention (*_prep_*:
    int8dit.fuse_attention_prep; Flux's q/k norm, rotation and join, SD3's join). Not an int8 matter, so
    bf16 runs it too: bf16_prep_graph against bf16_graph is the fusion's own gain."""
    return "_prep_" in path


def compiles(path: str) -> bool:
    """Whether the path compiles its transformer blocks (*_compile, *_compile_graph)."""
    return path.endswith(("_compile", "_compile_graph"))


def captures(path: str) -> bool:
    """Whether the path replays its forward from one CUDA graph (*_graph, *_compile_graph)."""
    return path.endswith("_graph")


def log(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def time_forward(torch, fn, warmup: int, iters: int) -> dict:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "iters": iters}


def _plain_tensors(t):
    # Tensor subclasses of quantizers (torchao) keep their data in inner tensors.
    if hasattr(t, "__tensor_flatten__") and type(t) not in (torch_module().Tensor, torch_module().nn.Parameter):
        names, _ = t.__tensor_flatten__()
        for n in names:
            inner = getattr(t, n)
            if inner is not None:
                yield from _plain_tensors(inner)
    else:
        yield t


def torch_module():
    import torch

    return torch


def unique_tensor_bytes(module) -> int:
    seen, total = set(), 0
    for t in itertools.chain(module.parameters(), module.buffers()):
        for x in _plain_tensors(t):
            key = (x.untyped_storage().data_ptr(), str(x.device))
            if key not in seen:
                seen.add(key)
                total += x.untyped_storage().nbytes()
    for m in module.modules():  # bitsandbytes keeps the NF4 block scales beside the parameter
        q = getattr(getattr(m, "weight", None), "quant_state", None)
        if q is not None and getattr(q, "absmax", None) is not None:
            total += q.absmax.numel() * q.absmax.element_size()
    return total


def shared_copy(model):
    """A copy of the module tree that shares every tensor (quantizers then replace layers in the copy)."""
    memo = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    return copy.deepcopy(model, memo)


def compile_blocks(torch, model, fullgraph: bool = True):
    """Regional compilation: each transformer block compiled (identical blocks share one compiled graph),
    as diffusers recommends for these models; the embedders and the output layer stay eager."""
    n = 0
    for child in model.children():
        # (FLUX.3 keeps its per-mode block lists in a ModuleDict)
        lists = child.values() if isinstance(child, torch.nn.ModuleDict) else [child]
        for blocks in lists:
            if isinstance(blocks, torch.nn.ModuleList):
                for block in blocks:
                    block.compile(fullgraph=fullgraph)
                    n += 1
    return n


def rewrites_of(report) -> dict:
    """What quantize_ rewrote beyond the layers, for the results: the fused producers change the timing."""
    return {"shared_input_groups": report.shared_input_groups, "gelu_mlps": report.gelu_mlps,
            "concat_gelu_blocks": report.concat_gelu_blocks, "fused_norms": report.fused_norms,
            "fused_blocks": report.fused_blocks, "swiglu_mlps": report.swiglu_mlps,
            "modulation_once": report.modulation_once}


def offload_needed(mode: str, float_bytes: int, gpu_bytes: int) -> bool:
    """Whether the int8dit paths build their variants from float weights held in host memory (mode
    "auto": when the model's weights and an int8 copy of them, 1.5 times its bytes, would not fit in
    90% of the GPU's memory: FLUX.2-dev's 64 GB on an 80 GB H100, not on a 141 GB H200)."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"offload mode {mode!r}: choose auto, on or off")
    return mode == "on" or (mode == "auto" and 1.5 * float_bytes > 0.9 * gpu_bytes)


def place_float_layers(layers: dict, device: str) -> float:
    """Move the float layers quantize_ replaces (their weights and biases) to ``device`` in place, so
    every shared copy of the model sees them there; returns the seconds it took."""
    t0 = time.perf_counter()
    for module in layers.values():
        for t in itertools.chain(module.parameters(), module.buffers()):
            t.data = t.data.to(device)  # the same tensor object, its storage moved (module.to may replace it)
    return time.perf_counter() - t0


def make_variant(torch, path: str, model, names, fuse_gelu: bool = True, fuse_norms: bool = True,
                 fuse_swiglu: bool = True, device=None):
    from int8dit.bench import baselines
    from int8dit.torch import quantize_

    if path in BF16_PATHS:
        variant = shared_copy(model)
    else:
        variant = shared_copy(model)
        if path.startswith("int8dit"):
            report = quantize_(variant, include=sorted(names), exclude=(), min_features=0, fuse_gelu=fuse_gelu,
                               fuse_norms=fuse_norms, fuse_swiglu=fuse_swiglu, device=device)
            variant._int8dit_rewrites = rewrites_of(report)
        elif path == "fake_quant":
            baselines.apply_fake_quant(variant, names)
        elif path == "fp8":
            baselines.apply_fp8(variant, names)
        elif path.startswith("torchao_int8"):
            baselines.apply_torchao_int8(variant, names)
        elif path == "nf4":
            baselines.apply_nf4(variant, names)
        else:
            raise ValueError(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
    # FLUX.3's modulation once a sample rather than once a token (int8dit.torch.flux3; quantize_ applies it
    # to the int8dit paths): nothing int8 in it, so every path gets it and the speedups are int8's alone
    from int8dit.torch.flux3 import compute_modulation_once

    applied = compute_modulation_once(variant)  # (0 where quantize_ did it: its report counts it)
    variant._int8dit_modulation_once = applied or getattr(variant, "_int8dit_rewrites", {}).get("modulation_once", 0)
    if fuses_attention(path):
        from int8dit.torch import fuse_attention_prep

        variant._int8dit_fused_attention = fuse_attention_prep(variant)
        if variant._int8dit_fused_attention == 0:
            raise RuntimeError("no attention module of this model runs a processor int8dit.fuse_attention_prep "
                               "replaces (Flux's FluxAttnProcessor, SD3's JointAttnProcessor2_0): nothing to time")
    if compiles(path):
        compile_blocks(torch, variant, fullgraph=not path.startswith("torchao"))
    return variant


# torch._int_mm, under torchao's int8 dynamic layers, needs more than 16 rows on CUDA; compiled, a layer
# with fewer fails ("self.size(0) needs to be greater than 16": every adaLN modulation linear, whose
# input is one embedding per batch element). Those layers stay bf16 in the torchao paths.
TORCHAO_MIN_ROWS = 17


def rows_per_call(torch, model, modules: dict, inputs: dict) -> dict:
    """{name: rows of the input (tokens x batch) in one forward} for the given submodules (the largest
    if one is called more than once)."""
    rows: dict = {}
    hooks = []
    for name, mod in modules.items():
        def record(_mod, args, name=name):
            x = args[0]
            rows[name] = max(rows.get(name, 0), x.numel() // max(1, x.shape[-1]))
        hooks.append(mod.register_forward_pre_hook(record))
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in hooks:
            h.remove()
    return rows


def replayed_forward(model, inputs: dict):
    """The forward replayed from a CUDA graph as a pipeline would get it (int8dit.use_cuda_graphs on the
    variant: captured on the first call, after two warm-up runs; each call copies the inputs in and the
    outputs out): a function that runs it. Raises where the first call did not replay a graph (autograd
    on, a capture that failed), so that a graph path never times the eager forward under its name."""
    from int8dit.torch.cuda_graphs import cuda_graphs_of, use_cuda_graphs

    use_cuda_graphs(model)
    graphs = cuda_graphs_of(model)

    def forward():
        return model(**inputs)

    first = forward()
    if graphs.replays == 0:
        why = "; ".join(graphs.failed.values()) or "autograd was on or an input could not be captured"
        raise RuntimeError(f"the forward did not replay a CUDA graph ({why})")
    forward.first = first
    return forward


def flat_output(torch, out):
    """A forward's output as one fp32 vector: a tensor, or a list of tensors (one a sample, as Z-Image
    returns them)."""
    if isinstance(out, (list, tuple)):
        return torch.cat([o.float().flatten() for o in out])
    return out.float().flatten()


def accuracy(torch, out, ref) -> dict:
    a, b = flat_output(torch, out), flat_output(torch, ref)
    return {"cosine_vs_bf16": torch.nn.functional.cosine_similarity(a, b, dim=0).item(),
            "rel_error_vs_bf16": ((a - b).norm() / b.norm()).item(),
            "finite": bool(torch.isfinite(a).all().item())}


def run_model(torch, case, paths, args, on_path=None) -> dict:
    """Every path of one model; `on_path(result)` after each, so that the caller can write what there is."""
    from int8dit.bench.models import build
    from int8dit.torch.quantize import selected_linears

    log(f"{case.name}: building {case.cls_name} ({case.repo}) with random weights")
    torch.manual_seed(0)
    model = build(case, torch, "cuda", torch.bfloat16)
    inputs = case.inputs(torch, "cuda", torch.bfloat16)
    chosen, skipped = selected_linears(model)
    linear_params = sum(m.weight.numel() for m in chosen.values())
    result = {"model": case.cls_name, "config_from": case.repo, "shape": case.shape,
              "params": sum(p.numel() for p in model.parameters()), "quantized_linears": len(chosen),
              "quantized_params": linear_params, "kept_float": sorted(skipped), "paths": {}}
    with torch.no_grad():
        ref = model(**inputs)[0]
    torch.cuda.synchronize()
    torchao_names = chosen
    if any(p.startswith("torchao") for p in paths):
        rows = rows_per_call(torch, model, chosen, inputs)
        few = sorted(n for n in chosen if rows.get(n, TORCHAO_MIN_ROWS) < TORCHAO_MIN_ROWS)
        torchao_names = {n: m for n, m in chosen.items() if n not in few}
        result["torchao_kept_float"] = few  # beside kept_float: too few rows for torch._int_mm
    from int8dit.torch.attention_prep import attention_prep_applies

    offload = offload_needed(getattr(args, "offload", "auto"), unique_tensor_bytes(model),
                             torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)
    result["float_layers_offloaded"] = offload
    on_host = False
    for path in paths:
        if compiles(path) and args.compile_models and case.name not in args.compile_models:
            continue
        if fuses_attention(path) and not attention_prep_applies(model):
            log(f"{case.name}: {path}: skipped (no attention processor that fuse_attention_prep replaces)")
            continue
        log(f"{case.name}: {path}")
        entry = {}
        variant = fn = None
        try:
            with time_limit(args.path_timeout, f"{case.name}: {path}"):
                if offload and path.startswith("int8dit") != on_host:
                    # The int8dit variants are quantized onto the GPU a layer at a time from host memory;
                    # every other path runs the float layers on the GPU.
                    on_host = not on_host
                    where = "cpu" if on_host else "cuda"
                    log(f"{case.name}: float layers to {where} in {place_float_layers(chosen, where):.1f} s")
                t0 = time.perf_counter()
                variant = make_variant(torch, path, model, torchao_names if path.startswith("torchao") else chosen,
                                       fuse_gelu=not getattr(args, "no_fuse_gelu", False),
                                       fuse_norms=not getattr(args, "no_fuse_norms", False),
                                       fuse_swiglu=not getattr(args, "no_fuse_swiglu", False),
                                       device="cuda" if on_host else None)
                entry["setup_s"] = round(time.perf_counter() - t0, 2)
                if hasattr(variant, "_int8dit_rewrites"):
                    entry["int8dit_rewrites"] = variant._int8dit_rewrites
                if getattr(variant, "_int8dit_modulation_once", 0):  # (every path of a FLUX.3)
                    entry["modulation_once"] = variant._int8dit_modulation_once
                if hasattr(variant, "_int8dit_fused_attention"):
                    entry["fused_attention_modules"] = variant._int8dit_fused_attention
                entry["weight_bytes"] = unique_tensor_bytes(variant) if path not in BF16_PATHS else \
                    unique_tensor_bytes(model)
                with torch.no_grad():
                    if captures(path):
                        # Capture allocates the forward's activations from the graph's pool: its peak
                        # is the capture's, and a replay allocates nothing.
                        torch.cuda.reset_peak_memory_stats()
                        base = torch.cuda.memory_allocated()
                        t0 = time.perf_counter()
                        fn = replayed_forward(variant, inputs)
                        out = fn.first[0]
                        torch.cuda.synchronize()
                        entry["first_call_s"] = round(time.perf_counter() - t0, 2)
                        entry["activation_peak_bytes"] = torch.cuda.max_memory_allocated() - base
                    else:
                        fn = lambda: variant(**inputs)  # noqa: E731
                        t0 = time.perf_counter()
                        out = fn()[0]
                        torch.cuda.synchronize()
                        entry["first_call_s"] = round(time.perf_counter() - t0, 2)
                        torch.cuda.reset_peak_memory_stats()
                        base = torch.cuda.memory_allocated()
                        out = fn()[0]
                        torch.cuda.synchronize()
                        entry["activation_peak_bytes"] = torch.cuda.max_memory_allocated() - base
                    # What a process holding only this variant would peak at.
                    entry["peak_bytes"] = entry["weight_bytes"] + entry["activation_peak_bytes"]
                    entry.update(time_forward(torch, lambda: fn(), args.warmup, args.iters))
                    if args.profile:
                        from int8dit.bench.profile import profile_forward

                        entry["profile"] = profile_forward(torch, fn)
                if path in QUANTIZED or fuses_attention(path):
                    entry.update(accuracy(torch, out, ref))
                log(f"{case.name}: {path}: {entry['median_ms']:.2f} ms, "
                    f"weights {entry['weight_bytes'] / 2**30:.2f} GiB"
                    + (f", cosine {entry['cosine_vs_bf16']:.5f}" if "cosine_vs_bf16" in entry else ""))
        except Exception as e:  # one failing path must not hide the others' numbers
            entry = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
            log(f"{case.name}: {path}: FAILED {entry['error']}")
            if args.verbose:
                traceback.print_exc()
        finally:
            if variant is not None:
                from int8dit.torch.cuda_graphs import stop_cuda_graphs

                stop_cuda_graphs(variant)  # its graphs' memory, and a variant that shares modules with the next
            variant = fn = None  # drop the variant's tensors before the next path
            gc.collect()
            torch.cuda.empty_cache()
            if compiles(path):
                torch._dynamo.reset()
        result["paths"][path] = entry
        if on_path:
            on_path(result)
    del model, ref
    gc.collect()
    torch.cuda.empty_cache()
    return result


def summary(results: dict) -> dict:
    flux = results.get("flux_dev_1024", {}).get("paths", {})

    def ms(p):
        return flux.get(p, {}).get("median_ms")

    out = {}
    # With the host out of the way: int8dit against bf16, both captured in a CUDA graph, every model.
    for model, result in results.items():
        paths = result.get("paths", {})
        graph, bf16_graph = (paths.get(p, {}).get("median_ms") for p in ("int8dit_graph", "bf16_graph"))
        if graph and bf16_graph:
            out[f"{model}_graph_speedup_vs_bf16_graph"] = bf16_graph / graph
        both, bf16_both = (paths.get(p, {}).get("median_ms") for p in ("int8dit_compile_graph", "bf16_compile_graph"))
        if both and bf16_both:
            out[f"{model}_compile_graph_speedup_vs_bf16_compile_graph"] = bf16_both / both
        # The fused attention prep: int8dit with it against stock bf16, and each against its twin
        prep, bf16_prep = (paths.get(p, {}).get("median_ms") for p in ("int8dit_prep_graph", "bf16_prep_graph"))
        if prep and bf16_graph:
            out[f"{model}_prep_graph_speedup_vs_bf16_graph"] = bf16_graph / prep
        if prep and bf16_prep:
            out[f"{model}_prep_graph_speedup_vs_bf16_prep_graph"] = bf16_prep / prep
        if bf16_prep and bf16_graph:
            out[f"{model}_bf16_prep_graph_speedup_vs_bf16_graph"] = bf16_graph / bf16_prep
    ours = [p for p in ("int8dit", "int8dit_compile") if ms(p)]
    if not ours:
        return out
    best = min(ours, key=ms)
    out["flux_dev_best_int8dit_path"] = best
    if ms("bf16"):
        out["flux_dev_speedup_vs_bf16"] = ms("bf16") / ms(best)
    if ms("bf16_compile"):
        out["flux_dev_speedup_vs_bf16_compiled"] = ms("bf16_compile") / ms(best)
    if ms("fp8"):
        out["flux_dev_speedup_vs_fp8"] = ms("fp8") / ms(best)
    if flux.get("bf16", {}).get("weight_bytes") and flux.get(best, {}).get("weight_bytes"):
        out["flux_dev_weight_memory_ratio"] = flux[best]["weight_bytes"] / flux["bf16"]["weight_bytes"]
    if "cosine_vs_bf16" in flux.get(best, {}):
        out["flux_dev_cosine_vs_bf16"] = flux[best]["cosine_vs_bf16"]
    return out


def prepare_profiler_for_cuda_graphs() -> None:
    """Start the profiler's CUDA tracing once before any graph is captured: a graph captured before
    CUPTI first started can hang or fault when it is replayed under the profiler (pytorch/pytorch
    #75504). PyTorch's own workaround, a private function: where it is missing, the graph paths'
    profiles may say they saw no kernel."""
    try:
        from torch.profiler._utils import _init_for_cuda_graphs
    except ImportError:
        log("--profile: torch.profiler._utils._init_for_cuda_graphs is missing: graph paths may profile no kernel")
        return
    _init_for_cuda_graphs()


def probe_import(mod: str) -> str:
    """The package's version, or why it cannot be used. Imported in a child process first: a compiled
    extension built for another torch can crash the interpreter rather than raise."""
    import subprocess

    try:
        r = subprocess.run([sys.executable, "-c", f"import {mod}; print({mod}.__version__)"], capture_output=True,
                           text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "unavailable (import took over 120 s)"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        return f"unavailable ({last[:160]})"
    return r.stdout.strip().splitlines()[-1]


def int8dit_switches(environ) -> dict:
    """The INT8DIT_* variables set for this run (INT8DIT_PDL=0, INT8DIT_QUANT_ROWS, ...): they change
    which kernels run and how they launch, so a result without them could not be reproduced."""
    return {k: v for k, v in sorted(environ.items()) if k.startswith("INT8DIT_")}


# The baselines' packages, probed only where a requested path needs them (each probe imports the
# package in a child process: ~10 s apiece on the H200's host).
PATH_PACKAGES = {"torchao_int8": "torchao", "torchao_int8_compile": "torchao", "nf4": "bitsandbytes"}


def environment(torch, paths=()) -> dict:
    import int8dit

    env = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "command": " ".join(sys.argv),
           "python": platform.python_version(), "torch": torch.__version__, "int8dit": int8dit.__version__,
           "int8dit_archs": int8dit.built_architectures(), "gpu": torch.cuda.get_device_name(),
           "cuda": torch.version.cuda}
    needed = {"diffusers"} | {PATH_PACKAGES[p] for p in paths if p in PATH_PACKAGES}
    for mod in ("diffusers", "torchao", "bitsandbytes"):
        env[mod] = probe_import(mod) if mod in needed else "not probed (no path of this run needs it)"
    env["int8dit_env"] = int8dit_switches(os.environ)
    try:
        import subprocess

        env["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total", "--format=csv"],
            capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        pass
    return env


def main(argv=None) -> int:
    import torch  # before int8dit's library: see int8dit/__init__.py

    from int8dit.bench.models import MODELS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/h100", help="folder for e2e.json, e2e.md, e2e.png")
    defaults = [name for name, case in MODELS.items() if case.default]
    ap.add_argument("--models", default=",".join(defaults),
                    help=f"comma-separated, from {','.join(MODELS)} (default: {','.join(defaults)}; the others "
                    "are run when named)")
    ap.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, from {','.join(PATHS)}")
    ap.add_argument("--compile-models", default="", help="run the compiled paths (*_compile, *_compile_graph) only for these models "
                    "(compilation takes tens of seconds per model); empty = all")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="Flux-dev 1024 only, eager paths, 1 warm-up, 3 runs")
    ap.add_argument("--minilm", action="store_true", help="also evaluate all-MiniLM-L6-v2 (real weights)")
    ap.add_argument("--verbose", action="store_true", help="print tracebacks of failing paths")
    ap.add_argument("--profile", action="store_true",
                    help="also run one forward of every path under torch.profiler: its top operators by GPU time, "
                         "its GPU time by kind of kernel and how busy the GPU was, in e2e.json and e2e.md")
    ap.add_argument("--path-timeout", type=float, default=0, metavar="S",
                    help="give up a path (model build excluded) after S seconds of wall time and record why, "
                    "so a hanging compile costs that path, not the run (0 = no limit)")
    ap.add_argument("--no-fuse-gelu", action="store_true",
                    help="int8dit paths: keep GELU and fc2's quantization apart (quantize_(fuse_gelu=False)), "
                    "to measure what the fused GELU MLP is worth")
    ap.add_argument("--no-fuse-norms", action="store_true",
                    help="int8dit paths: keep diffusers' adaLN-Zero norms as they are and let each layer quantize "
                    "their output (quantize_(fuse_norms=False))")
    ap.add_argument("--no-fuse-swiglu", action="store_true",
                    help="int8dit paths: keep the gated MLPs' SiLU and product apart from the second linear's "
                    "quantization (quantize_(fuse_swiglu=False)), to measure what swiglu_quantize is worth")
    ap.add_argument("--offload", choices=("auto", "on", "off"), default="auto",
                    help="hold the float layers in host memory while the int8dit variants are quantized onto "
                    "the GPU and timed (auto: where the weights and an int8 copy would not fit in 90%% of the "
                    "GPU's memory, e.g. FLUX.2-dev on an 80 GB GPU)")
    ap.add_argument("--merge", metavar="E2E_JSON", help="add this run's paths to an earlier e2e.json (same GPU and "
                    "packages): e.g. the compiled paths of the models an earlier run left out; both commands are kept")
    args = ap.parse_args(argv)
    if args.quick:
        args.models, args.warmup, args.iters = "flux_dev_1024", 1, 3
        args.paths = ",".join(p for p in args.paths.split(",") if not p.endswith(("_compile", "_graph")))
    args.compile_models = [m for m in args.compile_models.split(",") if m]
    models = [m for m in args.models.split(",") if m]
    paths = [p for p in args.paths.split(",") if p]
    bad = [m for m in models if m not in MODELS] + [p for p in paths if p not in PATHS]
    if bad:
        ap.error(f"unknown model or path: {', '.join(bad)}")

    if not torch.cuda.is_available():
        print("e2e: no CUDA GPU: this benchmark runs on the GPU machine", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    log(f"models {','.join(models)}; paths {','.join(paths)}; checking the baselines' packages")
    if args.profile and any(p.endswith("_graph") for p in paths):
        prepare_profiler_for_cuda_graphs()
    doc = {"environment": environment(torch, paths), "results": {}, "summary": {}}
    doc["environment"]["int8dit_fuse_gelu"] = not args.no_fuse_gelu
    doc["environment"]["int8dit_fuse_norms"] = not args.no_fuse_norms
    doc["environment"]["int8dit_fuse_swiglu"] = not args.no_fuse_swiglu
    if args.merge:
        with open(args.merge) as f:
            earlier = json.load(f)
        mine, theirs = doc["environment"], earlier["environment"]
        differ = [k for k in ("gpu", "torch", "diffusers", "int8dit") if k in theirs and mine.get(k) != theirs.get(k)]
        if differ:
            ap.error(f"--merge {args.merge}: measured with a different {', '.join(differ)}; run everything again")
        earlier.setdefault("merged_runs", []).append({k: mine[k] for k in ("date_utc", "command")})
        doc = earlier
    for path, mod in PATH_PACKAGES.items():
        if path in paths and doc["environment"][mod].startswith("unavailable"):
            log(f"{path}: skipped, {mod} is {doc['environment'][mod]}")
            paths.remove(path)
            doc.setdefault("not_run", {})[path] = f"{mod} {doc['environment'][mod]}"
    from int8dit.bench.report import write_report

    if args.minilm:
        from int8dit.bench.minilm import evaluate

        log("all-MiniLM-L6-v2: fp32 vs int8dit (plain, SmoothQuant)")
        try:
            doc["minilm"] = evaluate()
        except Exception as e:
            doc["minilm"] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
        log(f"all-MiniLM-L6-v2: {json.dumps(doc['minilm'])}")
        write_report(doc, args.out)
    for name in models:
        earlier = doc["results"].get(name)

        def keep(result, name=name, earlier=earlier):
            if earlier is not None:  # --merge: the new paths join (or replace) the earlier ones
                doc["results"][name] = {**earlier, "paths": {**earlier["paths"], **result["paths"]}}
            else:
                doc["results"][name] = result
            doc["summary"] = summary(doc["results"])
            # After every path: a run cut off by a device call's time limit (or a compile that will not
            # end) still leaves every number it measured.
            write_report(doc, args.out)

        keep(run_model(torch, MODELS[name], paths, args, on_path=keep))
    write_report(doc, args.out, with_plot=True)
    log(f"summary: {json.dumps(doc['summary'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
