// The mma.sync family's kernel table: one entry per configuration in inst/sm80_kernel_list.inc.
// Compiled only when INT8DIT_CUDA_ARCHS holds an sm80-family architecture (family_stubs.cpp otherwise).
#include <climits>
#include <string>
#include <vector>

#include "gemm/kernel_registry.h"
#include "gemm/sm80/sm80_gemm_run.h"

namespace int8dit::detail {
namespace {

// Every store and load is predicated, so any validated problem runs; the limits are the kernel's
// 32-bit M, N, K coordinates and the grid's y dimension (N tiles).
template <int BN>
Status sm80_can_implement(const GemmParams& p) {
  if (p.m > INT_MAX || p.n > INT_MAX)
    return Status(StatusCode::kNotSupported, "M = " + std::to_string(p.m) + ", N = " + std::to_string(p.n) +
                                                 ": the mma.sync kernels take M and N below 2^31; split the batch");
  if ((p.n + BN - 1) / BN > 65535)
    return Status(StatusCode::kNotSupported, "N = " + std::to_string(p.n) + " needs more than 65535 tiles of " +
                                                 std::to_string(BN) + " columns; split N");
  return Status::Ok();
}

size_t no_workspace(const GemmParams&) { return 0; }

// Programmatic dependent launch is a Hopper feature: these kernels always run in full stream order.
template <DType Out, int BM, int BN, int BK, int WM, int WN, int ST>
Status run_in_stream_order(const GemmParams& p, cudaStream_t stream, StreamOrder) {
  return sm80::sm80_gemm_run<Out, BM, BN, BK, WM, WN, ST>(p, stream);
}

}  // namespace

const std::vector<GemmKernel>& sm80_kernels() {
  static const std::vector<GemmKernel> table = {
#define INT8DIT_SM80_KERNEL(name, out, bm, bn, bk, wm, wn, st) \
  {#name, KernelFamily::kSm80MmaSync, out, &sm80_can_implement<bn>, &no_workspace, &run_in_stream_order<out, bm, bn, bk, wm, wn, st>},
#include "gemm/sm80/inst/sm80_kernel_list.inc"
#undef INT8DIT_SM80_KERNEL
  };
  return table;
}

}  // namespace int8dit::detail
