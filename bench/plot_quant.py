#!/usr/bin/env python3
"""Plot int8dit_bench_quant's results: every kernel's bandwidth as a fraction of the 1 GiB device copy
and of a copy of the same bytes, with the 0.8 target, one group of bars per shape.

    python3 bench/plot_quant.py bench/results/h200/quant.json [-o quant.png]

Writes quant.png beside the JSON unless -o says otherwise (needs matplotlib)."""
import argparse
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", help="quant.json from int8dit_bench_quant (eager_torch.py may have added its columns)")
    ap.add_argument("-o", "--output", help="PNG path (default: quant.png beside the JSON)")
    args = ap.parse_args()
    report = json.loads(pathlib.Path(args.json).read_text())
    rows = report["rows"]

    def shape_of(r):  # M x K, with the adaLN batch elements where there are several
        b = r.get("batches", 1)
        return f"{r['m']}x{r['k']}" + (f", {b} batch elements" if b > 1 else "")

    shapes = list(dict.fromkeys(shape_of(r) for r in rows))
    ops = list(dict.fromkeys(r["op"] for r in rows))
    fig, axes = plt.subplots(1, len(shapes), figsize=(4.2 * len(shapes), 5.2), sharey=True, squeeze=False)
    for ax, shape in zip(axes[0], shapes):
        of_copy, of_same = [], []
        for op in ops:
            r = next((r for r in rows if r["op"] == op and shape_of(r) == shape), None)
            of_copy.append(r["bandwidth_fraction"] if r else 0.0)
            of_same.append(r["fraction_of_same_size_copy"] if r else 0.0)
        y = range(len(ops))
        ax.barh([i + 0.2 for i in y], of_copy, height=0.4, label="of the 1 GiB copy")
        ax.barh([i - 0.2 for i in y], of_same, height=0.4, label="of a same-size copy")
        ax.axvline(report["summary"].get("target_fraction", 0.8), color="red", linestyle="--", linewidth=1,
                   label="target")
        ax.set_title(f"M x K = {shape}")
        ax.set_xlim(0, 1.15)
        ax.set_xlabel("bandwidth fraction ((read + write) / time)")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0][0].set_yticks(list(range(len(ops))))
    axes[0][0].set_yticklabels(ops, fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=3)
    s = report["summary"]
    lowest = s["min_bandwidth_fraction"]
    fig.suptitle(f"int8dit activation quantization on {report['gpu']['name']} ({report['date']}): lowest "
                 + (f"{lowest:.3f} of the copy ({s['min_bandwidth_case']})" if lowest is not None else "n/a"),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    out = pathlib.Path(args.output) if args.output else pathlib.Path(args.json).with_name("quant.png")
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
