#!/usr/bin/env python3
"""Host time of int8dit's PyTorch layer itself: what one eager call of a quantized layer spends in
Python and PyTorch's allocator before and after the C++ entry point, with that entry point stubbed
out (so no kernel and no CPU reference runs, on any machine).

An eager DiT forward makes one such call per quantized layer (197 on DiT-XL/2, 335 on SD3-medium)
and is host-bound on the H200's host (docs/python.md), so every microsecond here is paid per layer.
The figures are this machine's: the H200's host ran the same Python ~1.5-3x slower (5.7 us for a
call that takes ~2 us here; scripts/device/host_overhead_probe.py). Compare figures of one machine,
and runs minutes apart: a 2-core machine's timings move by ~10%.

    python3 bench/host/python_overhead.py [--calls N] [--json FILE]

Paths timed (CPU tensors, bf16, M = 4 tokens x K = N = 64; the shapes do not matter with the
kernels stubbed):
  linear          Linear.forward -> linear_unchecked: the layer quantizes its own input (2 kernels)
  linear_3d       the same on a [1, 4, 64] input, as a transformer block passes it
  produced_hit    Linear.forward on a tensor a fused producer quantized (int8dit.torch.produced):
                  only the GEMM
  gelu_mlp        GeluMLP.forward: fc1, gelu_quantize, fc2's GEMM (3 entry points)
  siblings        q, k and v layers on one input, quantized once for the three (shared_input.py):
                  a fresh input each call, as a forward makes
  modulated_norm  a block's inline modulated LayerNorm (int8dit.torch.block_steps): y and its int8 rows in
                  one entry point, recorded for the readers
  concat_gelu     Flux's single-stream proj_out input: concat_gelu_quantize, then proj_out's GEMM
  mlp_half        a DiT block's second half as its fused forward runs it (int8dit.torch.block_steps): the
                  attention's gated residual update in the MLP norm's kernel, the GeluMLP, the MLP's
                  gated residual update (the same steps through the functions of an older checkout)
  compiled_layer  one layer of a 10-Linear stack under torch.compile(fullgraph=True, backend="aot_eager"):
                  the registered int8dit::linear op, its dispatch and operand checks (per layer)
  compiled_gelu_mlp  one GeluMLP of a stack of 5 under torch.compile(fullgraph=True, backend="aot_eager")
  compiled_siblings  q, k and v on one input under torch.compile (aot_autograd, with inductor's post-grad
                  sibling pass applied to the graph where the checkout has it: int8dit.torch.graph_passes)
  swiglu_mlp      a gated MLP as quantize_(fuse_swiglu=True) runs it (int8dit.torch.swiglu.SwigluMLP):
                  w1 and w3 on one input quantized once, swiglu_quantize, w2's GEMM (where the checkout has it)
  swiglu_mlp_unfused  the same module's layers as the stock module calls them: w1, w3, F.silu, the
                  product, w2 (which quantizes the product itself)
  torch_empty     one torch.empty of the output's size: the unit the others are counted in
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import types

def per_call_us(fn, calls: int, repeats: int = 5) -> float:
    """Median over `repeats` of the mean time of `calls` calls."""
    for _ in range(min(calls, 2000)):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return sorted(times)[len(times) // 2]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def stub_entry_points(ops_module, fused_module) -> None:
    """Replace the C++ module the layer calls by one whose pointer-level entry points do nothing."""
    real = ops_module._C
    raw = types.SimpleNamespace(**{name: (lambda *a, **k: None) for name in dir(real.raw) if not name.startswith("_")})
    raw.gemm_workspace_size = lambda *a, **k: 0
    fake = types.SimpleNamespace(raw=raw, DType=real.DType)
    ops_module._C = fake
    fused_module._C = fake


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20000, help="calls per timing (default 20000)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures, the machine and the commit to FILE")
    args = ap.parse_args()

    import torch

    from int8dit.torch import GeluMLP, Linear
    from int8dit.torch import fused as fused_module
    from int8dit.torch import ops as ops_module
    from int8dit.torch.produced import PRODUCED

    stub_entry_points(ops_module, fused_module)
    try:  # (a checkout before 2026-12-05 has no gated MLPs: those paths are left out)
        from int8dit.torch import swiglu as swiglu_module

        swiglu_module._C = ops_module._C
    except ImportError:
        swiglu_module = None
    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    # from_float runs the C++ weight quantization, stubbed here: build the layer from its buffers instead.
    lin = Linear(64, 64)
    x = torch.randn(4, 64, dtype=torch.bfloat16)
    x3 = x.view(1, 4, 64)
    y = torch.randn(4, 64, dtype=torch.bfloat16)
    PRODUCED.remember(y, torch.empty(4, 64, dtype=torch.int8), torch.empty(4, dtype=torch.float32))

    # NOTE: written against older checkouts too (bench/host/compare.py): the block steps live in
    # int8dit.torch.block_steps since 2026-12-05, before that in .blocks under underscored names.
    try:
        from int8dit.torch import block_steps as steps

        modulated_norm = steps.modulated_norm
        residual_then_mlp = steps.residual_then_mlp
        residual_then_modulated_norm = steps.residual_then_modulated_norm
        gated_add = steps.gated_add
    except ImportError:
        from int8dit.torch import blocks as steps

        modulated_norm = steps._modulated_norm
        residual_then_mlp = getattr(steps, "_residual_then_mlp", None)
        residual_then_modulated_norm = steps._residual_then_modulated_norm
        gated_add = getattr(steps, "gated_add", None)
    from int8dit.torch.fused import concat_gelu_quantize_impl
    from int8dit.torch.ops import gemm_unchecked

    norm = torch.nn.LayerNorm(64, elementwise_affine=False, eps=1e-6)
    x_btk = torch.randn(2, 4, 64, dtype=torch.bfloat16)
    shift, scale = torch.randn(2, 64, dtype=torch.bfloat16), torch.randn(2, 64, dtype=torch.bfloat16)
    attn, h = torch.randn(1, 4, 64, dtype=torch.bfloat16), torch.randn(1, 4, 256, dtype=torch.bfloat16)
    proj_out = Linear(320, 64)

    attention = torch.nn.Module()
    attention.to_q, attention.to_k, attention.to_v = Linear(64, 64), Linear(64, 64), Linear(64, 64)
    from int8dit.torch.shared_input import share_sibling_inputs

    share_sibling_inputs(attention)

    def siblings():
        xs = x.clone()  # a new activation, as each block's norm makes
        return attention.to_q(xs), attention.to_k(xs), attention.to_v(xs)

    stack = torch.nn.Sequential(*[Linear(64, 64) for _ in range(10)])
    compiled_stack = torch.compile(stack, fullgraph=True, backend="aot_eager")

    def gelu_mlp():
        act = torch.nn.GELU(approximate="tanh")
        act.proj = Linear(64, 256)
        return GeluMLP(torch.nn.ModuleList([act, torch.nn.Dropout(0.0), Linear(256, 64)])).eval()

    eager_mlp = gelu_mlp()
    compiled_mlps = torch.compile(torch.nn.Sequential(*[gelu_mlp() for _ in range(5)]), fullgraph=True,
                                  backend="aot_eager")

    def compiled_siblings_fn():
        from torch._dynamo.backends.common import aot_autograd

        try:  # the post-grad pass inductor runs (a checkout without it compiles the plain graph)
            from int8dit.torch.graph_passes import share_quantized_inputs
        except ImportError:
            share_quantized_inputs = None

        def forward_compiler(gm, example_inputs):
            if share_quantized_inputs is not None:
                share_quantized_inputs(gm.graph)
                gm.recompile()
            return gm.forward

        def qkv(t):
            return attention.to_q(t), attention.to_k(t), attention.to_v(t)

        return torch.compile(qkv, fullgraph=True, backend=aot_autograd(fw_compiler=forward_compiler))

    compiled_siblings = compiled_siblings_fn()

    # (looked up once: the weight is a parameter since 2026-12-05, a buffer before, and compare.py runs both)
    proj_w, proj_b = proj_out.weight, proj_out._buffers

    def concat_gelu():
        q, s = concat_gelu_quantize_impl(attn, h, None)
        return gemm_unchecked(q, proj_w, s, proj_b["weight_scale"], proj_b["bias"], torch.bfloat16)

    mlp_of_block = gelu_mlp()
    update, gate = torch.randn(2, 4, 64, dtype=torch.bfloat16), torch.randn(2, 1, 64, dtype=torch.bfloat16)

    def mlp_half():
        # NOTE: written against older checkouts too (bench/host/compare.py): where the blocks have no
        # _residual_then_mlp (before a71d998) or gated_add (before aebd846), the steps they took instead.
        if residual_then_mlp is not None:
            h2, out = residual_then_mlp(norm, mlp_of_block, x_btk, update, gate, shift, scale)
        else:
            h2, y2 = residual_then_modulated_norm(norm, x_btk, update, gate, shift, scale)
            out = mlp_of_block(y2)
        return gated_add(h2, gate, out) if gated_add is not None else gate * out + h2

    paths = {
        "linear": lambda: lin(x),
        "linear_3d": lambda: lin(x3),
        "produced_hit": lambda: lin(y),
        "gelu_mlp": lambda: eager_mlp(x),
        "siblings": siblings,
        "modulated_norm": lambda: modulated_norm(norm, x_btk, shift, scale),
        "concat_gelu": concat_gelu,
        "mlp_half": mlp_half,
        "compiled_layer": lambda: compiled_stack(x),
        "compiled_gelu_mlp": lambda: compiled_mlps(x),
        "compiled_siblings": lambda: compiled_siblings(x),
        "torch_empty": lambda: torch.empty((4, 64), dtype=torch.bfloat16),
    }
    if swiglu_module is not None:
        from int8dit.torch.shared_input import share_sibling_inputs as share

        gated = swiglu_module.SwigluMLP({"w1": Linear(64, 256), "w2": Linear(256, 64), "w3": Linear(64, 256)},
                                        "w1", "w3", "w2")
        share(gated)  # as quantize_ marks w1 and w3 (one input) before fuse_swiglu

        def swiglu_unfused():
            xs = x.clone()  # a new activation, as each block makes
            return gated.w2(torch.nn.functional.silu(gated.w1(xs)) * gated.w3(xs))

        paths["swiglu_mlp"] = lambda: gated(x.clone())
        paths["swiglu_mlp_unfused"] = swiglu_unfused
    per_layer = {"compiled_layer": 10, "compiled_gelu_mlp": 5}
    hits = PRODUCED.hits
    results = {name: round(per_call_us(fn, max(1, args.calls // per_layer.get(name, 1))) / per_layer.get(name, 1), 2)
               for name, fn in paths.items()}
    if PRODUCED.hits == hits:
        print("python_overhead: the produced_hit path did not take the producer's rows", file=sys.stderr)
        return 1
    import int8dit

    try:  # the commit of the int8dit package that ran (PYTHONPATH may point at another checkout)
        commit = subprocess.run(["git", "-C", os.path.dirname(int8dit.__file__), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    doc = {"benchmark": "bench/host/python_overhead.py", "command": " ".join(["python3"] + sys.argv),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit,
           "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                       "python": platform.python_version(), "torch": torch.__version__},
           "unit": "microseconds of host time per call, C++ entry points stubbed", "us_per_call": results}
    for name, us in results.items():
        print(f"{name:14s} {us:7.2f} us")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
