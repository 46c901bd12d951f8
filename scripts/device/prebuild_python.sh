#!/usr/bin/env bash
# Build int8dit._C and libint8dit.so here for the lent GPU machine's Python (3.12) and sm_90a, into
# build-prebuilt/ (ignored by git), so that a device call whose budget cannot pay for the ~160 s build
# there can carry them: run(carry=[".carry", ".whl", "build-prebuilt"]) with PREBUILT_PYTHON=build-prebuilt
# (scripts/device/gpu_run.sh). Needs a Python 3.12 here with nanobind==2.9.2 (PYTHON312=...).
#
# PREBUILT_EXTRA="tests/test_qk_norm_rope_gpu bench/quant/int8dit_bench_quant": C++ test or benchmark
# binaries of a 90a build here (BUILD_DIR, default build-local; build them first with ninja) copied into
# build-prebuilt/tests and build-prebuilt/bench, to run on the device against the carried library without
# the device's build: LD_LIBRARY_PATH=build-prebuilt build-prebuilt/tests/test_qk_norm_rope_gpu.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=
for candidate in ${PYTHON312:-} python3.12 /root/.pyenv/versions/3.12*/bin/python3.12; do
  if "$candidate" -c "import sys, nanobind; assert sys.version_info[:2] == (3, 12)" 2>/dev/null; then
    PY=$candidate; break
  fi
done
if [[ -z $PY ]]; then
  echo "prebuild_python: no Python 3.12 with nanobind found (install nanobind==2.9.2 into one; set PYTHON312)" >&2
  exit 1
fi
cmake -S "$ROOT" -B "$ROOT/build-py312" -G Ninja -DCMAKE_BUILD_TYPE=Release -DINT8DIT_CUDA_ARCHS=90a \
  -DINT8DIT_BUILD_TESTS=OFF -DINT8DIT_BUILD_BENCH=OFF -DINT8DIT_BUILD_PYTHON=ON -DPython_EXECUTABLE="$PY" > /dev/null
ninja -C "$ROOT/build-py312" _C
rm -rf "$ROOT/build-prebuilt" && mkdir -p "$ROOT/build-prebuilt/python/int8dit"
cp "$ROOT"/build-py312/python/int8dit/_C.cpython-312-*.so "$ROOT/build-prebuilt/python/int8dit/"
cp "$ROOT/build-py312/src/libint8dit.so" "$ROOT/build-prebuilt/"
for target in ${PREBUILT_EXTRA:-}; do
  binary="$ROOT/${BUILD_DIR:-build-local}/$target"
  if [[ ! -x $binary ]]; then
    echo "prebuild_python: $binary is not built (ninja -C ${BUILD_DIR:-build-local} $(basename "$target"), a 90a build)" >&2
    exit 1
  fi
  dest="$ROOT/build-prebuilt/${target%%/*}"  # tests/... -> build-prebuilt/tests, bench/... -> build-prebuilt/bench
  mkdir -p "$dest" && cp "$binary" "$dest/"
done
du -sh "$ROOT/build-prebuilt"
