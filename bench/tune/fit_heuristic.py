#!/usr/bin/env python3
"""Judge, and optionally refit, the Hopper heuristic's cost model against a complete M sweep.

The heuristic (src/gemm/sm90/heuristic.cu) picks a configuration from a small wave model whose
per-candidate constants (efficiency, epilogue cost in k-iterations) were fitted to a probe run. The
tuner's M sweep (int8dit_bench_tune) normally times only two configurations per M (the heuristic's
pick and the tuner's), which cannot tell what another pick would have cost. Run with
`--all-configs` it times every bf16 configuration at every M; this script then replays the model on
that data, where every pick has a measured time:

  python3 bench/tune/fit_heuristic.py tune.json            # judge heuristic.cu as it is
  python3 bench/tune/fit_heuristic.py tune.json --refit    # search better constants and buckets
  python3 bench/tune/fit_heuristic.py tune.json --presets gemm.json [more.json ...] --refit

The M sweeps are all at K = 3072. `--presets` adds the model shapes of gemm benchmark reports
(int8dit_bench_gemm's "config_trials": every configuration timed at every preset shape), so the long-K
shapes (K = 4608..15360) count too: each report's shapes are judged as one more set, and the refit's
objective weighs each set as much as one sweep.

It reports, per sweep: the worst cliff t(smaller M) / t(larger M) of the model's picks (the issue's
target is <= 1.15), the same for the best measured configuration at each M (the floor any heuristic
over these candidates can reach), and the geomean of t(pick) / t(best). The constants and buckets are
read from heuristic.cu itself; `estimated_time` below mirrors the C++ function of that name and must
change with it (tests/python/test_fit_heuristic.py checks the parse; the ctest
Sm90Heuristic.PythonMirrorPicksTheSame, tests/check_heuristic_mirror.py, that this mirror picks what
the built library picks on a grid of shapes and SM counts).

Only the standard library is needed. Refitting fits two (N, K) sweeps: check a refit on the preset
shapes (the tune benchmark's presets) on the GPU before committing it.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

HEURISTIC_CU = Path(__file__).resolve().parents[2] / "src" / "gemm" / "sm90" / "heuristic.cu"
CLIFF_TARGET = 1.15


@dataclass(frozen=True)
class Candidate:
    var: str  # the C++ constant's name (kBig, kMidPP, ...)
    name: str
    tile_m: int
    tile_n: int
    tile_k: int
    cluster_size: int
    stream_k: bool
    efficiency: float
    epilogue_ktiles: float
    min_k: int = 0  # considered only where K >= min_k


@dataclass
class Model:
    candidates: dict[str, Candidate]  # by C++ variable name
    buckets: list[tuple[int, list[str]]]  # (max_m, candidate variable names in preference order)
    stream_k_margin: float


_CANDIDATE = re.compile(
    r'constexpr\s+Candidate\s+(\w+)\s*\{\s*"([\w]+)"\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,'
    r"\s*(true|false)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*(\d+)\s*)?\}"
)
_BUCKET = re.compile(r"\{\s*(\d+|INT64_MAX)\s*,\s*\{([\w\s,]+)\}\s*\}")
_MARGIN = re.compile(r"kStreamKMargin\s*=\s*([\d.]+)")


def parse_heuristic(source: str) -> Model:
    """Reads the candidates, the M buckets and the stream-K margin out of heuristic.cu's text."""
    cands = {}
    for m in _CANDIDATE.finditer(source):
        var, name, tm, tn, tk, cl, sk, eff, epi, min_k = m.groups()
        cands[var] = Candidate(var, name, int(tm), int(tn), int(tk), int(cl), sk == "true", float(eff), float(epi),
                               int(min_k or 0))
    table = source[source.find("buckets()") :]
    buckets = []
    for m in _BUCKET.finditer(table):
        max_m = 2**63 - 1 if m.group(1) == "INT64_MAX" else int(m.group(1))
        names = [v.strip() for v in m.group(2).split(",") if v.strip()]
        if all(v in cands for v in names):
            buckets.append((max_m, names))
    margin = _MARGIN.search(source)
    if not cands or not buckets or not margin:
        raise ValueError(
            "could not read the candidates, buckets or kStreamKMargin from heuristic.cu: "
            "its table format changed; update the regular expressions in fit_heuristic.py"
        )
    return Model(cands, buckets, float(margin.group(1)))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def estimated_time(c: Candidate, m: int, n: int, k: int, sm_count: int) -> float:
    """Mirror of estimated_time() in heuristic.cu (units of one 128x256 k-iteration on one SM)."""
    ctas = max(c.cluster_size, sm_count // c.cluster_size * c.cluster_size)
    m_tiles = ceil_div(ceil_div(m, c.tile_m), c.cluster_size) * c.cluster_size
    tiles = m_tiles * ceil_div(n, c.tile_n)
    k_iters = ceil_div(k, c.tile_k)
    iter_cost = c.tile_m * c.tile_n / (128.0 * 256.0) / c.efficiency
    if c.stream_k:
        return (math.ceil(tiles * k_iters / ctas) + c.epilogue_ktiles) * iter_cost
    return ceil_div(tiles, ctas) * (k_iters + c.epilogue_ktiles) * iter_cost


def pick(model: Model, m: int, n: int, k: int, sm_count: int, available: set[str] | None = None) -> str:
    """The configuration name the heuristic chooses (mirror of sm90_heuristic's bf16 branch)."""
    for max_m, names in model.buckets:
        if m > max_m:
            continue
        best_dp = best_sk = None
        for var in names:
            c = model.candidates[var]
            if (available is not None and c.name not in available) or k < c.min_k:
                continue
            t = estimated_time(c, m, n, k, sm_count)
            if c.stream_k and (best_sk is None or t < best_sk[0]):
                best_sk = (t, c.name)
            if not c.stream_k and (best_dp is None or t < best_dp[0]):
                best_dp = (t, c.name)
        if best_sk and (best_dp is None or best_sk[0] < (1.0 - model.stream_k_margin) * best_dp[0]):
            return best_sk[1]
        if best_dp:
            return best_dp[1]
        break
    raise ValueError(f"no candidate for M = {m}")


def max_cliff(ms: list[int], us: list[float]) -> tuple[float, int, int]:
    """Worst t(smaller M) / t(larger M) over the sweep, as bench/tune/m_sweep.cpp computes it."""
    worst = (0.0, 0, 0)
    fastest, fastest_m = math.inf, 0
    for m, t in sorted(zip(ms, us), reverse=True):
        if fastest_m and t / fastest > worst[0]:
            worst = (t / fastest, m, fastest_m)
        if t < fastest:
            fastest, fastest_m = t, m
    return worst


@dataclass
class SweepData:
    n: int
    k: int
    ms: list[int]
    times: list[dict[str, float]]  # per M: configuration name -> measured us


def load_sweeps(report: dict) -> list[SweepData]:
    sweeps = []
    for s in report.get("m_sweeps", []):
        points = [p for p in s["points"] if p.get("configs")]
        if points:
            sweeps.append(SweepData(s["n"], s["k"], [p["m"] for p in points], [p["configs"] for p in points]))
    if not sweeps:
        raise ValueError(
            "no sweep point carries per-configuration times ('configs'): run "
            "`int8dit_bench_tune --all-configs --out DIR` on the GPU and pass DIR/tune.json"
        )
    return sweeps


@dataclass
class Judgement:
    n: int
    k: int
    cliff: tuple[float, int, int]  # the model's picks
    best_cliff: tuple[float, int, int]  # the best measured configuration at every M
    regret: float  # geomean t(pick) / t(best)
    worst: list[tuple[float, int, str, str]]  # (t(pick)/t(best), M, pick, best), worst first


@dataclass
class PresetData:
    source: str  # the report's file name
    shapes: list[tuple[int, int, int]]
    times: list[dict[str, float]]  # per shape: configuration name -> measured us


def load_presets(report: dict, source: str) -> PresetData:
    """The bf16 configuration trials of a gemm benchmark report, one entry per distinct (M, N, K)."""
    shapes, times, seen = [], [], set()
    for row in report.get("rows", []):
        key = (row["m"], row["n"], row["k"])
        trials = {t["config"]: t["ms"] * 1e3 for t in row.get("config_trials", [])
                  if t.get("status") == "ok" and t["config"].startswith("sm90_bf16_")}
        if trials and key not in seen:
            seen.add(key)
            shapes.append(key)
            times.append(trials)
    if not shapes:
        raise ValueError(f"{source}: no row carries config_trials (a report of int8dit_bench_gemm on Hopper)")
    return PresetData(source, shapes, times)


@dataclass
class PresetJudgement:
    source: str
    regret: float  # geomean t(pick) / t(best)
    worst: list[tuple[float, tuple[int, int, int], str, str]]


def judge_presets(model: Model, presets: list[PresetData], sm_count: int) -> list[PresetJudgement]:
    out = []
    for p in presets:
        log_regret, rows = 0.0, []
        for (m, n, k), times in zip(p.shapes, p.times):
            name = pick(model, m, n, k, sm_count, set(times))
            best_name = min(times, key=times.get)
            log_regret += math.log(times[name] / times[best_name])
            rows.append((times[name] / times[best_name], (m, n, k), name, best_name))
        rows.sort(reverse=True)
        out.append(PresetJudgement(p.source, math.exp(log_regret / len(p.shapes)), rows[:5]))
    return out


def judge(model: Model, sweeps: list[SweepData], sm_count: int) -> list[Judgement]:
    out = []
    for s in sweeps:
        picked, best, log_regret, rows = [], [], 0.0, []
        for m, times in zip(s.ms, s.times):
            name = pick(model, m, s.n, s.k, sm_count, set(times))
            best_name = min(times, key=times.get)
            picked.append(times[name])
            best.append(times[best_name])
            log_regret += math.log(times[name] / times[best_name])
            rows.append((times[name] / times[best_name], m, name, best_name))
        rows.sort(reverse=True)
        out.append(
            Judgement(s.n, s.k, max_cliff(s.ms, picked), max_cliff(s.ms, best), math.exp(log_regret / len(s.ms)), rows[:5])
        )
    return out


def objective(judgements: list[Judgement], preset_judgements: list[PresetJudgement] = ()) -> float:
    """Lower is better: geomean regret over the sweeps and preset sets, plus a steep price on any
    sweep cliff above the target."""
    regrets = [j.regret for j in judgements] + [p.regret for p in preset_judgements]
    regret = math.exp(sum(math.log(r) for r in regrets) / len(regrets))
    cliff = max(j.cliff[0] for j in judgements)
    return regret + 4.0 * max(0.0, cliff - CLIFF_TARGET)


# Coarse steps first matter: a pick changes only past a threshold, so small steps alone sit on plateaus.
_EFFICIENCY_STEPS = (0.33, 0.5, 0.67, 0.8, 0.9, 0.95, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0)
_EPILOGUE_STEPS = (-8, -4, -2, -1, 1, 2, 4, 8, 16)


def _trials(model: Model):
    """Every one-step change: a candidate's efficiency or epilogue cost, or a candidate joining a bucket
    it is not in (last in preference: the model's estimate decides, ties keep the earlier ones), also
    with its efficiency scaled at once (a candidate the model undervalues gains nothing from either
    change alone)."""
    for var, c in model.candidates.items():
        for f in _EFFICIENCY_STEPS:
            yield replace(model, candidates={**model.candidates, var: replace(c, efficiency=round(c.efficiency * f, 3))})
        for d in _EPILOGUE_STEPS:
            e = round(max(0.0, c.epilogue_ktiles + d), 2)
            yield replace(model, candidates={**model.candidates, var: replace(c, epilogue_ktiles=e)})
    for i, (max_m, names) in enumerate(model.buckets):
        for var in model.candidates:
            if var not in names:
                buckets = list(model.buckets)
                buckets[i] = (max_m, names + [var])
                joined = replace(model, buckets=buckets)
                yield joined
                c = model.candidates[var]
                for f in _EFFICIENCY_STEPS:
                    yield replace(joined, candidates={**model.candidates,
                                                      var: replace(c, efficiency=round(c.efficiency * f, 3))})


def refit(model: Model, sweeps: list[SweepData], sm_count: int, rounds: int = 6,
          presets: list[PresetData] = ()) -> Model:
    """Greedy coordinate search over the constants and the bucket membership; keeps every improvement."""
    def score_of(m: Model) -> float:
        return objective(judge(m, sweeps, sm_count), judge_presets(m, presets, sm_count))

    best = model
    best_score = score_of(best)
    for _ in range(rounds):
        improved = False
        for trial in list(_trials(best)):
            score = score_of(trial)
            if score < best_score - 1e-9:
                best, best_score, improved = trial, score, True
        if not improved:
            break
    return best


def describe(title: str, judgements: list[Judgement]) -> str:
    lines = [f"## {title}", ""]
    for j in judgements:
        c, b = j.cliff, j.best_cliff
        flag = "" if c[0] <= CLIFF_TARGET else f"  (target <= {CLIFF_TARGET})"
        lines.append(
            f"N = {j.n}, K = {j.k}: cliff {c[0]:.3f} (M = {c[1]} vs {c[2]}){flag}; best-per-M cliff {b[0]:.3f} "
            f"(M = {b[1]} vs {b[2]}); geomean t(pick) / t(best) {j.regret:.3f}"
        )
        for ratio, m, name, best_name in j.worst:
            if ratio > 1.0:
                lines.append(f"    M = {m}: {name} is {ratio:.3f}x the best ({best_name})")
    return "\n".join(lines)


def describe_presets(presets: list[PresetJudgement]) -> str:
    lines = []
    for p in presets:
        lines.append(f"presets of {p.source}: geomean t(pick) / t(best) {p.regret:.3f}")
        for ratio, (m, n, k), name, best_name in p.worst:
            if ratio > 1.0:
                lines.append(f"    {m}x{n}x{k}: {name} is {ratio:.3f}x the best ({best_name})")
    return "\n".join(lines)


def constants_diff(old: Model, new: Model) -> str:
    lines = []
    for var, c in new.candidates.items():
        o = old.candidates[var]
        if (o.efficiency, o.epilogue_ktiles) != (c.efficiency, c.epilogue_ktiles):
            lines.append(
                f"  {var:11s} {c.name}: efficiency {o.efficiency:.3f} -> {c.efficiency:.3f}, "
                f"epilogue_ktiles {o.epilogue_ktiles:.2f} -> {c.epilogue_ktiles:.2f}"
            )
    for (max_m, names), (_, old_names) in zip(new.buckets, old.buckets):
        added = [v for v in names if v not in old_names]
        if added:
            edge = "every larger M" if max_m == 2**63 - 1 else f"M <= {max_m}"
            lines.append(f"  bucket {edge}: add {', '.join(added)}")
    return "\n".join(lines) if lines else "  (no change improves the objective)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring for the method.")
    ap.add_argument("tune_json", help="tune.json written by `int8dit_bench_tune --all-configs`")
    ap.add_argument("--heuristic", default=str(HEURISTIC_CU), help="heuristic.cu to read (default: this tree's)")
    ap.add_argument("--sm-count", type=int, help="SM count of the GPU (default: the report's gpu.sm_count)")
    ap.add_argument("--refit", action="store_true",
                    help="search better efficiency / epilogue constants and bucket membership")
    ap.add_argument("--presets", nargs="+", default=[], metavar="GEMM_JSON",
                    help="gemm.json reports of int8dit_bench_gemm whose config_trials are judged (and fitted) too")
    args = ap.parse_args(argv)
    try:
        report = json.loads(Path(args.tune_json).read_text())
        model = parse_heuristic(Path(args.heuristic).read_text())
        sweeps = load_sweeps(report)
        presets = [load_presets(json.loads(Path(f).read_text()), Path(f).name) for f in args.presets]
    except (OSError, ValueError, KeyError) as e:
        print(f"fit_heuristic: {e}", file=sys.stderr)
        return 2
    sm_count = args.sm_count or report.get("gpu", {}).get("sm_count")
    if not sm_count:
        print("fit_heuristic: the report has no gpu.sm_count; pass --sm-count", file=sys.stderr)
        return 2
    print(f"# Heuristic model vs {args.tune_json} ({report.get('gpu', {}).get('name', '?')}, {sm_count} SMs)\n")
    print(describe(f"heuristic.cu as it is ({args.heuristic})", judge(model, sweeps, sm_count)))
    if presets:
        print(describe_presets(judge_presets(model, presets, sm_count)))
    if args.refit:
        fitted = refit(model, sweeps, sm_count, presets=presets)
        print()
        print(describe("refitted constants", judge(fitted, sweeps, sm_count)))
        if presets:
            print(describe_presets(judge_presets(fitted, presets, sm_count)))
        print("\nChanges to paste into heuristic.cu (then measure the presets on the GPU):")
        print(constants_diff(model, fitted))
    return 0


if __name__ == "__main__":
    sys.exit(main())
