#!/usr/bin/env bash
# On the lent GPU machine: build with every core, run the GPU tests (and optionally compute-sanitizer
# and the benchmarks), and leave logs and results under $OUT.
#
#   STEPS="build test sanitize bench"  which steps to run, in this order (default: build test bench);
#                                      list the ones that must come back first (a step cut off by the
#                                      deadline still leaves the earlier ones' results)
#   ARCHS="90a"                        INT8DIT_CUDA_ARCHS for this build
#   BENCH_ARGS="..."                   extra arguments for scripts/bench.sh
#   GTEST_FILTER=...                   narrows the C++ tests as usual
#   STEPS="... quant"                  quant: int8dit_bench_quant + its eager PyTorch baseline (quant.json/md)
#   STEPS="... quant_ab"               quant_ab: scripts/device/quant_ab.sh on this build's library against itself,
#                                      A with QUANT_AB_ENV_A and B with QUANT_AB_ENV_B (e.g.
#                                      INT8DIT_QUANT_GROUP_THREADS=double), QUANT_AB_ROUNDS (3) rounds over
#                                      QUANT_AB_CASES (default: quant_ab.sh's) -> quant_ab/ab.md
#   STEPS="... ncu_quant"              ncu_quant: Nsight Compute on one launch of the slowest quantization
#                                      kernel (NCU_QUANT_CASE, default layernorm_modulate_quantize@4096x3072):
#                                      throughput, warp stalls, occupancy (is it memory-, latency- or issue-bound?),
#                                      and the stall samples by warp state and SASS instruction (stalls.txt)
#   STEPS="... sass"                   sass: scripts/sass_report.sh on this build (IGMMA/IMMA in every GEMM
#                                      configuration's SASS, registers, stack, local memory) -> sass_gemm.txt
#   STEPS="... ncu_gemm"               ncu_gemm: Nsight Compute on one timed launch of our GEMM at each of
#                                      NCU_GEMM_SHAPES (default: Flux linear1, a K = 1152 shape, an M = 333
#                                      shape): tensor-pipe use, warp stalls, memory; and the names, grids and
#                                      times of the first cuBLAS kernels at the last shape
#   STEPS="... quant_paths"            quant_paths: int8dit_bench_quant once per row path in the same call: auto
#                                      (the library's choice), the register kernel and the bulk ring at 2, 3
#                                      and 4 stages everywhere (QUANT_PATHS="auto registers ring2 ring3 ring4")
#   STEPS="... bench_back_to_back"     bench_back_to_back: the bench step's benchmark again with --calls-per-sample
#                                      ${B2B_CALLS:-10} (launches back to back between two events, as a model issues
#                                      them: where programmatic dependent launch overlaps them) -> back_to_back/
#   SANITIZE_TESTS="test_quant_gpu"    which test binaries the sanitize step runs (a glob; default test_*gpu*)
#   STEPS="... repeat"                 repeat: REPEAT_TESTS (a glob, default test_quant_gpu) REPEAT_N times
#                                      (default 3) under each row path (auto, registers, bulk): the GPU tests
#                                      draw fresh random inputs every run, so a rare bad draw shows here
#                                      (repeat.txt: one line a run)
#   BUILD_TARGETS="..."                build only these ninja targets (default: everything)
#   STEPS="... layout"                 layout: bench/quant/layout_probe.cu at LAYOUT_SHAPES ("4096x3072 ...";
#                                      "8192x1152/8": LayerNorm with 8 adaLN batch elements)
#                                      (candidate quantization layouts against the library and the copy ceilings)
#   STEPS="... scaling"                scaling: the layout probe at SCALING_ROWS (default 1024 ... 32768) x
#                                      SCALING_K (3072) for SCALING_OPS (the six 3072-column ops), the library
#                                      and the grouped layouts (INT8DIT_PROBE_SET=grouped), then
#                                      scripts/quant_scaling_fit.py: each kernel's intercept and rate a row
#                                      (scaling.txt, scaling_fit.txt, scaling_fit.json)
#   STEPS="... gelu_epilogue"          gelu_epilogue: bench/gelu_epilogue (fc1 GEMM + gelu_quantize against
#                                      the GEMM with GELU in its epilogue + quantize_rows; gelu_epilogue.json)
#   STEPS="... pdl_probe"              pdl_probe: bench/quant/pdl_placement_probe.cu (CTAs an SM and start
#                                      spread of back-to-back persistent launches, PDL on and off;
#                                      PDL_PROBE_ARGS="THREADS SMEM CARVEOUT SPIN_US LAUNCHES") -> pdl_placement.txt
#   STEPS="... probe"                  probe: scripts/device/host_overhead_probe.py (host cost of op plumbing;
#                                      needs no build)
#   STEPS="... capture_probe"          capture_probe: scripts/device/capture_probe.py (does use_cuda_graphs capture
#                                      Chroma and Qwen-Image? needs the carried wheels, no build)
#   STEPS="... tune"                  tune: bench/tune/run.sh (tuned vs heuristic, M sweep cliffs) on this build
#   TUNE_ARGS="--all-configs"         extra int8dit_bench_tune flags (this one: time every configuration
#                                      at every M, then judge/refit the heuristic: heuristic_fit.txt)
#   STEPS="... pytest e2e"             pytest: build int8dit._C, run tests/python (torch and GPU tests);
#   PREBUILT_PYTHON=build-prebuilt     pytest and e2e skip that build (~160 s) and use a carried one: the
#                                      folder (carry it) holds python/int8dit/_C.cpython-312-*.so and
#                                      libint8dit.so, built for this machine's Python (3.12) and 90a by
#                                      scripts/device/prebuild_python.sh;
#   E2E_ARGS="..."                     e2e: python -m int8dit.bench.e2e with these arguments. Wheels and
#                                      the packed MiniLM model travel in .whl/ (carry it).
#   STEPS="... e2e_pdl_off"            e2e_pdl_off: the e2e step again with INT8DIT_PDL=0 -> e2e_pdl_off/
#   STEPS="... e2e_unfused"            e2e_unfused: the e2e step again with the fused producers off -> e2e_unfused/
#   E2E_UNFUSED_FLAGS="--no-fuse-norms" which of them (default: --no-fuse-gelu --no-fuse-norms --no-fuse-swiglu)
#   PYTEST_TARGETS="tests/python/x.py" what the pytest step runs (default: the tests that need a GPU,
#                                      tests/python/*_gpu.py, and the profiler's, which take another
#                                      branch where CUDA is; the others are CPU tests that CI runs:
#                                      PYTEST_TARGETS=tests/python for all of them, ~3-4 min more)
#   GPU_RUN_SECONDS=540                the whole run's budget: every step runs under `timeout` with what
#                                      is left of it (minus 20 s to pack), so a run that would outlast the
#                                      device call's limit still packs and returns what it measured.
#                                      (E2E_TIMEOUT / E2E_UNTIL still cap the e2e step alone.)
#
# Back here: `python3 scripts/device/summarize_results.py /work/.device/N/results.tgz` prints the run's
# verdicts and figures against the issues' targets in one screen.
#
# The machine has no network: the CUTLASS headers travel as .carry/cutlass-*.tgz (made by
# scripts/device/pack_carry.sh). $OUT returns at most 8 files: everything is packed into
# $OUT/results.tgz; beside it only the few files read first (info_check.txt, heuristic_fit.txt, the
# step timings, gemm.md, tune.md).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/out}
STEPS=${STEPS:-"build test bench"}
ARCHS=${ARCHS:-90a}
WORK=/tmp/int8dit-out
BUILD=${BUILD:-/tmp/int8dit-build}
rm -rf "$WORK"  # a machine kept warm between calls still holds the previous call's results
mkdir -p "$OUT" "$WORK"
status=0
deadline=$(( $(date +%s) + ${GPU_RUN_SECONDS:-540} - 20 ))
left() { local s=$(( deadline - $(date +%s) )); (( s > 1 )) && echo "$s" || echo 1; }
step_start=$(date +%s)
step_done() {  # one line per step in $WORK/steps.txt: how long it took, to plan the next device call
  local now; now=$(date +%s)
  echo "$1: $((now - step_start)) s (status so far $status)" | tee -a "$WORK/steps.txt"
  step_start=$now
}
finish() {
  cp "$BUILD"/*.log "$WORK/" 2>/dev/null || true
  cp "$WORK"/steps.txt "$OUT/" 2>/dev/null || true
  tar czf "$OUT/results.tgz" -C "$WORK" .
  echo "gpu_run: steps [$STEPS] status=$status; results in \$OUT/results.tgz"
}

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv | tee "$WORK/gpu.txt"

step_build() {
  mkdir -p /tmp/cutlass && tar xzf "$ROOT"/.carry/cutlass-*-headers.tgz -C /tmp/cutlass
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DINT8DIT_CUDA_ARCHS="$ARCHS" \
    -DINT8DIT_CUTLASS_DIR=/tmp/cutlass/include -DINT8DIT_PTXAS_VERBOSE=ON > "$WORK/configure.log" 2>&1 \
    || { cat "$WORK/configure.log"; status=1; }
  # -k 0: one broken target must not hide the results of the others.
  timeout "$(left)" ninja -C "$BUILD" -k 0 -j"$(nproc)" ${BUILD_TARGETS:-} > "$WORK/build.log" 2>&1 || { status=1; grep -E "error|FAILED" "$WORK/build.log" | head -40; }
  grep -E "Function properties|spill|Used [0-9]+ registers" "$WORK/build.log" > "$WORK/ptxas.txt" || true
  echo "build: $(grep -c 'error' "$WORK/build.log") error lines; spills: $(grep -E '[1-9][0-9]* bytes spill' "$WORK/build.log" | wc -l) kernels"
}

step_test() {
  (cd "$BUILD" && timeout "$(left)" ctest --output-on-failure -j4 2>&1) | tee "$WORK/test.log" | tail -n 40 || status=1
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  # What a user sees first on this GPU: the tool's own report and self-check, kept verbatim.
  # (each under its own timeout: a hang here must not outlast the call and lose results.tgz)
  { echo "\$ int8dit info"; timeout 60 "$BUILD/tools/int8dit" info; echo "(exit $?)"
    echo; echo "\$ int8dit check"; timeout 120 "$BUILD/tools/int8dit" check; echo "(exit $?)"; } > "$OUT/info_check.txt" 2>&1 || status=1
  [[ $(grep -c "^(exit 0)" "$OUT/info_check.txt") -eq 2 ]] || status=1
  cat "$OUT/info_check.txt"
}

step_sanitize() {
  for tool in memcheck racecheck; do
    for t in "$BUILD"/tests/${SANITIZE_TESTS:-test_*gpu*}; do
      [[ -x $t ]] || continue
      INT8DIT_SMALL_SHAPES=1 timeout "$(left)" compute-sanitizer --tool $tool --error-exitcode 3 "$t" > "$WORK/sanitize_${tool}_$(basename "$t").log" 2>&1
      rc=$?; echo "compute-sanitizer $tool $(basename "$t"): rc=$rc ($(tail -n 1 "$WORK/sanitize_${tool}_$(basename "$t").log"))"
      [[ $rc -eq 0 ]] || status=1
    done
  done | tee "$WORK/sanitize.txt"
}

step_repeat() {
  local t rows i rc
  for t in "$BUILD"/tests/${REPEAT_TESTS:-test_quant_gpu}; do
    [[ -x $t ]] || continue
    for rows in auto registers bulk; do
      for ((i = 1; i <= ${REPEAT_N:-3}; i++)); do
        INT8DIT_QUANT_ROWS=$rows timeout "$(left)" "$t" > "$WORK/repeat_$(basename "$t")_${rows}_$i.log" 2>&1
        rc=$?; [[ $rc -eq 0 ]] || status=1
        echo "$(basename "$t") INT8DIT_QUANT_ROWS=$rows run $i: rc=$rc ($(grep -E "PASSED|FAILED" "$WORK/repeat_$(basename "$t")_${rows}_$i.log" | tr '\n' ' '))" | tee -a "$WORK/repeat.txt"
      done
    done
  done
}

step_quant() {
  mkdir -p "$WORK/quant"
  timeout "$(left)" "$BUILD/bench/quant/int8dit_bench_quant" --out "$WORK/quant" 2>&1 | tee "$WORK/quant/bench.log" | tail -n 40
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  timeout "$(left)" python3 "$ROOT/bench/quant/eager_torch.py" --json "$WORK/quant/quant.json" --md "$WORK/quant/quant.md" \
    >> "$WORK/quant/bench.log" 2>&1 || status=1
  grep -E "Lowest kernel" "$WORK/quant/quant.md" 2>/dev/null || true
  python3 "$ROOT/bench/plot_quant.py" "$WORK/quant/quant.json" >> "$WORK/quant/bench.log" 2>&1 || echo "gpu_run: no quant.png (matplotlib?)"
}

step_quant_paths() {
  local variant
  for variant in ${QUANT_PATHS:-auto registers ring2 ring3 ring4}; do
    mkdir -p "$WORK/quant_paths/$variant"
    local rows=bulk stages=${variant#ring}
    [ "$variant" = registers ] || [ "$variant" = auto ] && rows=$variant stages=2
    echo "== $variant (INT8DIT_QUANT_ROWS=$rows INT8DIT_QUANT_RING_STAGES=$stages)"
    INT8DIT_QUANT_ROWS=$rows INT8DIT_QUANT_RING_STAGES=$stages timeout "$(left)" \
      "$BUILD/bench/quant/int8dit_bench_quant" --out "$WORK/quant_paths/$variant" > "$WORK/quant_paths/$variant/bench.log" 2>&1 || status=1
    tail -n 30 "$WORK/quant_paths/$variant/bench.log"
  done
}

step_quant_ab() {
  [[ -n ${QUANT_AB_ENV_A:-}${QUANT_AB_ENV_B:-} ]] || { echo "gpu_run: quant_ab times one library against itself: set QUANT_AB_ENV_A or QUANT_AB_ENV_B"; status=1; return; }
  QUANT_AB_ENV_A=${QUANT_AB_ENV_A:-} QUANT_AB_ENV_B=${QUANT_AB_ENV_B:-} timeout "$(left)" bash "$ROOT/scripts/device/quant_ab.sh" \
    "$BUILD/bench/quant/int8dit_bench_quant" "$BUILD/src" "$BUILD/src" "$WORK/quant_ab" "${QUANT_AB_ROUNDS:-3}" ${QUANT_AB_CASES:-} \
    > "$WORK/quant_ab.log" 2>&1 || status=1
  if [[ -f $WORK/quant_ab/ab.md ]]; then
    rm -rf "$WORK"/quant_ab/[ab][0-9]*/  # each run's quant.json is in ab.md's medians; keep results.tgz small
    cat "$WORK/quant_ab/ab.md"
  else  # a run failed: keep every run's log, and show the last one's end
    tail -n 20 "$WORK/quant_ab.log" "$(ls -t "$WORK"/quant_ab/*/bench.log 2>/dev/null | head -n 1)" 2>/dev/null
  fi
}

