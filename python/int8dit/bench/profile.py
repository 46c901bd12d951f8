"""One forward under torch.profiler, boiled down to what the e2e report needs: where the GPU time of a
path goes (its top operators by self GPU time, and all of it by kind of kernel: what is left to fuse)
and whether the GPU was kept busy at all (kernel time over wall time), so that a path slower than
expected says whether it lost in its kernels or in the host's launching of them; and, for the host
side, the top entries by self CPU time (operators and CUDA runtime calls, whoever made them) and the
Python functions with the most own time (cProfile, one more forward).

    python -m int8dit.bench.e2e --profile ...   # adds "profile" to every path that ran
"""
from __future__ import annotations

import cProfile
import os
import pstats
import time
from typing import Callable


def _device_us(evt) -> float:
    # torch >= 2.4 names it self_device_time_total; older releases self_cuda_time_total.
    for attr in ("self_device_time_total", "self_cuda_time_total"):
        v = getattr(evt, attr, None)
        if v is not None:
            return float(v)
    return 0.0


def _on_device(evt) -> bool:
    device_type = getattr(evt, "device_type", None)
    return device_type is not None and str(device_type) != "DeviceType.CPU"


# Kernel kinds by name, first match wins (case-insensitive substrings). Attention comes before the
# GEMMs because the memory-efficient SDPA kernels are CUTLASS kernels ("fmha_cutlass..."); cuBLAS's and
# cuDNN's own CUTLASS-built kernels ("cutlass_80_...", "Kernel2<cutlass_...", "cutlass3x_...",
# "cutlass__5x_cudnn...") and cuBLAS's GEMVs (M = 1 layers) come before the CUTLASS row too. int8dit's
# Hopper GEMMs are CUTLASS GemmUniversal instantiations (device_kernel<...GemmUniversal...>, mangled
# where they launch through the driver), not all of whose names mention int8dit (14 of the 36 of a
# sm_90a build, 2026-12-04), so they count as CUTLASS GEMMs: in an int8dit path those are its W8A8
# kernels (PyTorch's own CUTLASS GEMMs, e.g. FP8 rowwise, run in the FP8 paths).
KERNEL_KINDS = (
    ("int8dit quantization", ("row_quantize",)),
    ("attention", ("flash", "fmha", "sdpa", "attention", "attn")),
    # before "int8dit GEMM", which every other kernel in int8dit's namespace would match (the profiles of
    # 54907e6 counted the gated_add kernels as int8dit GEMMs: in Flux-dev 76 kernels, 1.267 ms)
    ("int8dit residual update", ("gated_add",)),
    ("int8dit attention prep", ("qk_norm_rope",)),  # q/k norm, rotary embedding, token join
    ("int8dit GEMM", ("int8dit", "w8a8")),
    ("cuBLAS GEMM", ("gemv", "cutlass_8", "cutlass_9", "kernel2<cutlass", "cutlass3x", "cudnn", "nvjet", "xmma",
                     "cublas")),
    ("CUTLASS GEMM", ("gemmuniversal", "cutlass")),
    ("cuBLAS GEMM", ("gemm", "matmul")),
    ("normalization", ("norm",)),
    ("elementwise, reductions, copies", ("elementwise", "vectorized", "unrolled", "reduce", "copy", "cat",
                                        "memcpy", "memset", "triton", "index", "where")),
)


def kernel_kind(name: str) -> str:
    """Which of KERNEL_KINDS a kernel's name says it is, or "other"."""
    low = name.lower()
    for kind, needles in KERNEL_KINDS:
        if any(n in low for n in needles):
            return kind
    return "other"


def device_intervals(events) -> list:
    """[(name, start us, end us)] of the device-side events (kernels, copies) among prof.events()."""
    return [(e.name, float(e.time_range.start), float(e.time_range.end)) for e in events
            if _on_device(e) and e.time_range.end > e.time_range.start]


def _exclusive_spans(intervals) -> list:
    """[(name, owned us, recorded us)]: each interval's time not already covered by an earlier-starting
    one, and its whole recorded duration. A kernel launched with programmatic dependent launch starts
    (and is timed from) while the one before it still runs, then waits for it in griddepcontrol.wait:
    summed as they are, the overlap would count twice and the GPU look more than busy. One stream's
    kernels run one at a time otherwise, so the time a kernel owns is from the later of its start and
    the previous kernel's end."""
    spans, covered_to = [], float("-inf")
    for name, start, end in sorted(intervals, key=lambda i: i[1]):
        spans.append((name, max(0.0, end - max(start, covered_to)), end - start))
        covered_to = max(covered_to, end)
    return spans


def gpu_time_by_kind(intervals) -> list:
    """GPU time of device intervals (device_intervals) grouped by kernel_kind, each kernel owning only the
    time no earlier kernel covers (_exclusive_spans): [{"kind", "device_us", "kernels"}...], most time
    first."""
    kinds: dict = {}
    for name, us, _ in _exclusive_spans(intervals):
        k = kinds.setdefault(kernel_kind(name), {"device_us": 0.0, "kernels": 0})
        k["device_us"] += us
        k["kernels"] += 1
    return sorted(({"kind": k, "device_us": round(v["device_us"], 1), "kernels": v["kernels"]} for k, v in kinds.items()),
                  key=lambda r: r["device_us"], reverse=True)


