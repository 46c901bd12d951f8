#!/usr/bin/env bash
# On the lent GPU machine: build with every core, run the GPU tests (and optionally compute-sanitizer
# and the benchmarks), and leave logs and results under $OUT.
#
#   STEPS="build test sanitize bench"  which steps to run (default: build test bench)
#   ARCHS="90a"                        INT8DIT_CUDA_ARCHS for this build
#   BENCH_ARGS="..."                   extra arguments for scripts/bench.sh
#   GTEST_FILTER=...                   narrows the C++ tests as usual
#
# The machine has no network: the CUTLASS headers travel as .carry/cutlass-*.tgz (made by
# scripts/device/pack_carry.sh). $OUT returns at most 8 files, so everything is packed into
# $OUT/results.tgz, with the build's ptxas report and the test log beside it.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/out}
STEPS=${STEPS:-"build test bench"}
ARCHS=${ARCHS:-90a}
WORK=/tmp/int8dit-out
BUILD=${BUILD:-/tmp/int8dit-build}
mkdir -p "$OUT" "$WORK"
has() { [[ " $STEPS " == *" $1 "* ]]; }
status=0

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv | tee "$WORK/gpu.txt"

if has build; then
  mkdir -p /tmp/cutlass && tar xzf "$ROOT"/.carry/cutlass-*-headers.tgz -C /tmp/cutlass
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DINT8DIT_CUDA_ARCHS="$ARCHS" \
    -DINT8DIT_CUTLASS_DIR=/tmp/cutlass/include -DINT8DIT_PTXAS_VERBOSE=ON > "$WORK/configure.log" 2>&1 \
    || { cat "$WORK/configure.log"; status=1; }
  # -k 0: one broken target must not hide the results of the others.
  ninja -C "$BUILD" -k 0 -j"$(nproc)" > "$WORK/build.log" 2>&1 || { status=1; grep -E "error|FAILED" "$WORK/build.log" | head -40; }
  grep -E "Function properties|spill|Used [0-9]+ registers" "$WORK/build.log" > "$OUT/ptxas.txt" || true
  echo "build: $(grep -c 'error' "$WORK/build.log") error lines; spills: $(grep -E '[1-9][0-9]* bytes spill' "$WORK/build.log" | wc -l) kernels"
fi

if has test; then
  (cd "$BUILD" && ctest --output-on-failure -j4 2>&1) | tee "$OUT/test.log" | tail -n 40 || status=1
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
fi

if has sanitize; then
  for tool in memcheck racecheck; do
    for t in "$BUILD"/tests/test_*gpu*; do
      [[ -x $t ]] || continue
      INT8DIT_SMALL_SHAPES=1 compute-sanitizer --tool $tool --error-exitcode 3 "$t" > "$WORK/sanitize_${tool}_$(basename "$t").log" 2>&1
      rc=$?; echo "compute-sanitizer $tool $(basename "$t"): rc=$rc ($(tail -n 1 "$WORK/sanitize_${tool}_$(basename "$t").log"))"
      [[ $rc -eq 0 ]] || status=1
    done
  done | tee "$WORK/sanitize.txt"
fi

if has bench; then
  BUILD="$BUILD" RESULTS="$WORK/results" bash "$ROOT/scripts/bench.sh" ${BENCH_ARGS:-} 2>&1 | tee "$WORK/bench.log" | tail -n 60
fi

cp "$BUILD"/*.log "$WORK/" 2>/dev/null || true
tar czf "$OUT/results.tgz" -C "$WORK" .
echo "gpu_run: steps [$STEPS] status=$status; results in \$OUT/results.tgz"
exit $status
