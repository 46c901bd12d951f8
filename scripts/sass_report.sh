#!/usr/bin/env bash
# What the compiler made of the GEMM kernels, from the objects of a build: per sm_90a configuration the
# tensor-core instructions in its SASS (IGMMA: Hopper's int8 wgmma; IMMA: the mma.sync of the sm_80
# family), the registers a thread gets at launch (the sm_90a kernels then hand registers from the
# producer warp group to the consumers with setmaxnreg), its stack (where ptxas puts spills) and local
# memory. Issue 3 asks for this beside
# the ncu figures: an int8 GEMM without IGMMA, or one that spills, is not the kernel we think it is.
#
#   scripts/sass_report.sh [BUILD_DIR]     (default: build)
#
# Needs cuobjdump and nvdisasm on PATH (the CUDA toolkit's, or the PyPI packages nvidia-cuda-cuobjdump
# and nvidia-cuda-nvdisasm). Exits 1 where an int8 GEMM object has no tensor-core instruction, a
# stack or local memory. (tests/cpp/test_fatbin_archs.cpp asserts the same on the shipped library.)
set -uo pipefail
BUILD=${1:-build}
for tool in cuobjdump nvdisasm; do
  command -v "$tool" > /dev/null || { echo "sass_report: $tool is not on PATH (CUDA toolkit, or pip install nvidia-cuda-$tool)" >&2; exit 2; }
done
mapfile -t objects < <(find "$BUILD" -path "*gemm/sm*/inst/*.cu.o" | sort)
if [[ ${#objects[@]} -eq 0 ]]; then
  echo "sass_report: no GEMM instance objects under $BUILD/ (build the library first)" >&2
  exit 2
fi
status=0
printf "%-44s %6s %6s %5s %6s %6s %s\n" configuration IGMMA IMMA regs stack local verdict
for o in "${objects[@]}"; do
  name=$(basename "$o" .cu.o)
  sass=$(cuobjdump -sass "$o" 2> /dev/null)
  igmma=$(grep -c "IGMMA" <<< "$sass")
  imma=$(grep -cE "\bIMMA\b" <<< "$sass")
  # The kernel's resource line: REG (per thread, as launched), LOCAL (bytes of local memory a thread).
  res=$(cuobjdump -res-usage "$o" 2> /dev/null | grep -A1 "Function" | grep -oE "REG:[0-9]+|STACK:[0-9]+|LOCAL:[0-9]+" | sort -u | tr '\n' ' ')
  regs=$(grep -oE "REG:[0-9]+" <<< "$res" | cut -d: -f2 | sort -n | tail -n 1)
  local_bytes=$(grep -oE "LOCAL:[0-9]+" <<< "$res" | cut -d: -f2 | sort -n | tail -n 1)
  stack_bytes=$(grep -oE "STACK:[0-9]+" <<< "$res" | cut -d: -f2 | sort -n | tail -n 1)
  verdict=ok
  if (( igmma + imma == 0 )); then verdict="NO TENSOR-CORE INSTRUCTION"; status=1; fi
  if (( ${stack_bytes:-0} > 0 )); then verdict="STACK (spills? ptxas -v says)"; status=1; fi
  if (( ${local_bytes:-0} > 0 )); then verdict="LOCAL MEMORY"; status=1; fi
  printf "%-44s %6d %6d %5s %6s %6s %s\n" "$name" "$igmma" "$imma" "${regs:-?}" "${stack_bytes:-?}" "${local_bytes:-?}" "$verdict"
done
exit $status
