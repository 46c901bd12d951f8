"""8-bit attention, measured before any of it is built: cuDNN's per-tensor FP8 flash attention (through the cuDNN
frontend's Python graph API) against PyTorch's bf16 scaled_dot_product_attention at the attention shapes of the
DiTs int8dit runs, in one process on one GPU. For each shape: the time of the bf16 kernels (flash and cuDNN
backends) and of the FP8 kernel, and how far each output is from attention computed in fp32 (cosine and
relative L2 error over the first query rows of every head). Attention is 33-71% of an int8dit forward
(bench/results/h100/e2e_*profile*); this says what an 8-bit kernel would take off it, and at what error.
A second table separates the error of rounding the operands from the kernel's: PyTorch's bf16 kernel on
q, k, v rounded through e4m3 (per tensor) or int8 (a scale per token, K smoothed by its mean over the
tokens, which leaves every softmax row as it is) and widened back.

    python3 -m int8dit.bench.attention_fp8 --out DIR [--shapes flux,wan_1_3b]
        (writes DIR/attention_fp8.json and DIR/attention_fp8.md;
         python3 bench/plot_attention_fp8.py DIR/attention_fp8.json draws the PNG)

The FP8 path quantizes q, k and v per tensor to e4m3 (amax / 448), the softmax's P with scale 448, and its
output O with V's scale (O is a convex combination of V's rows, so it fits V's range); O comes back as e4m3
where cuDNN allows no other type (Hopper) and is widened to bf16 for the comparison. Only the attention
kernel is timed: in a model the quantization of q/k/v would be fused into the rotation kernel that writes
them, and O's scale into the next projection's quantization.

Inputs are random: q and k drawn with per-channel scales (a log-normal spread, as norms and rotary leave real
q/k: some channels several times the others), v standard normal. Needs a CUDA GPU and the optional package
nvidia-cudnn-frontend (measured with 1.16.0; on the lent GPU machine, carry its cp312 wheel in .whl/).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys

# key: (label, batch, heads, tokens, head_dim)
SHAPES = {
    "flux": ("Flux-dev 1024x1024 (4096 image + 512 text tokens)", 1, 24, 4608, 128),
    "sd3": ("SD3-medium 1024x1024 (4096 + 333 text tokens), guidance batch 2", 2, 24, 4429, 64),
    "ltx": ("LTX-Video 2B 768x512x121, guidance batch 2", 2, 32, 6144, 64),
    "cogvideox": ("CogVideoX-5B 720x480x49 (17550 video + 226 text tokens)", 1, 48, 17776, 64),
    "wan_1_3b": ("Wan 2.1 1.3B 480p 81 frames", 1, 12, 32760, 128),
}
E4M3_MAX = 448.0
REFERENCE_ROWS = 512  # query rows of every head compared against fp32 attention


def parse_shapes(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SHAPES]
    if unknown or not keys:
        raise SystemExit(f"attention_fp8: unknown shape(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(SHAPES)}")
    return keys


def _time_ms(torch, fn, batches: int = 10, calls: int = 5) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(batches):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return statistics.median(times)


def _errors(torch, got, want) -> dict:
    g, w = got.float().flatten(), want.float().flatten()
    return dict(cosine=torch.nn.functional.cosine_similarity(g, w, dim=0).item(),
                relative_l2=((g - w).norm() / w.norm()).item(), max_abs=(g - w).abs().max().item())


def _roundtrip_e4m3_per_tensor(torch, x):
    scale = x.abs().amax().float().clamp_min(1e-12) / E4M3_MAX
    return ((x.float() / scale).to(torch.float8_e4m3fn).float() * scale).bfloat16()


def _roundtrip_int8_per_token(torch, x):
    """x rounded to int8 with a scale per token (a row of head_dim values), as the library quantizes rows."""
    scale = x.float().abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 127.0
    return ((x.float() / scale).round().clamp(-127, 127) * scale).bfloat16()


class Fp8Attention:
    """One cuDNN FP8 SDPA graph for one shape: q, k, v e4m3 [B, H, S, D] contiguous, per-tensor descales."""

    def __init__(self, torch, cudnn, b, h, s, d):
        self.torch, self.cudnn = torch, cudnn
        self.handle = cudnn.create_handle()
        cudnn.set_stream(handle=self.handle, stream=torch.cuda.current_stream().cuda_stream)
        e4m3, fp32 = cudnn.data_type.FP8_E4M3, cudnn.data_type.FLOAT
        shape, stride = (b, h, s, d), (h * s * d, s * d, d, 1)
        self.output_type = None
        errors = []
        for out_type in (cudnn.data_type.BFLOAT16, e4m3):  # bf16 O where cuDNN builds it, else e4m3 (Hopper)
            try:
                self._build(cudnn, e4m3, fp32, shape, stride, out_type, 1.0 / math.sqrt(d))
                self.output_type = "bf16" if out_type == cudnn.data_type.BFLOAT16 else "e4m3"
                break
            except Exception as e:  # noqa: BLE001 (cuDNN reports an unsupported graph as an exception)
                errors.append(f"{out_type}: {e}")
        if self.output_type is None:
            raise RuntimeError("cuDNN built no FP8 attention graph for this shape: " + " | ".join(errors))
        self.workspace = torch.empty(self.graph.get_workspace_size(), device="cuda", dtype=torch.uint8)
        dev = dict(device="cuda", dtype=torch.float32)
        self.scalars = {n: torch.ones(1, 1, 1, 1, **dev) for n in ("dq", "dk", "dv", "ds", "ss", "so")}
        self.amax = {n: torch.zeros(1, 1, 1, 1, **dev) for n in ("s", "o")}
        out_dtype = torch.bfloat16 if self.output_type == "bf16" else torch.float8_e4m3fn
        self.out = torch.empty(shape, device="cuda", dtype=out_dtype)

    def _build(self, cudnn, e4m3, fp32, shape, stride, out_type, attn_scale):
        g = cudnn.pygraph(io_data_type=e4m3, intermediate_data_type=fp32, compute_data_type=fp32, handle=self.handle)
        self.tq, self.tk, self.tv = [g.tensor(name=n, dim=shape, stride=stride, data_type=e4m3) for n in "qkv"]
        scalar = dict(dim=(1, 1, 1, 1), stride=(1, 1, 1, 1), data_type=fp32)
        self.tscalars = {n: g.tensor(name=n, **scalar) for n in ("dq", "dk", "dv", "ds", "ss", "so")}
        t = self.tscalars
        o, _, amax_s, amax_o = g.sdpa_fp8(q=self.tq, k=self.tk, v=self.tv, descale_q=t["dq"], descale_k=t["dk"],
                                          descale_v=t["dv"], descale_s=t["ds"], scale_s=t["ss"], scale_o=t["so"],
                                          is_inference=True, attn_scale=attn_scale, use_causal_mask=False)
        o.set_output(True).set_dim(shape).set_stride(stride).set_data_type(out_type)
        for a in (amax_s, amax_o):
            a.set_output(True).set_dim((1, 1, 1, 1)).set_stride((1, 1, 1, 1)).set_data_type(fp32)
        g.validate()
        g.build_operation_graph()
        g.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        g.check_support()
        g.build_plans()
        self.graph, self.tamax_s, self.tamax_o, self.to = g, amax_s, amax_o, o

    def quantize(self, q, k, v):
        """e4m3 copies of q, k, v and their per-tensor scales (not timed: a model would fuse this)."""
        torch = self.torch
        out = []
        for x, dname in ((q, "dq"), (k, "dk"), (v, "dv")):
            scale = x.abs().amax().float().clamp_min(1e-12) / E4M3_MAX
            self.scalars[dname].fill_(scale.item())
            out.append((x.float() / scale).to(torch.float8_e4m3fn))
        self.scalars["ds"].fill_(1.0 / E4M3_MAX)  # P in [0, 1] carried as P * 448
        self.scalars["ss"].fill_(E4M3_MAX)
        self.scalars["so"].fill_(1.0 / self.scalars["dv"].item())  # O in V's range, on V's scale
        return out

    def run(self, q8, k8, v8):
        t = self.tscalars
        pack = {self.tq: q8, self.tk: k8, self.tv: v8, self.to: self.out, self.tamax_s: self.amax["s"],
                self.tamax_o: self.amax["o"]}
        pack.update({t[n]: self.scalars[n] for n in t})
        self.graph.execute(pack, self.workspace, handle=self.handle)
        return self.out

    def output_bf16(self):
        if self.output_type == "bf16":
            return self.out
        return (self.out.float() / self.scalars["so"]).bfloat16()


def _measure(torch, cudnn, key: str) -> dict:
    """One shape: the bf16 backends and the FP8 graph, timed, and their errors against fp32 attention."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    sdpa = torch.nn.functional.scaled_dot_product_attention
    label, b, h, s, d = SHAPES[key]
    chan = lambda: torch.exp(0.5 * torch.randn(d, device="cuda"))  # noqa: E731
    q = (torch.randn(b, h, s, d, device="cuda") * chan()).bfloat16()
    k = (torch.randn(b, h, s, d, device="cuda") * chan()).bfloat16()
    v = torch.randn(b, h, s, d, device="cuda").bfloat16()
    r = min(REFERENCE_ROWS, s)
    logits = torch.matmul(q[:, :, :r].float(), k.float().transpose(-1, -2)) / math.sqrt(d)
    want = torch.matmul(torch.softmax(logits, dim=-1), v.float())
    del logits
    row = dict(key=key, shape=label, batch=b, heads=h, tokens=s, head_dim=d)
    flops = 4.0 * b * h * s * s * d
    for backend_name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        try:
            with sdpa_kernel(backend):
                got = sdpa(q, k, v)
                ms = _time_ms(torch, lambda: sdpa(q, k, v))
            row[f"bf16_{backend_name}_ms"] = ms
            row[f"bf16_{backend_name}_tflops"] = flops / (ms * 1e-3) / 1e12
            row[f"bf16_{backend_name}_error"] = _errors(torch, got[:, :, :r], want)
        except RuntimeError as e:
            row[f"bf16_{backend_name}_ms"] = None
            row[f"bf16_{backend_name}_note"] = str(e).splitlines()[0]
    try:
        fp8 = Fp8Attention(torch, cudnn, b, h, s, d)
        q8, k8, v8 = fp8.quantize(q, k, v)
        fp8.run(q8, k8, v8)
        got = fp8.output_bf16()
        ms = _time_ms(torch, lambda: fp8.run(q8, k8, v8))
        row.update(fp8_ms=ms, fp8_tflops=flops / (ms * 1e-3) / 1e12, fp8_output_type=fp8.output_type,
                   fp8_error=_errors(torch, got[:, :, :r], want))
    except Exception as e:  # noqa: BLE001 (cuDNN's errors are of its own types; the row says what failed)
        row.update(fp8_ms=None, fp8_note=f"{type(e).__name__}: {str(e)[:400]}")
    # Input quantization alone: the bf16 kernel on inputs rounded through 8 bits and widened back, so the
    # error is the rounding's, not a kernel's. Which operands an 8-bit kernel can carry, and at what scale.
    e4m3 = lambda x: _roundtrip_e4m3_per_tensor(torch, x)  # noqa: E731
    int8 = lambda x: _roundtrip_int8_per_token(torch, x)  # noqa: E731
    k_smoothed = k - k.float().mean(dim=2, keepdim=True).bfloat16()  # softmax(q (k - m)^T) = softmax(q k^T) row by row
    variants = {
        "q, k, v e4m3 per tensor": (e4m3(q), e4m3(k), e4m3(v)),
        "q, k e4m3 per tensor": (e4m3(q), e4m3(k), v),
        "v e4m3 per tensor": (q, k, e4m3(v)),
        "q, k int8 per token": (int8(q), int8(k), v),
        "q, k int8 per token, k smoothed": (int8(q), int8(k_smoothed), v),
        "q, k int8 per token, k smoothed; v e4m3": (int8(q), int8(k_smoothed), e4m3(v)),
    }
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION if row.get("bf16_cudnn_ms") else SDPBackend.FLASH_ATTENTION):
        row["input_rounding_error"] = {name: _errors(torch, sdpa(*ops)[:, :, :r], want) for name, ops in variants.items()}
    times = [x for x in (row.get("bf16_flash_ms"), row.get("bf16_cudnn_ms")) if x is not None]
    row["best_bf16_ms"] = min(times) if times else None
    row["fp8_speedup"] = row["best_bf16_ms"] / row["fp8_ms"] if row.get("fp8_ms") and times else None
    print(f"{label}: bf16 flash {row.get('bf16_flash_ms')} ms, cudnn {row.get('bf16_cudnn_ms')} ms, "
          f"fp8 {row.get('fp8_ms')} ms ({row.get('fp8_output_type')} O), speedup {row['fp8_speedup']}, "
          f"fp8 cosine {row.get('fp8_error', {}).get('cosine')}", flush=True)
    return row


