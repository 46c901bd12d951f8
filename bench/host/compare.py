#!/usr/bin/env python3
"""Before/after table of bench/host/python_overhead.py runs: rounds of the two commits, alternated.

    python3 bench/host/compare.py --before b1.json b2.json b3.json --after a1.json a2.json a3.json \\
        --out bench/results/host-dev/python_overhead [--command "how the rounds were run"]

writes OUT.json (every round, the medians) and OUT.md (a table per path: median over the rounds).
"""
from __future__ import annotations

import argparse
import json
import statistics

DESCRIPTIONS = {
    "linear": "Linear: quantizes its own input, then the GEMM",
    "linear_3d": "the same on a [1, 4, 64] input",
    "produced_hit": "Linear on a fused producer's int8 rows (GEMM only)",
    "gelu_mlp": "GeluMLP: fc1, gelu_quantize, fc2's GEMM",
    "siblings": "q, k and v on one fresh input, quantized once",
    "modulated_norm": "a block's inline modulated LayerNorm (y + int8 rows)",
    "concat_gelu": "Flux single block: concat_gelu_quantize + proj_out's GEMM",
    "mlp_half": "a DiT block's second half: residual update + MLP norm, GeluMLP, residual update",
    "compiled_layer": "a layer of a Linear stack under torch.compile (the registered op)",
    "compiled_gelu_mlp": "a GeluMLP of a stack under torch.compile (gelu_quantize + fc2's GEMM ops)",
    "compiled_siblings": "q, k and v on one input under torch.compile (with the sibling pass where there is one)",
    "torch_empty": "one torch.empty (the unit)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", nargs="+", required=True, help="python_overhead.py --json files of the old commit")
    ap.add_argument("--after", nargs="+", required=True, help="... of the new commit, as many, run alternately")
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--command", default="", help="the shell loop that ran the rounds, for the record")
    args = ap.parse_args()
    before = [json.load(open(f)) for f in args.before]
    after = [json.load(open(f)) for f in args.after]
    paths = [p for p in before[0]["us_per_call"] if all(p in r["us_per_call"] for r in before + after)]
    median = {p: {"before": statistics.median(r["us_per_call"][p] for r in before),
                  "after": statistics.median(r["us_per_call"][p] for r in after)} for p in paths}
    doc = {"benchmark": "bench/host/python_overhead.py", "command": args.command, "machine": after[0]["machine"],
           "date": after[-1]["date"], "before_commit": before[0]["commit"], "after_commit": after[0]["commit"],
           "unit": after[0]["unit"], "rounds": {"before": [r["us_per_call"] for r in before],
                                                "after": [r["us_per_call"] for r in after]}, "median": median}
    with open(args.out + ".json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    m = doc["machine"]
    lines = ["# Host time of the PyTorch layer around the C++ entry points", ""]
    if args.command:
        lines.append(f"- Command: `{args.command}`")
    lines += [
        f"- Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, torch {m['torch']}",
        f"- Date: {doc['date']}; before = {doc['before_commit']}, after = {doc['after_commit']}",
        f"- Method: bench/host/python_overhead.py ({doc['unit']}): the Python and allocator time an eager call "
        "adds to its kernels' launches, on CPU tensors. Rounds alternate the two commits; the table gives the "
        f"median over {len(before)} rounds.",
        "", "| path | before us | after us | ratio |", "| --- | ---: | ---: | ---: |"]
    for p in paths:
        b, a = median[p]["before"], median[p]["after"]
        lines.append(f"| {DESCRIPTIONS.get(p, p)} | {b:.2f} | {a:.2f} | {b / a:.2f}x |")
    lines += ["", "Rounds (us, before / after):", ""]
    for p in paths:
        lines.append(f"- {p}: " + ", ".join(f"{b['us_per_call'][p]:.2f} / {a['us_per_call'][p]:.2f}"
                                            for b, a in zip(before, after)))
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
