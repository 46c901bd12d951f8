#!/usr/bin/env python3
"""Replay the tuner's bucket policy on a complete M sweep: which configuration would it keep per
M bucket, and what cliffs and regret would those picks give?

The tuner (src/tune/tuner.cpp) times every candidate for an M bucket (lo, hi] and keeps one. Which
M it times at decides what it can see: a configuration that is fast at hi can be slow inside the
bucket (on the H200, 128x128 ping-pong with 2x1 clusters runs M = 2304 in 39.6 us and M = 2112 in
47 us). Given an `int8dit_bench_tune --all-configs` sweep (every configuration timed at every M),
this script replays two policies with the sweep's own timings standing in for the tuner's:

  top          time at hi only, keep the fastest (the tuner before d70020a)
  three-point  time at the bucket's lowest, middle and highest swept M (the tuner times lo + 1,
               the middle and hi), keep the lowest worst ratio to the fastest there (d70020a)

  python3 bench/tune/replay_tuner.py bench/results/h200/tune_all_configs.json

Per sweep it prints each policy's worst cliff t(smaller M) / t(larger M), the floor (the best
measured configuration at every M) and the geomean regret t(pick) / t(best). Standard library only.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("fit_heuristic", Path(__file__).with_name("fit_heuristic.py"))
fit = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fit_heuristic", fit)
_spec.loader.exec_module(fit)

POLICIES = ("top", "three-point")


def m_bucket(m: int) -> tuple[int, int]:
    """(lo, hi] of M's bucket, as src/tune/m_bucket.cpp computes it."""
    if m <= 8:
        hi = max(m, 1)
        return hi - 1, hi
    octave = 0
    while (2 << octave) < m:
        octave += 1
    width = 1 << (octave - 3)
    hi = (m + width - 1) // width * width
    return hi - width, hi


def policy_picks(sweep: "fit.SweepData", policy: str) -> dict[tuple[int, int], str]:
    """The configuration the policy keeps for each bucket the sweep touches."""
    by_m = dict(zip(sweep.ms, sweep.times))
    buckets: dict[tuple[int, int], list[int]] = {}
    for m in sorted(by_m):
        buckets.setdefault(m_bucket(m), []).append(m)
    picks = {}
    for bucket, ms in buckets.items():
        sample = [ms[-1]] if policy == "top" else sorted({ms[0], ms[len(ms) // 2], ms[-1]})
        configs = [c for c in by_m[sample[0]] if all(c in by_m[m] for m in sample)]

        def score(c: str) -> tuple[float, float]:
            worst = max(by_m[m][c] / min(by_m[m].values()) for m in sample)
            return worst, sum(by_m[m][c] for m in sample)

        picks[bucket] = min(configs, key=score)
    return picks


def replay(sweep: "fit.SweepData", policy: str) -> dict:
    picks = policy_picks(sweep, policy)
    us = [t[picks[m_bucket(m)]] for m, t in zip(sweep.ms, sweep.times)]
    best = [min(t.values()) for t in sweep.times]
    regret = math.exp(sum(math.log(a / b) for a, b in zip(us, best)) / len(us))
    return {"cliff": fit.max_cliff(sweep.ms, us), "floor": fit.max_cliff(sweep.ms, best), "regret": regret}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tune_json", help="tune.json of an `int8dit_bench_tune --all-configs` run")
    args = ap.parse_args(argv)
    try:
        sweeps = fit.load_sweeps(json.loads(Path(args.tune_json).read_text()))
    except (OSError, ValueError) as e:
        print(f"replay_tuner.py: {args.tune_json}: {e}", file=sys.stderr)
        return 2
    for s in sweeps:
        for policy in POLICIES:
            r = replay(s, policy)
            c, f = r["cliff"], r["floor"]
            print(f"N={s.n} K={s.k} {policy:12s} worst cliff {c[0]:.3f} (M = {c[1]} vs {c[2]}), "
                  f"floor {f[0]:.3f}, regret {r['regret']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