step_ncu_quant() {
  local case=${NCU_QUANT_CASE:-layernorm_modulate_quantize@4096x3072}
  mkdir -p "$WORK/ncu_quant"
  # After the benchmark's warm-up calls (10) and some timed ones: a launch on warm clocks.
  # The profile goes to a report (the benchmark's own output to bench.txt); its details page, with
  # every section's body (--print-details all: the Warp State chart's stall reasons as text), to
  # ncu.txt. SourceCounters samples the warps' program counters: the report's source page gives each
  # SASS instruction's stall samples (sass_stalls.csv), which scripts/ncu_stall_report.py sums up by
  # warp state and instruction (stalls.txt): where in the row loop the cycles go.
  timeout "$(left)" ncu --kernel-name regex:row_quantize --launch-skip 40 --launch-count 1 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
    --section WarpStateStats --section Occupancy --section LaunchStats --section SchedulerStats \
    --section SourceCounters --export "$WORK/ncu_quant/report" --force-overwrite \
    "$BUILD/bench/quant/int8dit_bench_quant" --out "$WORK/ncu_quant" --only "$case" > "$WORK/ncu_quant/bench.txt" 2>&1 || status=1
  timeout "$(left)" ncu --import "$WORK/ncu_quant/report.ncu-rep" --page details --print-details all \
    > "$WORK/ncu_quant/ncu.txt" 2>&1 || status=1
  timeout "$(left)" ncu --import "$WORK/ncu_quant/report.ncu-rep" --page source --print-source sass --csv \
    > "$WORK/ncu_quant/sass_stalls.csv" 2> "$WORK/ncu_quant/sass_stalls.err" || status=1
  python3 "$ROOT/scripts/ncu_stall_report.py" "$WORK/ncu_quant/sass_stalls.csv" > "$WORK/ncu_quant/stalls.txt" 2>&1 || status=1
  grep -E "Duration|Throughput|Issue Slots|Achieved Occupancy|Stall|Warp Cycles|Registers|No Eligible" "$WORK/ncu_quant/ncu.txt" | head -40
  head -20 "$WORK/ncu_quant/stalls.txt"
}

