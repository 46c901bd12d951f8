// Empty kernel tables for the families trimmed from INT8DIT_CUDA_ARCHS, so dispatch can say
// "not built for sm_XX" instead of failing to link.
#include "gemm/kernel_registry.h"

namespace int8dit::detail {

#ifndef INT8DIT_HAVE_SM90
const std::vector<GemmKernel>& sm90_kernels() {
  static const std::vector<GemmKernel> none;
  return none;
}
const GemmKernel* sm90_heuristic(const GemmParams&, int) { return nullptr; }
#endif

#ifndef INT8DIT_HAVE_SM80
const std::vector<GemmKernel>& sm80_kernels() {
  static const std::vector<GemmKernel> none;
  return none;
}
const GemmKernel* sm80_heuristic(const GemmParams&, int) { return nullptr; }
#endif

}  // namespace int8dit::detail
