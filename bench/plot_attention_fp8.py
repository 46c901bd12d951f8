#!/usr/bin/env python3
"""Plot int8dit.bench.attention_fp8's results: per shape, the attention kernels' times (bf16 flash, bf16
cuDNN, cuDNN FP8) and their outputs' relative L2 error against fp32 attention, beside the error of
rounding the operands alone (the bf16 kernel on operands rounded through e4m3 or int8), log scale.

    python3 bench/plot_attention_fp8.py bench/results/h100/attention_fp8_2eeb506.json [-o out.png]

Writes the PNG beside the JSON (same name, .png) unless -o says otherwise (needs matplotlib)."""
import argparse
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ERROR_SERIES = [  # (label, how to read it from a row)
    ("bf16 kernel", lambda r: _best_bf16_error(r)),
    ("cuDNN FP8 kernel", lambda r: r.get("fp8_error", {}).get("relative_l2")),
    ("q, k, v e4m3 (rounding alone)", lambda r: r.get("input_rounding_error", {}).get("q, k, v e4m3 per tensor", {}).get("relative_l2")),
    ("q, k int8 a token (rounding alone)", lambda r: r.get("input_rounding_error", {}).get("q, k int8 per token", {}).get("relative_l2")),
    ("q, k int8 a token, v e4m3 (rounding alone)",
     lambda r: r.get("input_rounding_error", {}).get("q, k int8 per token, k smoothed; v e4m3", {}).get("relative_l2")),
]


def _best_bf16_error(r):
    best = "cudnn" if (r.get("bf16_cudnn_ms") or 1e30) < (r.get("bf16_flash_ms") or 1e30) else "flash"
    return r.get(f"bf16_{best}_error", {}).get("relative_l2")


def plot(doc: dict, path: pathlib.Path) -> None:
    rows = doc["rows"]
    labels = [r["shape"].split(" (")[0].replace(", guidance batch 2", "") for r in rows]
    fig, (ax_t, ax_e) = plt.subplots(1, 2, figsize=(15, 5.5))
    width = 0.27
    for i, (name, key) in enumerate((("bf16 flash", "bf16_flash_ms"), ("bf16 cuDNN", "bf16_cudnn_ms"),
                                     ("cuDNN FP8", "fp8_ms"))):
        best = [min(x for x in (r.get("bf16_flash_ms"), r.get("bf16_cudnn_ms")) if x) for r in rows]
        rel = [r[key] / b if r.get(key) else 0.0 for r, b in zip(rows, best)]
        ax_t.bar([j + (i - 1) * width for j in range(len(rows))], rel, width, label=name)
    ax_t.axhline(1.0, color="black", linewidth=0.8)
    ax_t.set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=8)
    ax_t.set_ylabel("time / the faster bf16 kernel's")
    ax_t.set_title("attention kernel time (lower is faster)")
    ax_t.legend(fontsize=8)
    width = 0.8 / len(ERROR_SERIES)
    for i, (name, read) in enumerate(ERROR_SERIES):
        values = [read(r) or 0.0 for r in rows]
        ax_e.bar([j + (i - (len(ERROR_SERIES) - 1) / 2) * width for j in range(len(rows))], values, width, label=name)
    ax_e.set_yscale("log")
    ax_e.set_ylim(top=2.0)  # room for the legend above the bars
    ax_e.set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=8)
    ax_e.set_ylabel("relative L2 error against fp32 attention")
    ax_e.set_title("output error")
    ax_e.legend(fontsize=7, ncol=2, loc="upper left")
    fig.suptitle(f"8-bit attention on {doc['gpu']} (cuDNN {doc['cudnn_backend']}, {doc['date_utc']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", help="attention_fp8.json from python3 -m int8dit.bench.attention_fp8")
    ap.add_argument("-o", "--output", help="PNG path (default: the JSON's path with .png)")
    args = ap.parse_args()
    source = pathlib.Path(args.json)
    out = pathlib.Path(args.output) if args.output else source.with_suffix(".png")
    plot(json.loads(source.read_text()), out)
    print(out)


if __name__ == "__main__":
    main()
