#!/usr/bin/env bash
# Reproduce bench/results/<gpu>/tune.{json,md} and tune_m_sweep.png on a GPU machine: build only what
# the tune benchmark needs, run the tuner's tests, time `int8dit tune --preset flux-dev`, run the
# benchmark and plot it.
#
#   OUT=<dir>     where the results go (default: bench/results/h100)
#   BUILD=<dir>   build directory (default: /tmp/int8dit-build-tune)
#   ARCHS=<list>  INT8DIT_CUDA_ARCHS (default: 90a)
#   BENCH_ARGS    extra int8dit_bench_tune flags; with --all-configs, bench/tune/fit_heuristic.py then
#                 judges and refits the heuristic on the sweep (OUT/heuristic_fit.txt)
# Without network, the CUTLASS headers come from .carry/cutlass-*-headers.tgz when it is there.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/bench/results/h100}
BUILD=${BUILD:-/tmp/int8dit-build-tune}
ARCHS=${ARCHS:-90a}
mkdir -p "$OUT"
status=0

cutlass=()
if compgen -G "$ROOT/.carry/cutlass-*-headers.tgz" > /dev/null; then
  mkdir -p /tmp/cutlass && tar xzf "$ROOT"/.carry/cutlass-*-headers.tgz -C /tmp/cutlass
  cutlass=(-DINT8DIT_CUTLASS_DIR=/tmp/cutlass/include)
fi
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DINT8DIT_CUDA_ARCHS="$ARCHS" \
  -DINT8DIT_BUILD_TESTS=ON -DINT8DIT_BUILD_BENCH=ON "${cutlass[@]}" \
  > "$OUT/tune_configure.log" 2>&1 || { tail -20 "$OUT/tune_configure.log"; exit 1; }
# -k 0: a broken target elsewhere (the CLI) must not hide the benchmark's results.
ninja -C "$BUILD" -k 0 -j"$(nproc)" int8dit_cli int8dit_bench_tune test_tune_cache test_tune_gpu > "$OUT/tune_build.log" 2>&1 ||
  { status=1; grep -E "error|FAILED" "$OUT/tune_build.log" | head -30; }
[[ -x $BUILD/bench/tune/int8dit_bench_tune ]] || exit 1

for t in test_tune_cache test_tune_gpu; do
  [[ -x $BUILD/tests/$t ]] || { echo "$t: not built"; status=1; continue; }
  "$BUILD/tests/$t" > "$OUT/$t.log" 2>&1 || status=1
  echo "$t: $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$OUT/$t.log" | tr '\n' ' ')"
done

cli=()
if [[ -x $BUILD/tools/int8dit ]]; then cli=(--cli "$BUILD/tools/int8dit"); else echo "no int8dit CLI built: the tuning time is measured in-process"; fi
"$BUILD/bench/tune/int8dit_bench_tune" --out "$OUT" "${cli[@]}" ${BENCH_ARGS:-} || status=1
python3 "$ROOT/bench/plot_tune.py" "$OUT/tune.json" 2>/dev/null || echo "plot skipped (no matplotlib here): run bench/plot_tune.py $OUT/tune.json"
# With --all-configs every configuration was timed at every M: judge and refit the heuristic on it.
if [[ " ${BENCH_ARGS:-} " == *" --all-configs "* ]]; then
  python3 "$ROOT/bench/tune/fit_heuristic.py" "$OUT/tune.json" --refit > "$OUT/heuristic_fit.txt" 2>&1 || status=1
  cat "$OUT/heuristic_fit.txt"
fi
exit $status
