#!/usr/bin/env bash
# On the lent GPU machine: time two builds of libint8dit.so against each other in one call, runs of the
# same int8dit_bench_quant binary taking turns, so that a kernel change is measured against what it
# replaces on the same GPU, clocks and minute (a change of a few percent is below the spread between
# device calls).
#
#   bash scripts/device/quant_ab.sh BENCH DIR_A DIR_B OUT [ROUNDS] [CASES]
#
# BENCH: an int8dit_bench_quant binary; DIR_A, DIR_B: folders holding a libint8dit.so each (every round
# runs A, then B); OUT: where each run's quant.json goes (OUT/a1, OUT/b1, ...) and ab.md, the medians a
# case and B's time over A's; ROUNDS: default 3; CASES: --only's list (default: the 3072- and
# 1536-column cases of issue 4's target).
# QUANT_AB_ENV_A, QUANT_AB_ENV_B: VAR=value settings for A's or B's runs only, e.g. DIR_A = DIR_B and
# QUANT_AB_ENV_A=INT8DIT_QUANT_ROWS=registers to time a path of one library against its default.
set -euo pipefail
if [[ $# -lt 4 ]]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
BENCH=$1 DIR_A=$2 DIR_B=$3 OUT=$4 ROUNDS=${5:-3}
CASES=${6:-quantize_rows@4096x3072,gelu_quantize@4096x3072,gelu_quantize@4608x3072,rmsnorm_quantize@4096x3072,rmsnorm_quantize@4608x3072,layernorm_modulate_quantize@4096x3072,layernorm_modulate_quantize@8192x1536,layernorm_modulate_quantize+y@4096x3072,layernorm_modulate_quantize+residual@4096x3072}
[[ -x $BENCH ]] || { echo "quant_ab: $BENCH is not an executable (int8dit_bench_quant)" >&2; exit 2; }
for dir in "$DIR_A" "$DIR_B"; do
  [[ -f $dir/libint8dit.so ]] || { echo "quant_ab: $dir holds no libint8dit.so" >&2; exit 2; }
done
mkdir -p "$OUT"
for ((r = 1; r <= ROUNDS; ++r)); do
  for side in a b; do
    dir=$DIR_A settings=${QUANT_AB_ENV_A:-}
    [[ $side == b ]] && dir=$DIR_B settings=${QUANT_AB_ENV_B:-}
    mkdir -p "$OUT/$side$r"
    # shellcheck disable=SC2086 # the settings are words on purpose
    env $settings LD_LIBRARY_PATH="$(cd "$dir" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$BENCH" --out "$OUT/$side$r" \
      --only "$CASES" > "$OUT/$side$r/bench.log" 2>&1
  done
done
python3 - "$OUT" "$ROUNDS" "$DIR_A${QUANT_AB_ENV_A:+ with $QUANT_AB_ENV_A}" "$DIR_B${QUANT_AB_ENV_B:+ with $QUANT_AB_ENV_B}" <<'EOF'
import json, statistics, sys
out, rounds, dir_a, dir_b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
times, copy = {}, {}
for side in "ab":
    for r in range(1, rounds + 1):
        d = json.load(open(f"{out}/{side}{r}/quant.json"))
        copy.setdefault(side, []).append(d["copy_bandwidth_gbps"])
        for row in d["rows"]:
            key = (row["op"], row["m"], row["k"], row["batches"])
            times.setdefault(key, {"a": [], "b": []})[side].append((row["time_us"], row["bandwidth_fraction"]))
lines = [f"# quant A/B: A = {dir_a}, B = {dir_b}, {rounds} rounds (A then B in each)", "",
         f"1 GiB copy: A {statistics.median(copy['a']):.0f} GB/s, B {statistics.median(copy['b']):.0f} GB/s (medians)", "",
         "| op | M | K | batches | A us (runs) | B us (runs) | B / A | A of copy | B of copy |",
         "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |"]
for (op, m, k, b), s in times.items():
    ta, tb = [t for t, _ in s["a"]], [t for t, _ in s["b"]]
    fa, fb = statistics.median(f for _, f in s["a"]), statistics.median(f for _, f in s["b"])
    runs = lambda ts: " ".join(f"{t:.2f}" for t in ts)
    lines.append(f"| {op} | {m} | {k} | {b} | {statistics.median(ta):.2f} ({runs(ta)}) | {statistics.median(tb):.2f} ({runs(tb)}) "
                 f"| {statistics.median(tb) / statistics.median(ta):.3f} | {fa:.3f} | {fb:.3f} |")
open(f"{out}/ab.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
