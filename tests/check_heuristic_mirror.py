#!/usr/bin/env python3
"""Checks that bench/tune/fit_heuristic.py's Python mirror of the Hopper heuristic picks what the
library picks: runs PRINTER (tests/cpp/print_sm90_heuristic.cpp, the C++ heuristic over a grid of
shapes and SM counts) and replays every line through fit_heuristic.pick(). The mirror is what the
heuristic's constants are fitted and judged with (src/gemm/sm90/heuristic.cu), so a difference means
one of the two changed without the other.

    python3 tests/check_heuristic_mirror.py BUILD/tests/print_sm90_heuristic

Exit 0: every pick agrees; 1: some differ (listed); 77: the printer found no sm_90 kernels (skipped).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "tune"))
import fit_heuristic  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    run = subprocess.run([argv[1]], capture_output=True, text=True)
    if run.returncode == 77:
        print(run.stdout.strip())
        return 77
    if run.returncode != 0:
        print(f"{argv[1]} failed (exit {run.returncode}):\n{run.stdout}{run.stderr}")
        return 1
    model = fit_heuristic.parse_heuristic(fit_heuristic.HEURISTIC_CU.read_text())
    lines = run.stdout.split("\n")
    checked, differ = 0, []
    for line in filter(None, lines):
        sms, m, n, k, library = line.split()
        mirror = fit_heuristic.pick(model, int(m), int(n), int(k), int(sms))
        checked += 1
        if mirror != library:
            differ.append(f"  {sms} SMs, M = {m}, N = {n}, K = {k}: library {library}, mirror {mirror}")
    if differ:
        print(f"the Python mirror differs from the library's heuristic on {len(differ)} of {checked} shapes:")
        print("\n".join(differ[:40]))
        print("update estimated_time()/pick() in bench/tune/fit_heuristic.py to match src/gemm/sm90/heuristic.cu")
        return 1
    print(f"the Python mirror picks what the library picks on all {checked} shapes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
