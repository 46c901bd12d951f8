#!/usr/bin/env bash
# THE test command (README, .ci/run): set up what is missing, configure, build every target with all
# local cores, and run every test. GPU tests skip with a reason where there is no CUDA GPU.
#
#   INT8DIT_CUDA_ARCHS  architectures to build (default "80;86;89;90a", the project's default)
#   BUILD_DIR           build directory (default: build/ in the repository)
#   JOBS                parallel build and test jobs (default: all local cores)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
JOBS=${JOBS:-$(nproc)}
ARCHS=${INT8DIT_CUDA_ARCHS:-"80;86;89;90a"}

# CMake finds nvcc on PATH (or through CUDACXX); the toolkit's default place is /usr/local/cuda.
command -v nvcc >/dev/null 2>&1 || [[ -n ${CUDACXX:-} ]] || export PATH=/usr/local/cuda/bin:$PATH

echo "== setup"
bash "$ROOT/scripts/setup.sh"

echo "== configure $BUILD_DIR (INT8DIT_CUDA_ARCHS=$ARCHS)"
# The same python3 as setup.sh, so CMake finds the pinned CUTLASS package it installed.
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DINT8DIT_CUDA_ARCHS="$ARCHS" \
  -DINT8DIT_BUILD_TESTS=ON -DPython3_EXECUTABLE="$(command -v python3)"

echo "== build ($JOBS jobs)"
start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "== build took $(($(date +%s) - start)) s"

echo "== C++ tests (ctest)"
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$JOBS")

# ---- Python tests (pytest): the Python package's helper adds them here. ----
# The module joins the same build (no second compile of the core); torch tests skip without PyTorch,
# GPU tests without a CUDA GPU.
echo "== Python module (INT8DIT_BUILD_PYTHON=ON) and pytest"
python3 -c "import pytest, numpy, nanobind" || { echo "pytest, numpy and nanobind are needed: python3 -m pip install pytest numpy nanobind==2.9.2"; exit 1; }
cmake -S "$ROOT" -B "$BUILD_DIR" -DINT8DIT_BUILD_PYTHON=ON -DPython_EXECUTABLE="$(command -v python3)" > /dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target _C
PYTHONPATH="$ROOT/python:$BUILD_DIR/python:$ROOT/tests/python${PYTHONPATH:+:$PYTHONPATH}" \
  python3 -m pytest -q -rs "$ROOT/tests/python"

echo "== all tests passed"
