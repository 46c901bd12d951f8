#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test int8dit, at pinned versions, and nothing
# that is already there. Needs the CUDA toolkit (nvcc, 13.0) installed already: it is not fetched.
#
#   Debian packages (apt-get, only those missing): cmake ninja-build libgtest-dev ccache
#   Python packages (python3 -m pip, only where the pinned version is not installed): PIP_PINS below
#
# Safe to run again: it checks before installing. Run as root, or with sudo available, when a
# Debian package is missing.
set -euo pipefail

# Pinned Python packages, "name==version", installed with --no-deps (each is a leaf we need for its files).
# Add a pin here (one line each) when the build or the tests need another package.
PIP_PINS=(
  nvidia-cutlass==4.2.0.0  # CUTLASS/CuTe C++ headers (cutlass_library/source/include); cmake/cutlass.cmake finds them
  nanobind==2.9.2          # the Python module's bindings (python/CMakeLists.txt finds it with python3 -m nanobind)
  nvidia-cuda-cuobjdump==13.2.51  # cuobjdump for tests/cpp/test_fatbin_archs.cpp (PyPI has no 13.0 build; 13.2 reads CUDA 13.0 cubins)
  nvidia-cuda-nvdisasm==13.2.51   # its SASS disassembler, same release
)
# Test tools, installed with their dependencies at the pinned version only when the module cannot be
# imported at all (a machine's own numpy or pytest is kept): "module=name==version".
PIP_IF_MISSING=(
  numpy=numpy==2.4.6    # the Python package's arrays (tests/python)
  pytest=pytest==9.2.0  # runs tests/python
)
# The torch layer's tests (tests/python/test_torch_*.py: custom ops, opcheck, torch.compile fullgraph,
# quantize_, SmoothQuant, safetensors round trips) run on the CPU too, so CI runs them. PyPI's torch
# wheel brings the CUDA runtime libraries: 4.7 GB and 95 s on a 2-core machine like CI's (measured
# 2026-12-02), well inside CI's budget. INT8DIT_NO_TORCH=1 leaves it out (those tests then skip).
if [[ -z ${INT8DIT_NO_TORCH:-} ]]; then
  PIP_IF_MISSING+=(
    torch=torch==2.11.0              # int8dit.torch (tests/python/test_torch_*.py)
    safetensors=safetensors==0.8.0   # int8dit.save/load (tests/python/test_torch_cpu.py); diffusers needs >= 0.8
    diffusers=diffusers==0.42.1      # quantize_'s rewrites of real diffusers blocks (test_torch_diffusers_fusions.py)
  )
fi

say() { echo "setup.sh: $*"; }
die() { echo "setup.sh: $*" >&2; exit 1; }

# ---- CUDA toolkit: required, never installed here ----
if ! command -v nvcc >/dev/null 2>&1 && [[ ! -x /usr/local/cuda/bin/nvcc ]]; then
  die "nvcc not found: install the CUDA toolkit 13.0 (https://developer.nvidia.com/cuda-downloads) and put its bin/ on PATH"
fi

# ---- Debian packages ----
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
command -v ccache >/dev/null 2>&1 || missing+=(ccache)
gtest_found=0
for d in /usr/lib/*/cmake/GTest /usr/lib/cmake/GTest /usr/local/lib/cmake/GTest /usr/local/lib/*/cmake/GTest; do
  [[ -f $d/GTestConfig.cmake ]] && gtest_found=1
done
[[ $gtest_found == 1 ]] || missing+=(libgtest-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)

if ((${#missing[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available: install them with your package manager"
  sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run as root or install sudo"
    sudo=(sudo)
  fi
  say "installing ${missing[*]} (apt-get)"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake_version=$(cmake --version | head -n 1 | awk '{print $3}')
if [[ $(printf '%s\n3.25\n' "$cmake_version" | sort -V | head -n 1) != 3.25 ]]; then
  die "cmake $cmake_version is older than 3.25: install a newer one (python3 -m pip install cmake)"
fi

# ---- Python packages ----
pip_flags=(--quiet)
# A distribution's own Python (PEP 668) refuses pip installs; a user-site install of these pins is safe.
if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))' 2>/dev/null &&
  [[ -z ${VIRTUAL_ENV:-} ]]; then
  pip_flags+=(--user --break-system-packages)
fi
pip_pin_flags=("${pip_flags[@]}" --no-deps)
for pin in "${PIP_PINS[@]}"; do
  name=${pin%%==*}
  want=${pin##*==}
  have=$(python3 -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null || true)
  if [[ $have != "$want" ]]; then
    say "installing $pin (pip; found: ${have:-none})"
    python3 -m pip install "${pip_pin_flags[@]}" "$pin"
  fi
done

for entry in "${PIP_IF_MISSING[@]}"; do
  module=${entry%%=*}
  pin=${entry#*=}
  if ! python3 -c "import $module" 2>/dev/null; then
    say "installing $pin (pip, with its dependencies)"
    python3 -m pip install "${pip_flags[@]}" "$pin"
  fi
done

torch_note=", torch, safetensors, diffusers"
[[ -z ${INT8DIT_NO_TORCH:-} ]] || torch_note=" (torch left out: INT8DIT_NO_TORCH is set)"
say "ok: nvcc, cmake $cmake_version, ninja, ccache, GoogleTest, ${PIP_PINS[*]}, numpy, pytest$torch_note"