def top_kernels(intervals, top: int) -> list:
    """The ``top`` kernels by the GPU time they own (_exclusive_spans), by name: [{"name", "calls",
    "device_us", "early_us"}...], early_us being the rest of their recorded time, spent launched early
    under programmatic dependent launch while the kernel before them still ran. A kernel's recorded
    time (what torch.profiler's own tables give) counts that wait, which can be a whole tile of the
    GEMM before it (CUTLASS's Hopper GEMMs release their dependents once their last tiles' mainloops
    are done): the tables up to e2e_gated_add_54907e6.md listed recorded times, where int8dit's
    gated_add read 48 us a call in Flux-dev, more than twice a copy of its bytes."""
    rows: dict = {}
    for name, own, recorded in _exclusive_spans(intervals):
        r = rows.setdefault(name, {"name": name, "calls": 0, "device_us": 0.0, "early_us": 0.0})
        r["calls"] += 1
        r["device_us"] += own
        r["early_us"] += recorded - own
    ranked = sorted(rows.values(), key=lambda r: r["device_us"], reverse=True)[:top]
    return [dict(r, device_us=round(r["device_us"], 1), early_us=round(r["early_us"], 1)) for r in ranked]


def device_time_us(intervals) -> float:
    """The time at least one device-side event ran: the union of the intervals (overlaps once)."""
    return sum(us for _, us, _ in _exclusive_spans(intervals))


def profile_forward(torch, fn: Callable[[], object], top: int = 10) -> dict:
    """Run ``fn`` once (after one untimed call) under torch.profiler and summarize it.

    Returns {"wall_us", "device_us" (the time any kernel or copy ran), "device_busy" (its
    ratio; well below 1 means the host, not the kernels, set the pace), "by_kind" (that GPU time by
    kind of kernel: int8dit's quantization, attention, GEMMs (CUTLASS: int8dit's W8A8 in its paths;
    cuBLAS), norms, elementwise),
    "top": the ``top`` kernels by the GPU time they own (top_kernels: [{"name", "calls", "device_us",
    "early_us"}...]), or where no kernel ran the operators by self CPU time ([{"name", "calls",
    "device_us", "cpu_us"}...])}."""
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    fn()
    if cuda:
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        wall_us = (time.perf_counter() - t0) * 1e6
    events = list(prof.key_averages())
    # NOTE (device_time_us): an operator's self device time is that of the kernels it launched, which are listed as
    # events of their own: summed over all events, every kernel under an aten operator counted twice
    # (the H200 runs of 2026-12-02 read "GPU busy 1.05" for a bf16 forward). Only the device-side
    # events (kernels, copies) make the total, each kernel's own time (PDL overlaps once).
    intervals = device_intervals(prof.events())
    device_us = device_time_us(intervals)
    def row(e) -> dict:
        return {"name": e.key, "calls": int(e.count), "device_us": round(_device_us(e), 1),
                "cpu_us": round(float(e.self_cpu_time_total), 1)}

    def cpu(e) -> float:
        return float(e.self_cpu_time_total)

    result = {"wall_us": round(wall_us, 1), "device_us": round(device_us, 1),
              "device_busy": round(device_us / wall_us, 3) if wall_us > 0 else 0.0,
              "by_kind": gpu_time_by_kind(intervals),
              "top": (top_kernels(intervals, top) if device_us > 0 else
                      [row(e) for e in sorted(events, key=cpu, reverse=True)[:top] if cpu(e) > 0]),
              "top_cpu": [row(e) for e in sorted(events, key=cpu, reverse=True)[:top] if cpu(e) > 0],
              "top_python": python_hotspots(torch, fn, top)}
    if cuda and device_us == 0:
        # A replayed CUDA graph shows as one cudaGraphLaunch; where the profiler records none of its
        # kernels, a "GPU busy 0.00" would read as a finding.
        result["note"] = "the profiler recorded no kernel of this forward: its GPU figures are missing, not zero"
    return result


def python_hotspots(torch, fn: Callable[[], object], top: int = 10) -> list:
    """The Python functions with the most own time over one call of ``fn`` (cProfile; built-ins such as
    torch.empty or a nanobind call count as functions): [{"name", "calls", "own_us", "cum_us"}...].
    cProfile slows Python itself down, so the figures rank; they do not time."""
    prof = cProfile.Profile()
    prof.enable()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    prof.disable()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (primitive calls, calls, own s, cumulative s, callers)
    rows = []
    for (file, line, name), (_prim, calls, own, cum, _callers) in stats.items():
        where = name if file == "~" else f"{os.path.basename(file)}:{line}({name})"
        rows.append({"name": where, "calls": int(calls), "own_us": round(own * 1e6, 1), "cum_us": round(cum * 1e6, 1)})
    rows.sort(key=lambda r: r["own_us"], reverse=True)
    return rows[:top]
