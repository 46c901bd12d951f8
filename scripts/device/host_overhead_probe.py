#!/usr/bin/env python3
"""Host cost of a quantized layer's Python plumbing on this machine, without int8dit's kernels.

Two ops with the signature of int8dit::linear and the allocations of its implementation (output,
int8 activations, scales) but no kernel: one registered with @torch.library.custom_op (+ fake and
autograd, as int8dit::linear was until 9a20fc8), one with torch.library.Library per backend (+ fake;
gradients left to an autograd.Function, as now). A 50-layer chain of each is timed eager and under
torch.compile(fullgraph=True), in no_grad and inference_mode, together with the per-call cost of the
pieces an eager call is made of. Needs PyTorch and a CUDA GPU; builds nothing, so it fits a short
device call:

    python3 scripts/device/host_overhead_probe.py            # prints a table, one line per figure
"""
from __future__ import annotations

import time
from typing import Optional

import torch
from torch import Tensor

LAYERS, REPEATS = 50, 200


def plumbing(x: Tensor, weight: Tensor, weight_scale: Tensor, bias: Optional[Tensor],
             smooth: Optional[Tensor]) -> Tensor:
    m, k = x.reshape(-1, x.shape[-1]).shape
    d = torch.empty((m, weight.shape[0]), dtype=x.dtype, device=x.device)
    torch.empty((m, k), dtype=torch.int8, device=x.device)
    torch.empty((m,), dtype=torch.float32, device=x.device)
    torch.cuda.current_stream(x.device).cuda_stream
    return d.view(*x.shape[:-1], weight.shape[0])


@torch.library.custom_op("probe::via_custom_op", mutates_args=())
def via_custom_op(x: Tensor, weight: Tensor, weight_scale: Tensor, bias: Optional[Tensor],
                  smooth: Optional[Tensor]) -> Tensor:
    return plumbing(x, weight, weight_scale, bias, smooth)


@via_custom_op.register_fake
def _(x, weight, weight_scale, bias, smooth):
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


via_custom_op.register_autograd(lambda ctx, g: (g, None, None, None, None), setup_context=lambda ctx, i, o: None)

_lib = torch.library.Library("probe", "FRAGMENT")
_lib.define("via_library(Tensor x, Tensor weight, Tensor weight_scale, Tensor? bias, Tensor? smooth) -> Tensor")
_lib.impl("via_library", plumbing, "CUDA")


@torch.library.register_fake("probe::via_library")
def _(x, weight, weight_scale, bias, smooth):
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


class Chain(torch.nn.Module):
    def __init__(self, op) -> None:
        super().__init__()
        self.op = op
        self.register_buffer("w", torch.zeros(64, 64, dtype=torch.int8, device="cuda"))
        self.register_buffer("s", torch.ones(64, device="cuda"))

    def forward(self, x: Tensor) -> Tensor:
        for _ in range(LAYERS):
            x = self.op(x, self.w, self.s, None, None)
        return x


def per_call_us(fn, calls_per_fn: int) -> float:
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(REPEATS):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / REPEATS / calls_per_fn * 1e6


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("host_overhead_probe.py: no CUDA GPU here; this probe times a GPU machine's host")
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}; us per call, mean over "
          f"{REPEATS} repeats", flush=True)
    x = torch.randn(4, 64, device="cuda", dtype=torch.bfloat16)
    w, s = torch.zeros(64, 64, dtype=torch.int8, device="cuda"), torch.ones(64, device="cuda")
    pieces = {
        "torch.empty (cuda)": lambda: torch.empty((4, 64), device="cuda"),
        "torch.cuda.current_stream(dev).cuda_stream": lambda: torch.cuda.current_stream(x.device).cuda_stream,
        "torch._C._cuda_getCurrentRawStream(index)": lambda: torch._C._cuda_getCurrentRawStream(x.device.index),
        "x.device": lambda: x.device,
        "plumbing() called directly": lambda: plumbing(x, w, s, None, None),
        "torch.ops.probe.via_custom_op": lambda: torch.ops.probe.via_custom_op(x, w, s, None, None),
        "torch.ops.probe.via_library": lambda: torch.ops.probe.via_library(x, w, s, None, None),
        "F.linear bf16 (cuBLAS launch)": lambda: torch.nn.functional.linear(x, x.new_zeros(64, 64)),
    }
    with torch.no_grad():
        for name, fn in pieces.items():
            print(f"{name:48s} {per_call_us(fn, 1):7.2f}", flush=True)
    for op_name in ("via_custom_op", "via_library"):
        model = Chain(getattr(torch.ops.probe, op_name))
        compiled = torch.compile(model, fullgraph=True)
        for mode, ctx in (("no_grad", torch.no_grad), ("inference_mode", torch.inference_mode)):
            with ctx():
                print(f"{op_name + ' compiled, ' + mode:48s} {per_call_us(lambda: compiled(x), LAYERS):7.2f}", flush=True)


if __name__ == "__main__":
    main()