step_sass() {
  timeout "$(left)" bash "$ROOT/scripts/sass_report.sh" "$BUILD" 2>&1 | tee "$WORK/sass_gemm.txt"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}

# One ncu run of the GEMM benchmark at one shape; falls back to the sections alone where this ncu
# does not know one of the extra metrics (their names move between ncu versions).
ncu_gemm_run() {
  local out=$1 shape=$2; shift 2
  local bench=("$BUILD/bench/gemm/int8dit_bench_gemm" --shapes "$shape" --no-sweep --warmup 10 --warmup-ms 0
               --runs 50 --rounds 1 --host-calls 1 --host-rounds 1 --out "$WORK/ncu_gemm/bench_$shape")
  timeout "$(left)" ncu "$@" --metrics "$NCU_GEMM_METRICS" "${bench[@]}" > "$out" 2>&1 \
    || timeout "$(left)" ncu "$@" "${bench[@]}" > "$out" 2>&1 || status=1
}

step_ncu_gemm() {
  mkdir -p "$WORK/ncu_gemm"
  local sections=(--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis
                  --section WarpStateStats --section Occupancy --section LaunchStats --section SchedulerStats)
  # Tensor-pipe (wgmma) activity and every warp-stall reason as a share of issue cycles.
  NCU_GEMM_METRICS="sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_tensor_op_gmma.sum,regex:smsp__average_warps_issue_stalled_.*_per_issue_active.ratio"
  local shapes=(${NCU_GEMM_SHAPES:-4608x21504x3072 4096x1152x1152 333x1536x1536}) shape
  for shape in "${shapes[@]}"; do
    # With --no-sweep our kernel runs once for the correctness check, 10 times to warm up, then timed:
    # the 41st launch is a timed run of the dispatch's configuration on warm clocks and caches.
    ncu_gemm_run "$WORK/ncu_gemm/ours_$shape.txt" "$shape" --kernel-name regex:device_kernel --launch-skip 40 \
      --launch-count 1 "${sections[@]}"
    echo "== ours $shape"
    grep -E "device_kernel|Duration|SM Frequency|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|gmma|Issue Slots Busy|No Eligible|Achieved Occupancy|stalled_(long_scoreboard|barrier|wait|math|mio|lg|short|membar|sleeping|dispatch|no_inst|branch|tex|selected|not_selected|drain|imc|misc)" \
      "$WORK/ncu_gemm/ours_$shape.txt" | head -40
  done
  # cuBLAS at the last shape: the first 12 launches whose names say cuBLAS (the baselines' checks and
  # algorithm picks, in path order: bf16 first), with their grids and times.
  ncu_gemm_run "$WORK/ncu_gemm/cublas_${shapes[-1]}.txt" "${shapes[-1]}" --kernel-name "regex:nvjet|xmma|cutlass_?[0-9]|gemm_kernel" \
    --launch-count 12 --section LaunchStats --section SpeedOfLight
  grep -E "^  [a-zA-Z_].*\(|Duration|Grid Size|Block Size" "$WORK/ncu_gemm/cublas_${shapes[-1]}.txt" | head -60
}

