#!/usr/bin/env bash
# The README's main job: measure int8dit's W8A8 GEMM against cuBLAS bf16, cuBLASLt int8 + dequantize
# and cuBLASLt FP8 on this machine's GPU, and the whole int8dit linear layer (quantization included)
# against bf16, and keep the results.
#
#   scripts/bench.sh [int8dit_bench_gemm flags...]     e.g. scripts/bench.sh --preset all
#
# From a fresh clone: runs scripts/setup.sh (dependencies) if present, configures and builds for this
# GPU's architecture only, runs the benchmark on the flux-dev preset unless --preset/--shapes is
# given, and writes bench/results/<gpu>/gemm.{json,md,png}.
#
# Environment:
#   BUILD=<dir>    use this existing build (skips setup and build); needs RESULTS too
#   RESULTS=<dir>  write the results here instead of bench/results/<gpu>/
#   JOBS=<n>       build parallelism (default: all cores)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "bench.sh: $*" >&2; exit 2; }

# ---- the GPU: without an NVIDIA GPU and driver there is nothing to measure ----
command -v nvidia-smi >/dev/null 2>&1 ||
  die "no NVIDIA driver found (nvidia-smi is not on PATH): this benchmark needs an NVIDIA GPU (sm_80 or newer) and its driver."
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' ') ||
  die "nvidia-smi could not query a GPU: is the driver loaded and a GPU visible (CUDA_VISIBLE_DEVICES)?"
[[ -n $cc ]] || die "nvidia-smi lists no GPU: this benchmark needs an NVIDIA GPU (sm_80 or newer)."
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
case "$cc" in
  9.0) arch=90a ;;
  8.0|8.6|8.7|8.9) arch=${cc/./} ;;
  *) die "$gpu_name is sm_${cc/./}: int8dit builds kernels for sm_80, 86, 87, 89 and 90a only." ;;
esac

# bench/results/<gpu>: "NVIDIA H100 80GB HBM3" -> h100, "NVIDIA GeForce RTX 4090" -> rtx-4090.
gpu_slug() {
  local n=${1#NVIDIA }
  n=${n#GeForce }
  n=${n#Tesla }
  read -r first second _ <<<"$n"
  if [[ $first == RTX ]]; then first="$first-$second"; else first=${first%%-*}; fi
  echo "$first" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9-\n' '-'
}

if [[ -n ${BUILD:-} ]]; then
  [[ -n ${RESULTS:-} ]] || die "BUILD is set but RESULTS is not: say where the results go."
  build=$BUILD
else
  if [[ -f $ROOT/scripts/setup.sh ]]; then
    echo "== setup (scripts/setup.sh)"
    bash "$ROOT/scripts/setup.sh"
  fi
  build=$ROOT/build-bench-sm$arch
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  echo "== configure for $gpu_name (sm_${cc/./} -> INT8DIT_CUDA_ARCHS=$arch) in $build"
  cmake -S "$ROOT" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DINT8DIT_CUDA_ARCHS="$arch" \
    -DINT8DIT_BUILD_TESTS=OFF >/dev/null
  echo "== build int8dit_bench_gemm"
  cmake --build "$build" --target int8dit_bench_gemm -j "${JOBS:-$(nproc)}"
fi
results=${RESULTS:-$ROOT/bench/results/$(gpu_slug "$gpu_name")}
bin=$build/bench/gemm/int8dit_bench_gemm
[[ -x $bin ]] || die "$bin was not built (is INT8DIT_BUILD_BENCH on in $build?)"

# Arguments pass through; the flux-dev preset and the results directory are the defaults.
args=("$@")
has_flag() { local f; for f in "${args[@]}"; do [[ $f == "$1" || $f == "$1="* ]] && return 0; done; return 1; }
has_flag --preset || has_flag --shapes || args+=(--preset flux-dev)
has_flag --out || args+=(--out "$results")
has_flag --shapes-dir || args+=(--shapes-dir "$ROOT/bench/shapes")
for a in "${args[@]}"; do [[ $a == --help || $a == -h ]] && exec "$bin" --help; done

echo "== $bin ${args[*]}"
status=0
"$bin" "${args[@]}" || status=$?

out_dir=$results
for ((i = 0; i < ${#args[@]}; ++i)); do
  [[ ${args[i]} == --out ]] && out_dir=${args[i + 1]}
  [[ ${args[i]} == --out=* ]] && out_dir=${args[i]#--out=}
done
if [[ -f $out_dir/gemm.json ]]; then
  if python3 -c "import matplotlib" >/dev/null 2>&1; then
    python3 "$ROOT/bench/plot_gemm.py" "$out_dir/gemm.json" || status=1
  else
    echo "bench.sh: matplotlib is not installed: no gemm.png (pip install matplotlib, then python3 bench/plot_gemm.py $out_dir/gemm.json)"
  fi
fi
case $status in
  0) ;;
  2) echo "bench.sh: the benchmark could not start (bad flags or no usable GPU; see above)" >&2 ;;
  *) echo "bench.sh: the benchmark reported failed checks or rows that could not run (exit $status)" >&2 ;;
esac
exit $status
