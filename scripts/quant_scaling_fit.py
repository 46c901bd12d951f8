#!/usr/bin/env python3
"""Split a row kernel's time into a fixed part and a rate a row, from a sweep of the layout probe over M.

    python3 scripts/quant_scaling_fit.py SWEEP.txt [--only REGEX] [--target 0.8] [--at-rows 4096] [--json OUT]

SWEEP.txt: `int8dit_quant_layout_probe M K ...` runs at several M and one K, each after a line
`=== M=<m> K=<k>` (`STEPS="build scaling" scripts/device/gpu_run.sh` writes it; bench/results/h100/quant_rows_scaling_7f4324e.txt
is one). For every kernel line timed at two or more M, a least-squares line time = intercept + M * rate,
and what it means for the issue-4 target: the streaming rate against the 1 GiB copy, and the intercept the
kernel would need, at its rate, to reach the target fraction of that copy at --at-rows rows.

Why: at 4096 x 3072 a call moves 37.8 MB, and a kernel's fixed cost a call (its first loads, its last
rows, the launch) is a large share of its ~16 us; whether a kernel is short of the target by its
intercept or by its rate says which kind of change can close it (docs/quantization.md).
Runs anywhere; no GPU.
"""
import argparse
import json
import re
import sys

SECTION = re.compile(r"^=== M=(\d+) K=(\d+)")
COPY = re.compile(r"copy bandwidth \(1 GiB\) (\d+(?:\.\d+)?) GB/s")
# label, us, GB/s, of copy, regs, check
ROW = re.compile(r"^(.*?)\s+(\d+\.\d+)\s+(\d+)\s+(\d+\.\d+)\s+(\d+)\s+(\S+)$")


def parse(text):
    """{label: [(m, us, bytes)]}, the K, and the 1 GiB copy's GB/s of every section."""
    kernels, ks, copies = {}, set(), []
    m = None
    for line in text.splitlines():
        s = SECTION.match(line)
        if s:
            m = int(s.group(1))
            ks.add(int(s.group(2)))
            continue
        c = COPY.search(line)
        if c:
            copies.append(float(c.group(1)))
            continue
        r = ROW.match(line.rstrip())
        if m is None or not r or r.group(1) == "kernel":
            continue
        us, gbps = float(r.group(2)), float(r.group(3))
        kernels.setdefault(r.group(1).strip(), []).append((m, us, gbps * us * 1e3))  # bytes = GB/s x us x 1e3
    if not copies:
        raise ValueError("no 'copy bandwidth (1 GiB) ... GB/s' line: not the layout probe's output")
    if len(ks) != 1:
        raise ValueError(f"the sweep must hold one K, found {sorted(ks) or 'none'} (a '=== M=<m> K=<k>' line a run)")
    return kernels, ks.pop(), sum(copies) / len(copies)


def fit(points):
    """Least squares us = a + b * m over [(m, us, bytes)]; returns (a us, b us a row, bytes a row)."""
    n = len(points)
    ms = [p[0] for p in points]
    ts = [p[1] for p in points]
    mean_m, mean_t = sum(ms) / n, sum(ts) / n
    sxx = sum((x - mean_m) ** 2 for x in ms)
    if sxx == 0:
        raise ValueError("a line needs two different M")
    b = sum((x - mean_m) * (t - mean_t) for x, t in zip(ms, ts)) / sxx
    bytes_a_row = sum(p[2] / p[0] for p in points) / n
    return mean_t - b * mean_m, b, bytes_a_row


def summarize(text, only=None, target=0.8, at_rows=4096):
    kernels, k, copy_gbps = parse(text)
    rows = []
    for label, points in kernels.items():
        if only and not re.search(only, label):
            continue
        if len({p[0] for p in points}) < 2:
            continue
        a, b, bytes_a_row = fit(points)
        rate_gbps = bytes_a_row / (b * 1e3)  # bytes / (us * 1e3) = GB/s
        bytes_at = bytes_a_row * at_rows
        rows.append({
            "kernel": label,
            "rows_timed": sorted({p[0] for p in points}),
            "intercept_us": round(a, 3),
            "ns_a_row": round(b * 1e3, 4),
            "streaming_gbps": round(rate_gbps, 1),
            "streaming_of_copy": round(rate_gbps / copy_gbps, 4),
            f"of_copy_at_{at_rows}_rows": round(bytes_at / ((a + b * at_rows) * 1e3) / copy_gbps, 4),
            # the largest intercept that still reaches the target at this rate (negative: the rate alone misses it)
            f"intercept_for_{target}_at_{at_rows}_rows_us": round(bytes_at / (target * copy_gbps * 1e3) - b * at_rows, 3),
        })
    if not rows:
        raise ValueError("no kernel line was timed at two or more M" + (f" matching '{only}'" if only else ""))
    return {"k": k, "copy_gbps": round(copy_gbps, 1), "target": target, "at_rows": at_rows, "kernels": rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Example: python3 scripts/quant_scaling_fit.py "
                                        "bench/results/h100/quant_rows_scaling_7f4324e.txt --only '^(memcpy|library)'")
    ap.add_argument("sweep", help="the layout probe's output at several M, one '=== M=<m> K=<k>' line a run")
    ap.add_argument("--only", help="a regular expression: fit only the kernel lines it matches")
    ap.add_argument("--target", type=float, default=0.8, help="fraction of the 1 GiB copy to reach (default 0.8)")
    ap.add_argument("--at-rows", type=int, default=4096, help="M at which the target is asked (default 4096)")
    ap.add_argument("--json", help="also write the table as JSON here")
    args = ap.parse_args(argv)
    try:
        with open(args.sweep) as f:
            out = summarize(f.read(), args.only, args.target, args.at_rows)
    except (OSError, ValueError) as e:
        print(f"quant_scaling_fit: {args.sweep}: {e}", file=sys.stderr)
        return 2
    n = args.at_rows
    print(f"K = {out['k']}, 1 GiB copy {out['copy_gbps']:.0f} GB/s (mean over the runs); "
          f"target {args.target} of it at M = {n}")
    print(f"{'kernel':<58} {'intercept us':>12} {'ns a row':>9} {'GB/s':>7} {'rate/copy':>9} "
          f"{'at M':>6} {'intercept for target':>21}")
    for r in out["kernels"]:
        print(f"{r['kernel'][:58]:<58} {r['intercept_us']:>12.2f} {r['ns_a_row']:>9.3f} {r['streaming_gbps']:>7.0f} "
              f"{r['streaming_of_copy']:>9.3f} {r[f'of_copy_at_{n}_rows']:>6.3f} "
              f"{r[f'intercept_for_{args.target}_at_{n}_rows_us']:>21.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
