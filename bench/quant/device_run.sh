#!/usr/bin/env bash
# On the lent GPU machine: build only what the quantization kernels need (core, CPU reference,
# src/quant, tests/cpp/test_quant_*.cpp and the bench/quant program) straight with nvcc/g++, run the
# tests, compute-sanitizer memcheck on small shapes and the benchmark with its eager PyTorch baseline,
# and leave the logs and results under $OUT (at most 8 files come back).
#
# NOTE: this skips the GEMM families on purpose: their CUTLASS instantiations take minutes to compile,
# and device time is scarce. The CMake build (scripts/device/gpu_run.sh) builds the same sources.
#
#   ARCH=sm_90a       nvcc -arch
#   STEPS="test sanitize bench"
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/out}
ARCH=${ARCH:-sm_90a}
STEPS=${STEPS:-"test sanitize bench"}
B=/tmp/int8dit-quant
mkdir -p "$B" "$OUT"
has() { [[ " $STEPS " == *" $1 "* ]]; }
status=0

NVCC=(nvcc -std=c++17 -O3 -arch="$ARCH" -I"$ROOT/include" -I"$ROOT/src" --expt-relaxed-constexpr -Xcompiler -fPIC)
CXX=(g++ -std=c++17 -O2 -fPIC -I"$ROOT/include" -I"$ROOT/src" -I/usr/local/cuda/include
     -DINT8DIT_VERSION=\"quant\" -DINT8DIT_BUILT_ARCHS=\"${ARCH#sm_}\")

objs=()
for f in "$ROOT"/src/quant/*.cu; do
  o="$B/$(basename "$f").o"; objs+=("$o")
  "${NVCC[@]}" -Xptxas -v -c "$f" -o "$o" > "$B/$(basename "$f").ptxas" 2>&1 &
done
for f in core/status.cpp core/types.cpp core/device.cpp quant/validate.cpp ref/quantize_ref.cpp ref/quant_fused_ref.cpp; do
  o="$B/$(basename "$f").o"; objs+=("$o")
  # The reference must not contract a*b+c into an FMA (src/CMakeLists.txt does the same).
  "${CXX[@]}" -ffp-contract=off -c "$ROOT/src/$f" -o "$o" &
done
"${NVCC[@]}" -c "$ROOT/bench/quant/timing.cu" -o "$B/bench_timing.o" &
for f in main quant_ops; do "${CXX[@]}" -c "$ROOT/bench/quant/$f.cpp" -o "$B/bench_$f.o" & done
for t in test_quant_ref test_quant_gpu; do "${CXX[@]}" -c "$ROOT/tests/cpp/$t.cpp" -o "$B/$t.o" & done
wait
cat "$B"/*.ptxas | grep -E "error|Compiling entry|registers|spill" | sed 's/ptxas info    : //' > "$OUT/ptxas.txt"
LIBS=(-L/usr/local/cuda/lib64 -lcudart -lpthread)
for t in test_quant_ref test_quant_gpu; do
  g++ -o "$B/$t" "$B/$t.o" "${objs[@]}" "${LIBS[@]}" -lgtest -lgtest_main || status=1
done
g++ -o "$B/int8dit_bench_quant" "$B"/bench_*.o "${objs[@]}" "${LIBS[@]}" || status=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv

if has test; then
  for t in test_quant_ref test_quant_gpu; do "$B/$t" || status=1; done > "$OUT/test.log" 2>&1
  grep -E "PASSED|FAILED|SKIPPED|Failure|error" "$OUT/test.log" | head -40
fi
if has sanitize; then
  INT8DIT_SMALL_SHAPES=1 timeout 240 compute-sanitizer --tool memcheck --error-exitcode 3 "$B/test_quant_gpu" \
    > "$B/sanitize.log" 2>&1
  rc=$?; echo "compute-sanitizer memcheck test_quant_gpu: rc=$rc" | tee -a "$OUT/test.log"
  tail -n 5 "$B/sanitize.log" >> "$OUT/test.log"
  [[ $rc -eq 0 ]] || status=1
fi
if has bench; then
  "$B/int8dit_bench_quant" --out "$OUT" > "$OUT/bench.log" 2>&1 || status=1
  python3 "$ROOT/bench/quant/eager_torch.py" --json "$OUT/quant.json" --md "$OUT/quant.md" >> "$OUT/bench.log" 2>&1 || status=1
  cat "$OUT/bench.log" | head -40
fi
echo "device_run: steps [$STEPS] status=$status"
exit $status