step_layout() {
  mkdir -p "$WORK/layout"
  for shape in ${LAYOUT_SHAPES:-4096x3072}; do
    # MxK or MxK/BATCHES (LayerNorm's adaLN batch elements)
    local mk=${shape%/*} batches=1
    [[ $shape == */* ]] && batches=${shape#*/}
    timeout "$(left)" "$BUILD/bench/quant/int8dit_quant_layout_probe" "${mk%x*}" "${mk#*x}" "$batches" 2>&1 \
      | tee "$WORK/layout/layout_${shape//\//_b}.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  done
  cp "$WORK"/layout/*.txt "$OUT/" 2>/dev/null || true
}

# Time against M at one K (issue 4's 3072-column cases): a fixed part a call and a rate a row for each
# kernel, which say whether a kernel misses the target by its start and end or by its streaming.
step_scaling() {
  local k=${SCALING_K:-3072} ops=${SCALING_OPS:-quantize_rows,quantize_rows+smooth,layernorm_modulate_quantize,rmsnorm_quantize,gelu_quantize,layernorm_modulate_quantize+residual}
  mkdir -p "$WORK/scaling"
  : > "$WORK/scaling/scaling.txt"
  for m in ${SCALING_ROWS:-1024 2048 4096 8192 16384 32768}; do
    echo "=== M=$m K=$k" >> "$WORK/scaling/scaling.txt"
    INT8DIT_PROBE_SET=grouped timeout "$(left)" "$BUILD/bench/quant/int8dit_quant_layout_probe" "$m" "$k" 1 "$ops" \
      >> "$WORK/scaling/scaling.txt" 2>&1 || status=1
  done
  python3 "$ROOT/scripts/quant_scaling_fit.py" "$WORK/scaling/scaling.txt" --json "$WORK/scaling/scaling_fit.json" \
    | tee "$WORK/scaling/scaling_fit.txt"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}

# Where the MLP's GELU runs (issue 4): fc1 GEMM + gelu_quantize against the GEMM with GELU in its
# epilogue + quantize_rows (bench/gelu_epilogue), gelu_epilogue.json.
step_gelu_epilogue() {
  mkdir -p "$WORK/gelu_epilogue"
  timeout "$(left)" "$BUILD/bench/gelu_epilogue/int8dit_bench_gelu_epilogue" --out "$WORK/gelu_epilogue" 2>&1 \
    | tee "$WORK/gelu_epilogue/bench.log"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}

# Where back-to-back persistent launches place their CTAs, with and without programmatic dependent
# launch (bench/quant/pdl_placement_probe.cu; PDL_PROBE_ARGS, default the one-warp LayerNorm CTA).
step_pdl_probe() {
  timeout "$(left)" "$BUILD/bench/quant/int8dit_pdl_placement_probe" ${PDL_PROBE_ARGS:-} 2>&1 | tee "$WORK/pdl_placement.txt"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}

step_probe() {
  timeout "$(left)" python3 "$ROOT/scripts/device/host_overhead_probe.py" 2>&1 | grep -vi warn | tee "$WORK/host_overhead_probe.txt"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}

step_bench() {
  BUILD="$BUILD" RESULTS="$WORK/results" timeout "$(left)" bash "$ROOT/scripts/bench.sh" ${BENCH_ARGS:-} 2>&1 | tee "$WORK/bench.log" | tail -n 60
  cp "$WORK"/results/gemm.md "$OUT/" 2>/dev/null || true
}

step_bench_back_to_back() {
  BUILD="$BUILD" RESULTS="$WORK/results/back_to_back" timeout "$(left)" bash "$ROOT/scripts/bench.sh" ${BENCH_ARGS:-} \
    --calls-per-sample "${B2B_CALLS:-10}" 2>&1 | tee "$WORK/bench_back_to_back.log" | tail -n 60
}

step_tune() {
  BUILD="$BUILD" ARCHS="$ARCHS" OUT="$WORK/tune" BENCH_ARGS="${TUNE_ARGS:-}" timeout "$(left)" bash "$ROOT/bench/tune/run.sh" 2>&1 | tee "$WORK/tune.log" | tail -n 30
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  cp "$WORK"/tune/tune.md "$WORK"/tune/heuristic_fit.txt "$OUT/" 2>/dev/null || true
}

python_ready=0
python_setup() {  # once, for pytest and e2e: the carried wheels and the int8dit._C module
  ((python_ready)) && return
  python_ready=1
  if [[ -d $ROOT/.whl ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$ROOT"/.whl/*.whl \
      && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    [[ -f $ROOT/.whl/minilm.tgz ]] && tar xzf "$ROOT/.whl/minilm.tgz" -C /tmp && export INT8DIT_MINILM_DIR=/tmp/minilm
  fi
  if [[ -n ${PREBUILT_PYTHON:-} ]]; then  # int8dit._C and libint8dit.so built elsewhere, carried in
    export PYTHONPATH="$ROOT/python:$ROOT/$PREBUILT_PYTHON/python:$ROOT/tests/python${PYTHONPATH:+:$PYTHONPATH}" \
      LD_LIBRARY_PATH="$ROOT/$PREBUILT_PYTHON${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" HF_HUB_OFFLINE=1
    return
  fi
  if [[ ! -f $BUILD/build.ninja ]]; then
    mkdir -p /tmp/cutlass && tar xzf "$ROOT"/.carry/cutlass-*-headers.tgz -C /tmp/cutlass
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DINT8DIT_CUDA_ARCHS="$ARCHS" \
      -DINT8DIT_CUTLASS_DIR=/tmp/cutlass/include -DINT8DIT_BUILD_TESTS=OFF -DINT8DIT_BUILD_BENCH=OFF > "$WORK/configure.log" 2>&1
  fi
  cmake -S "$ROOT" -B "$BUILD" -DINT8DIT_BUILD_PYTHON=ON -DPython_EXECUTABLE="$(command -v python3)" >> "$WORK/configure.log" 2>&1
  timeout "$(left)" ninja -C "$BUILD" -j"$(nproc)" _C > "$WORK/build_python.log" 2>&1 || { status=1; grep -E "error|FAILED" "$WORK/build_python.log" | head -40; }
  export PYTHONPATH="$ROOT/python:$BUILD/python:$ROOT/tests/python${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
}

step_pytest() {
  python_setup
  local targets=() t
  for t in ${PYTEST_TARGETS:-$(cd "$ROOT" && echo tests/python/*_gpu.py tests/python/test_bench_profile.py)}; do
    targets+=("$ROOT/$t")
  done
  timeout "$(left)" python3 -m pytest -q -rs "${targets[@]}" 2>&1 | tee "$WORK/pytest.log" | tail -n 40
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}

run_e2e() {  # $1: the output folder's name under $WORK
  python_setup
  # E2E_TIMEOUT (seconds) or E2E_UNTIL (epoch seconds) stops the benchmark early enough that what it
  # wrote still comes back.
  e2e_limit=$(left)
  [[ -n ${E2E_TIMEOUT:-} ]] && ((E2E_TIMEOUT < e2e_limit)) && e2e_limit=$E2E_TIMEOUT
  [[ -n ${E2E_UNTIL:-} ]] && ((E2E_UNTIL - $(date +%s) < e2e_limit)) && e2e_limit=$((E2E_UNTIL - $(date +%s))) && ((e2e_limit < 1)) && e2e_limit=1
  timeout "$e2e_limit" python3 -m int8dit.bench.e2e --out "$WORK/$1" ${E2E_ARGS:-} 2>&1 | tee "$WORK/$1.log" | grep -vE "^\s*$" | tail -n 80
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}

step_e2e() { run_e2e e2e; }
# The same with programmatic dependent launch off (INT8DIT_PDL=0), into e2e_pdl_off/: what it is worth
# in a model, where each GEMM follows its quantization kernel.
step_e2e_pdl_off() { INT8DIT_PDL=0 run_e2e e2e_pdl_off; }
# The same with the fused producers off (--no-fuse-gelu --no-fuse-norms --no-fuse-swiglu, or E2E_UNFUSED_FLAGS), into
# e2e_unfused/: what the fused GELU MLP and adaLN-Zero norms (int8dit.torch.mlp, .adanorm) are worth.
step_e2e_unfused() { E2E_ARGS="${E2E_ARGS:-} ${E2E_UNFUSED_FLAGS:---no-fuse-gelu --no-fuse-norms --no-fuse-swiglu}" run_e2e e2e_unfused; }

# Whether use_cuda_graphs captures Chroma and Qwen-Image (scripts/device/capture_probe.py): needs the carried
# wheels but no int8dit build, so it answers in seconds on a fresh machine -> capture_probe.txt.
step_capture_probe() {
  if [[ -d $ROOT/.whl ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$ROOT"/.whl/*.whl
  fi
  PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} timeout "$(left)" python3 "$ROOT/scripts/device/capture_probe.py" \
    > "$WORK/capture_probe.txt" 2>&1 || status=1
  grep -E "^(ok|FAIL)|capture_probe:" "$WORK/capture_probe.txt"
}

for step in $STEPS; do
  if [[ $(type -t "step_$step") != function ]]; then
    echo "gpu_run: unknown step '$step' (steps: build test sanitize repeat sass ncu_gemm quant quant_paths ncu_quant layout scaling gelu_epilogue pdl_probe probe capture_probe bench bench_back_to_back tune pytest e2e e2e_pdl_off e2e_unfused)"; status=1; continue
  fi
  "step_$step"
  step_done "$step"
done

finish
exit $status