def run(out_dir: str, keys: list[str]) -> dict:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("attention_fp8: no CUDA GPU is visible; this benchmark times GPU kernels")
    try:
        import cudnn
    except ImportError as e:
        raise SystemExit(f"attention_fp8: the cuDNN frontend is not installed ({e}); "
                         "pip install nvidia-cudnn-frontend==1.16.0") from e

    torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 reference is fp32
    torch.manual_seed(0)
    rows = []
    for key in keys:
        rows.append(_measure(torch, cudnn, key))
        torch.cuda.empty_cache()
    doc = dict(benchmark="attention_fp8", command=" ".join(["python3 -m int8dit.bench.attention_fp8"] + sys.argv[1:]),
               gpu=torch.cuda.get_device_name(), torch=torch.__version__, cudnn_frontend=cudnn.__version__,
               cudnn_backend=cudnn.backend_version(),
               date_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               method=("CUDA events around batches of 5 calls, median of 10 batches after 3 warm-up calls; the FP8 "
                       "time is the cuDNN graph's execution alone (q/k/v already e4m3); errors over the first "
                       f"{REFERENCE_ROWS} query rows of every head against fp32 attention (TF32 off)"),
               rows=rows)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "attention_fp8.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(out_dir, "attention_fp8.md"), "w") as f:
        f.write(markdown(doc))
    return doc


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def markdown(doc: dict) -> str:
    lines = ["# FP8 attention (cuDNN, per-tensor e4m3) against bf16 SDPA", "",
             f"- command: `{doc['command']}`",
             f"- GPU: {doc['gpu']}; torch {doc['torch']}; cuDNN {doc['cudnn_backend']} (frontend "
             f"{doc['cudnn_frontend']}); {doc['date_utc']}", f"- method: {doc['method']}", "",
             "| shape | B x H x S x D | bf16 flash ms | bf16 cuDNN ms | FP8 ms (O type) | FP8 TFLOPS | FP8 / best bf16 "
             "| cosine bf16 | cosine FP8 | rel. L2 bf16 | rel. L2 FP8 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in doc["rows"]:
        best = "cudnn" if (r.get("bf16_cudnn_ms") or 1e30) < (r.get("bf16_flash_ms") or 1e30) else "flash"
        eb, e8 = r.get(f"bf16_{best}_error", {}), r.get("fp8_error", {})
        speed = "-" if r.get("fp8_speedup") is None else f"{r['fp8_speedup']:.2f}x"
        fp8 = "-" if r.get("fp8_ms") is None else f"{r['fp8_ms']:.3f} ({r['fp8_output_type']})"
        lines.append(
            f"| {r['shape']} | {r['batch']} x {r['heads']} x {r['tokens']} x {r['head_dim']} | "
            f"{_fmt(r.get('bf16_flash_ms'), '.3f')} | {_fmt(r.get('bf16_cudnn_ms'), '.3f')} | {fp8} | "
            f"{_fmt(r.get('fp8_tflops'), '.0f')} | {speed} | {_fmt(eb.get('cosine'), '.6f')} | "
            f"{_fmt(e8.get('cosine'), '.6f')} | {_fmt(eb.get('relative_l2'), '.2e')} | {_fmt(e8.get('relative_l2'), '.2e')} |")
        for note in ("bf16_flash_note", "bf16_cudnn_note", "fp8_note"):
            if r.get(note):
                lines.append(f"|  | {note}: {r[note]} | | | | | | | | | |")
    names = list(doc["rows"][0].get("input_rounding_error", {})) if doc["rows"] else []
    if names:
        lines += ["", "Input rounding alone (the bf16 kernel on operands rounded through 8 bits and widened back), "
                  "relative L2 error against fp32 attention:", "",
                  "| shape | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
        for r in doc["rows"]:
            errs = r.get("input_rounding_error", {})
            lines.append(f"| {r['shape']} | " + " | ".join(_fmt(errs.get(n, {}).get("relative_l2"), ".2e") for n in names) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m int8dit.bench.attention_fp8", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/attention_fp8", help="where the JSON and markdown go")
    ap.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, from: {', '.join(SHAPES)}")
    args = ap.parse_args(argv)
    run(args.out, parse_shapes(args.shapes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
