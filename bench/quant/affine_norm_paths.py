#!/usr/bin/env python3
"""A LayerNorm with weight and bias in front of an int8dit linear, the two ways int8dit can run it.

    python3 bench/quant/affine_norm_paths.py [--shape 27280x3072 ...] [--out DIR]

Wan's blocks normalize the stream before their cross-attention with diffusers' FP32LayerNorm (weight and
bias): an fp32 copy of the stream, the norm in fp32 and the cast back, after which the q projection (an
int8dit Linear) quantizes the result with quantize_rows. Since the Wan block takes the norm through
``block_steps.affine_layer_norm`` (the modulation kernel with the weight and bias as its rows), one
kernel writes the bf16 rows and their int8 quantization. This times both paths on the current GPU in one
process (CUDA events around batches of calls, median of batches, inputs rotating past L2), at Wan
2.2 TI2V-5B's 720p stream (27280 tokens x 3072) and Wan 2.1 14B's 480p (32760 x 5120) unless --shape
says otherwise, and writes affine_norm_paths.json / .md.
"""
import argparse
import datetime
import json
import pathlib
import statistics
import subprocess


def median_us(fn, sets, batches=15, per_batch=10, warmup=5):
    import torch
    for i in range(warmup):
        fn(i % sets)
    times = []
    for b in range(batches):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(per_batch):
            fn((b * per_batch + i) % sets)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / per_batch)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", action="append", help="TOKENSxK (repeatable); default 27280x3072 and 32760x5120")
    ap.add_argument("--out", default=".", help="directory for affine_norm_paths.json and .md")
    args = ap.parse_args()
    import torch
    from diffusers.models.normalization import FP32LayerNorm

    from int8dit.torch.block_steps import affine_layer_norm
    from int8dit.torch.ops import quantize_rows

    if not torch.cuda.is_available():
        raise SystemExit("affine_norm_paths: no CUDA GPU visible; this benchmark times GPU kernels")
    shapes = [tuple(int(v) for v in s.split("x")) for s in (args.shape or ["27280x3072", "32760x5120"])]
    rows = []
    for tokens, k in shapes:
        norm = FP32LayerNorm(k, 1e-6, elementwise_affine=True).cuda()  # kept in fp32, as from_pretrained keeps Wan's
        with torch.no_grad():
            norm.weight.copy_(1 + 0.1 * torch.randn(k))
            norm.bias.copy_(0.1 * torch.randn(k))
        nbytes = tokens * k * 2
        sets = max(2, int(256e6 // nbytes) + 1)
        xs = [torch.randn(1, tokens, k, device="cuda", dtype=torch.bfloat16) for _ in range(sets)]

        def pytorch_then_quantize(i):
            y = norm(xs[i].float()).type_as(xs[i])  # the block's expression before, then the q projection's input
            return y, quantize_rows(y)

        def fused(i):
            return affine_layer_norm(norm, xs[i])  # (its record in PRODUCED goes with y)

        with torch.no_grad():
            y0, (q0, s0) = pytorch_then_quantize(0)
            y1 = fused(0)
            cos = torch.nn.functional.cosine_similarity(y0.float().flatten(), y1.float().flatten(), dim=0).item()
            before, after = median_us(pytorch_then_quantize, sets), median_us(fused, sets)
        rows.append(dict(tokens=tokens, k=k, pytorch_norm_then_quantize_rows_us=round(before, 2),
                         fused_us=round(after, 2), speedup=round(before / after, 2), cosine=round(cos, 6)))
        print(rows[-1], flush=True)
    gpu = torch.cuda.get_device_name()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        smi = "nvidia-smi not available"
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = dict(benchmark="affine_norm_paths", gpu=gpu, nvidia_smi=smi, date=date, torch=torch.__version__,
               command="python3 bench/quant/affine_norm_paths.py " + " ".join(f"--shape {t}x{k}" for t, k in shapes),
               timing="CUDA events around batches of 10 calls, median of 15 batches after 5 warm-up calls; "
                      "inputs rotate over >= 256 MB", rows=rows)
    (out / "affine_norm_paths.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = ["# A LayerNorm with weight and bias before an int8dit linear (Wan's cross-attention norm)", "",
             f"- GPU: {gpu} ({smi}); torch {torch.__version__}; {date}",
             f"- Command: `{doc['command']}`", f"- Timing: {doc['timing']}",
             "- before: diffusers' FP32LayerNorm as the block ran it (fp32 copy, norm, cast back) and the q "
             "projection's quantize_rows; after: `block_steps.affine_layer_norm`, one kernel writing the bf16 "
             "rows and their int8 quantization (weight and bias read as bf16)", "",
             "| tokens | K | before us | after us | speedup | cosine (bf16 rows) |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['tokens']} | {r['k']} | {r['pytorch_norm_then_quantize_rows_us']} | {r['fused_us']} | "
                     f"{r['speedup']}x | {r['cosine']} |")
    (out / "affine_norm_paths.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
