"""Wan's and LTX-Video's q/k preparation, timed two ways in one process on one GPU: PyTorch's RMSNorm over
heads x head_dim and then int8dit's rotation kernel (``qk_norm_rope(normalize=False)``, what the fused
processors ran before the norm across heads), against the one kernel that does both
(``qk_norm_rope(norm_heads=heads)``). It says, shape by shape, whether the fused path pays.

    python3 -m int8dit.bench.qk_norm_across_heads --out DIR   (writes DIR/qk_norm_across_heads.json and .md)

CUDA events around batches of calls, median of the batches, inputs rotated past L2. Needs a GPU.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys

# (name, batch, tokens, heads, head_dim, tables a value a channel (LTX's) rather than a row every head shares)
SHAPES = [
    ("LTX-Video 2B, 768x512x121 (guidance batch 2)", 2, 6144, 32, 64, True),
    ("Wan 2.1 1.3B, 480p 81 frames", 1, 32760, 12, 128, False),
    ("Wan 2.2 TI2V 5B, 720p 121 frames", 1, 27280, 24, 128, False),
    ("Wan 2.1 14B, 480p 81 frames", 1, 32760, 40, 128, False),
]


def _time_ms(torch, fn, sets, batches: int = 15, calls: int = 10) -> float:
    for i in range(3):
        fn(*sets[i % len(sets)])
    times = []
    for _ in range(batches):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(calls):
            fn(*sets[i % len(sets)])
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return statistics.median(times)


def run(out_dir: str) -> dict:
    import torch

    from int8dit.torch.attention import qk_norm_rope

    if not torch.cuda.is_available():
        raise SystemExit("qk_norm_across_heads: no CUDA GPU is visible; this benchmark times GPU kernels")
    torch.manual_seed(0)
    rows = []
    for name, b, t, h, d, wide in SHAPES:
        c = h * d
        norm = torch.nn.RMSNorm(c, eps=1e-6, device="cuda", dtype=torch.bfloat16)
        width = c if wide else d
        count = max(2, int(3 * 50e6 // (b * t * c * 2)) + 1)  # inputs past the 50 MB L2, three times over
        sets = [((torch.randn(b, t, c, device="cuda") * 3).bfloat16(),
                 (torch.randn(b if wide else 1, t, width, device="cuda"), torch.randn(b if wide else 1, t, width, device="cuda")))
                for _ in range(count)]

        def stock(x, tables):  # PyTorch's norm, then the rotation alone (one call a sample: LTX's tables may differ)
            n = norm(x).unflatten(2, (h, d))
            for i in range(b):
                qk_norm_rope(n[i:i + 1], None, 0.0, (tables[0][i if wide else 0], tables[1][i if wide else 0]),
                             normalize=False)

        def fused(x, tables):
            rows_ = x.unflatten(2, (h, d))
            for i in range(b):
                qk_norm_rope(rows_[i:i + 1], norm.weight, 1e-6, (tables[0][i if wide else 0], tables[1][i if wide else 0]),
                             norm_heads=h)

        # (the two agree within the norm's rounding: checked once)
        x, tables = sets[0]
        want = qk_norm_rope(norm(x).unflatten(2, (h, d))[:1], None, 0.0, (tables[0][0], tables[1][0]), normalize=False)
        got = qk_norm_rope(x.unflatten(2, (h, d))[:1], norm.weight, 1e-6, (tables[0][0], tables[1][0]), norm_heads=h)
        max_diff = (got.float() - want.float()).abs().max().item()
        stock_ms, fused_ms = _time_ms(torch, stock, sets), _time_ms(torch, fused, sets)
        moved = b * t * c * 2 * 2 + (b if wide else 1) * t * width * 4 * 2  # x read and written, the tables read
        rows.append(dict(shape=name, batch=b, tokens=t, heads=h, head_dim=d, tables_a_value_a_channel=wide,
                         stock_us=stock_ms * 1e3, fused_us=fused_ms * 1e3, speedup=stock_ms / fused_ms,
                         fused_gbps=moved / (fused_ms * 1e-3) / 1e9, max_abs_diff=max_diff))
        print(f"{name}: PyTorch norm + rotation {stock_ms * 1e3:.1f} us, fused {fused_ms * 1e3:.1f} us "
              f"({stock_ms / fused_ms:.2f}x), max |diff| {max_diff:.3g}", flush=True)
    doc = dict(benchmark="qk_norm_across_heads", command=" ".join(sys.argv), gpu=torch.cuda.get_device_name(),
               date_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               torch=torch.__version__, method="CUDA events around batches of 10 calls, median of 15 batches after 3 "
               "warm-up calls; inputs rotated past L2; one call a sample (LTX's tables may differ by sample)",
               rows=rows)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "qk_norm_across_heads.json"), "w") as f:
        json.dump(doc, f, indent=1)
    lines = ["# q/k norm across heads + rotation: one kernel against PyTorch's norm and the rotation kernel", "",
             f"- command: `{doc['command']}`", f"- GPU: {doc['gpu']}; torch {doc['torch']}; {doc['date_utc']}",
             f"- method: {doc['method']}", "",
             "| shape | B x tokens x heads x head_dim | PyTorch norm + rotation, us | fused, us | speedup | fused GB/s | max abs diff |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['batch']} x {r['tokens']} x {r['heads']} x {r['head_dim']} | {r['stock_us']:.1f} | "
                     f"{r['fused_us']:.1f} | {r['speedup']:.2f}x | {r['fused_gbps']:.0f} | {r['max_abs_diff']:.3g} |")
    with open(os.path.join(out_dir, "qk_norm_across_heads.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m int8dit.bench.qk_norm_across_heads", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/qk_norm_across_heads", help="where the JSON and markdown go")
    args = ap.parse_args(argv)
    run(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
