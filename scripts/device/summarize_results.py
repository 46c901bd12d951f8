#!/usr/bin/env python3
"""The figures a device run came back with, in one screen: what gpu_run.sh packed into results.tgz.

    python3 scripts/device/summarize_results.py /work/.device/N/results.tgz   # or an extracted folder

Prints, for whatever the run holds: the GPU; each step's time (steps.txt); ctest's and pytest's
verdicts and any failed test's name; the GEMM benchmark's summary against issue 3's targets (and the
SM clock its paths ran at, where it was sampled); the quantization benchmark's lowest fractions
against issue 4's; each e2e model's speedups. A run's files are read as written, so an older run's
report (without a figure this script knows) prints what it has. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from pathlib import Path


class RunFiles:
    """The files of one run, from a results.tgz or a folder, by their path inside it ("results/gemm.json")."""

    def __init__(self, source: Path):
        self.files: dict[str, bytes] = {}
        if source.is_dir():
            for p in source.rglob("*"):
                if p.is_file():
                    self.files[str(p.relative_to(source))] = p.read_bytes()
        else:
            with tarfile.open(source) as tar:
                for m in tar.getmembers():
                    if m.isfile():
                        self.files[m.name.removeprefix("./")] = tar.extractfile(m).read()

    def text(self, name: str) -> str | None:
        data = self.files.get(name)
        return data.decode("utf-8", "replace") if data is not None else None

    def json(self, name: str):
        t = self.text(name)
        return json.loads(t) if t is not None else None


def ctest_lines(log: str) -> list[str]:
    out = [line.strip() for line in log.splitlines() if re.search(r"tests passed|tests failed out of", line)]
    out += ["  FAILED " + m.group(1) for m in re.finditer(r"^\s*\d+ - (\S+) \(Failed\)", log, re.M)]
    return out or ["(no ctest verdict in the log: cut off?)"]


def pytest_lines(log: str) -> list[str]:
    verdict = [line.strip() for line in log.splitlines() if re.match(r"^=*\s*\d+ (passed|failed)", line.strip())
               or re.search(r"\d+ (passed|failed)(, \d+ \w+)* in [\d.]+s", line)]
    failed = [line.strip() for line in log.splitlines() if line.startswith("FAILED ")]
    return (verdict[-1:] or ["(no pytest verdict in the log: cut off?)"]) + ["  " + f for f in failed]


def gemm_lines(report: dict) -> list[str]:
    s = report.get("summary", {})
    targets = s.get("targets", {})
    out = []
    for key, label in (("geomean_vs_bf16_large", "vs bf16, M >= 4096"), ("geomean_vs_fp8_large", "vs FP8 rowwise, M >= 4096"),
                       ("geomean_vs_bf16_small", "vs bf16, M <= 1024"), ("tops_flux_single_lin1", "Flux linear1 TOPS"),
                       ("host_us_per_call", "host us per call")):
        if s.get(key) is None:
            continue
        t = targets.get(key, {})
        verdict = f"  target {t['bound']}: {'met' if t.get('met') else 'MISSED'}" if t else ""
        no_pdl = s.get("stream_order", {}).get(key)
        out.append(f"  {label:28s} {s[key]:9.3f}" + (f"  (no PDL {no_pdl:.3f})" if no_pdl is not None else "") + verdict)
    if s.get("all_checks_passed") is False:
        out.append("  !!! some output checks FAILED (see gemm.md)")
    clocks = [(r["m"], r["n"], r["k"], r["paths"]["ours_heuristic"]) for r in report.get("rows", [])
              if r.get("paths", {}).get("ours_heuristic", {}).get("sm_mhz")]
    if clocks:
        out.append("  SM clock of ours (MHz / TOPS per GHz): " + ", ".join(
            f"{m}x{n}x{k} {p['sm_mhz']:.0f}/{p['tops_per_ghz']:.0f}" for m, n, k, p in clocks[:6])
                   + (" ..." if len(clocks) > 6 else ""))
    return out


def quant_lines(report: dict) -> list[str]:
    s = report.get("summary", {})
    out = [f"  copy bandwidth {report.get('copy_bandwidth_gbps', 0):.0f} GB/s"]
    if "min_bandwidth_fraction" in s:
        out.append(f"  lowest of the copy {s['min_bandwidth_fraction']:.3f} ({s.get('min_bandwidth_case')}), "
                   f"target {s.get('target_fraction')}: {'met' if s['min_bandwidth_fraction'] >= s.get('target_fraction', 1) else 'MISSED'}")
    if "min_fraction_of_same_size_copy" in s:
        out.append(f"  lowest of a same-size copy {s['min_fraction_of_same_size_copy']:.3f} ({s.get('min_same_size_copy_case')})")
    # the kernels timed beside the quantization (gated_add, qk_norm_rope, join_heads): their own rate
    for row in report.get("rows", []):
        if row.get("counts_for_target") is False and row.get("op") in ("gated_add", "qk_norm_rope", "join_heads"):
            eager = f", {row['speedup_vs_eager']:.1f}x eager torch" if "speedup_vs_eager" in row else ""
            out.append(f"  {row['op']} {row['m']}x{row['k']}: {row['time_us']:.1f} us, "
                       f"{row.get('fraction_of_same_size_copy', 0):.3f} of a same-size copy{eager}")
    return out


def e2e_lines(report: dict) -> list[str]:
    out = []
    for model, r in report.get("results", {}).items():
        paths = r.get("paths", {})
        cells = []
        for path, e in paths.items():
            if "error" in e:
                cells.append(f"{path} FAILED")
            elif "median_ms" in e:
                cells.append(f"{path} {e['median_ms']:.2f} ms")
        twins = [(p, "bf16" + p[len("int8dit"):]) for p in paths if p.startswith("int8dit")]
        # the fused attention prep's own gain: bf16 with it against bf16 without
        twins += [(p, p.replace("_prep", "")) for p in paths if p.startswith("bf16_prep")]
        ratios = [f"{p}/{t} {paths[t]['median_ms'] / paths[p]['median_ms']:.2f}x" for p, t in twins
                  if paths.get(t, {}).get("median_ms") and paths[p].get("median_ms")]
        out.append(f"  {model}: " + ", ".join(cells) + (f"; speedups {', '.join(ratios)}" if ratios else ""))
    return out


def summarize(run: RunFiles) -> str:
    out = []
    gpu = run.text("gpu.txt")  # nvidia-smi's CSV: a header line, then the GPU's
    if gpu:
        lines = [line for line in gpu.strip().splitlines() if line and not line.startswith("name,")]
        if lines:
            out += ["GPU: " + lines[0]]
    steps = run.text("steps.txt")
    if steps:
        out += ["steps: " + "; ".join(line.strip() for line in steps.splitlines() if line.strip())]
    if run.text("test.log") is not None:
        out += ["ctest:"] + ["  " + line for line in ctest_lines(run.text("test.log"))]
    if run.text("pytest.log") is not None:
        out += ["pytest:"] + ["  " + line for line in pytest_lines(run.text("pytest.log"))]
    for name in sorted(n for n in run.files if n.endswith("gemm.json")):
        out += [f"GEMM ({name}):"] + gemm_lines(run.json(name))
    for name in sorted(n for n in run.files if n.endswith("quant.json")):
        out += [f"quantization ({name}):"] + quant_lines(run.json(name))
    for name in sorted(n for n in run.files if n.endswith("e2e.json")):
        out += [f"end to end ({name}):"] + e2e_lines(run.json(name))
    return "\n".join(out) if out else "(nothing this script knows in the run)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="results.tgz of a device run, or the folder it was extracted into")
    args = ap.parse_args(argv)
    if not args.source.exists():
        print(f"summarize_results: {args.source} does not exist", file=sys.stderr)
        return 2
    try:
        run = RunFiles(args.source)
    except (tarfile.TarError, OSError) as e:
        print(f"summarize_results: cannot read {args.source}: {e}", file=sys.stderr)
        return 2
    print(summarize(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
