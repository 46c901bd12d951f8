#!/usr/bin/env python3
"""Plot the M sweep of int8dit_bench_tune: GEMM time against M, tuned and heuristic, one panel per
(N, K), with the worst cliff marked. Usage: python3 bench/plot_tune.py bench/results/h100/tune.json
(writes tune_m_sweep.png beside the JSON; needs matplotlib)."""
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path: str) -> None:
    report = json.loads(pathlib.Path(path).read_text())
    sweeps = report["m_sweeps"]
    fig, axes = plt.subplots(1, len(sweeps), figsize=(7 * len(sweeps), 4.8), squeeze=False)
    for ax, sweep in zip(axes[0], sweeps):
        ms = [p["m"] for p in sweep["points"]]
        for mode, style in (("heuristic", "o-"), ("tuned", "s-")):
            times = [p[mode]["us"] for p in sweep["points"]]
            cliff = sweep[f"max_cliff_{mode}"]
            ax.plot(ms, times, style, markersize=2.5, linewidth=1,
                    label=f"{mode} (worst cliff {cliff['ratio']:.3f} at M={cliff['m_small']} vs {cliff['m_large']})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("M (tokens)")
        ax.set_ylabel("time per GEMM (us)")
        ax.set_title(f"N = {sweep['n']}, K = {sweep['k']}, bf16 out + bias")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"int8dit {report['library_version']} on {report['gpu']['name']}: time vs M")
    fig.tight_layout()
    out = pathlib.Path(path).with_name("tune_m_sweep.png")
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
