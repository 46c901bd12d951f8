#!/usr/bin/env python3
"""Bar chart of TOPS per shape and path from int8dit_bench_gemm's gemm.json, with the INT8 dense peak.

    python3 bench/plot_gemm.py bench/results/h100/gemm.json [-o gemm.png]

Writes gemm.png next to the JSON unless -o says otherwise. A path with no figure on a shape (not
implemented, failed check, unsupported) leaves its bar out and is marked "x" on the axis.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display on a GPU server
import matplotlib.pyplot as plt  # noqa: E402

# (key in row["paths"], legend label, colour)
PATHS = [
    ("ours_heuristic", "int8dit (dispatch)", "#1b7837"),
    ("ours_heuristic_stream_order", "int8dit (dispatch, no programmatic launch)", "#5aae61"),
    ("ours_best", "int8dit (best config)", "#7fbf7b"),
    ("ours_linear", "int8dit linear layer (quantize_rows + GEMM)", "#c2a5cf"),
    ("cublaslt_fp8", "cuBLASLt FP8 e4m3", "#2166ac"),
    ("cublaslt_fp8_per_tensor", "cuBLASLt FP8 e4m3 (per-tensor scales)", "#92c5de"),
    ("cublaslt_int8_gemm", "cuBLASLt int8 GEMM alone", "#bababa"),
    ("cublaslt_int8_dequant", "cuBLASLt int8 + dequantize", "#878787"),
    ("cublas_bf16_bias", "cuBLAS bf16 + bias", "#b2182b"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", help="gemm.json written by int8dit_bench_gemm --out")
    ap.add_argument("-o", "--output", help="PNG path (default: gemm.png beside the JSON)")
    args = ap.parse_args()

    with open(args.json) as f:
        data = json.load(f)
    rows = [r for r in data["rows"] if "error" not in r]
    if not rows:
        sys.exit(f"plot_gemm.py: {args.json} holds no measured rows")
    out = args.output or os.path.join(os.path.dirname(os.path.abspath(args.json)), "gemm.png")

    # Paths an older gemm.json does not hold get no bar slot and no legend entry.
    paths = [p for p in PATHS if any(p[0] in r["paths"] for r in rows)]
    width = 0.8 / len(paths)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.3 * len(rows) + 3), 5.5))
    for i, (key, label, colour) in enumerate(paths):
        xs, ys = [], []
        for j, row in enumerate(rows):
            p = row["paths"].get(key, {})
            if p.get("status") == "ok":
                xs.append(j + (i - (len(paths) - 1) / 2) * width)
                ys.append(p["tops"])
        if key == "cublaslt_fp8":
            scalings = {r["paths"]["cublaslt_fp8"].get("scaling") for r in rows}
            label += " (" + ", ".join(sorted(s for s in scalings if s)).replace("_", "-") + " scales)"
        ax.bar(xs, ys, width, label=label, color=colour)

    peak = data["gpu"].get("int8_dense_peak_tops")
    if peak:
        ax.axhline(peak, color="black", linestyle="--", linewidth=1)
        ax.text(len(rows) - 0.5, peak, f"INT8/FP8 dense peak {peak:.0f} TOPS", ha="right", va="bottom", fontsize=8)

    labels = []
    for row in rows:
        missing = row["paths"]["ours_heuristic"].get("status") != "ok"
        labels.append(f"{row['m']}x{row['n']}x{row['k']}\n{row['preset']}" + ("\n(int8dit: x)" if missing else ""))
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("TOPS (2MNK / median time)")
    calls = data.get("method", {}).get("calls_per_sample", 1)
    timing = f", {calls} launches back to back a sample" if calls > 1 else ""
    ax.set_title(f"W8A8 GEMM, bf16 out with bias, on {data['gpu']['name']} ({data['date_utc']}{timing})", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_ylim(0, max(peak or 0, max((p.get("tops", 0) for r in rows for p in r["paths"].values()), default=0)) * 1.1)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
