#!/usr/bin/env python3
"""Where a kernel's warps spend their time, from Nsight Compute's per-instruction stall samples.

`STEPS="build ncu_quant" scripts/device/gpu_run.sh` profiles one quantization kernel with PC
sampling (ncu's SourceCounters section) and writes its report's source page as CSV:
`ncu --import report.ncu-rep --page source --print-source sass --csv > sass_stalls.csv`. Each row of
that file is one SASS instruction with the warp samples taken at it, split by the warp's state
(`stall_selected`: issuing; `stall_not_selected`: ready, another warp issued; the rest are stalls:
`short_sb` a shuffle, shared-memory or MUFU result, `wait` a fixed-latency dependency, `long_sb` a
global or local load, `barrier`, ...). This prints the kernel's share of samples by state and the
instructions that took the most, so that a profile reads as a table rather than 2,500 CSV rows.

    python3 scripts/ncu_stall_report.py sass_stalls.csv [--top 25]

Only the standard library is needed; it runs where the CSV was copied back to (no GPU, no ncu).
"""
import argparse
import csv
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"
EXECUTED = "Instructions Executed"


def read_source_page(lines):
    """(kernel name, header, rows) from the CSV lines: ncu writes the kernel's name on a line of its
    own before the header of each kernel's table; only the first kernel's table is read."""
    rows = list(csv.reader(lines))
    kernel = ""
    for i, row in enumerate(rows):
        if row and row[0] == "Kernel Name":
            kernel = row[1] if len(row) > 1 else ""
            continue
        if "Address" in row and "Source" in row and SAMPLES in row:
            header = row
            table = []
            for r in rows[i + 1 :]:
                if not r or r[0] == "Kernel Name":
                    break
                if len(r) == len(header):
                    table.append(r)
            return kernel, header, table
    raise ValueError(
        "no source-page table with warp stall samples: write the CSV with `ncu --import REPORT "
        "--page source --print-source sass --csv` from a report that has the SourceCounters section"
    )


def as_count(text):
    try:
        return int(float(text))
    except ValueError:
        return 0  # '-' or empty: no samples


def summarize(header, table):
    """({state: samples} over all instructions, total samples, per-instruction rows)."""
    col = {name: i for i, name in enumerate(header)}
    states = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    totals = {s: 0 for s in states}
    per_instruction = []
    for r in table:
        for s in states:
            totals[s] += as_count(r[col[s]])
        counts = {s[len("stall_"):]: as_count(r[col[s]]) for s in states}
        executed = as_count(r[col[EXECUTED]]) if EXECUTED in col else 0
        per_instruction.append((as_count(r[col[SAMPLES]]), r[col["Address"]], r[col["Source"]].strip(), executed, counts))
    total = sum(t[0] for t in per_instruction)
    return totals, total, per_instruction


def report(kernel, header, table, top=25):
    totals, total, per_instruction = summarize(header, table)
    out = [f"# {kernel}" if kernel else "# (kernel name not in the file)",
           f"# {len(table)} SASS instructions, {total} warp samples", "",
           f"{'state':25} {'samples':>8} {'share':>6}"]
    for state, n in sorted(totals.items(), key=lambda kv: -kv[1]):
        if n:
            out.append(f"{state:25} {n:8} {n / max(total, 1):6.3f}")
    out += ["", f"# the {top} instructions with most samples: address, SASS, samples, times executed, main states"]
    for samples, address, source, executed, counts in sorted(per_instruction, key=lambda t: -t[0])[:top]:
        if not samples:
            break
        main = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:3] if v)
        out.append(f"{address[-5:]:>5}  {source[:44]:44} {samples:5} {executed:7}  {main}")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring.")
    ap.add_argument("csv", help="the source page of an ncu report as CSV (sass_stalls.csv)")
    ap.add_argument("--top", type=int, default=25, help="how many instructions to list (default 25)")
    args = ap.parse_args(argv)
    try:
        with open(args.csv, newline="") as f:
            kernel, header, table = read_source_page(f.read().splitlines())
    except (OSError, ValueError) as e:
        print(f"ncu_stall_report: {e}", file=sys.stderr)
        return 2
    print(report(kernel, header, table, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
