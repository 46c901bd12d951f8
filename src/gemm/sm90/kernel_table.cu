// The Hopper kernel table: every configuration generate_instances.py listed in kernel_list.inc.
#include <vector>

#include "gemm/kernel_registry.h"

namespace int8dit::detail {
namespace sm90 {
#define INT8DIT_SM90_KERNEL(name) GemmKernel name();
#include "gemm/sm90/kernel_list.inc"
#undef INT8DIT_SM90_KERNEL
}  // namespace sm90

const std::vector<GemmKernel>& sm90_kernels() {
  static const std::vector<GemmKernel> table = {
#define INT8DIT_SM90_KERNEL(name) sm90::name(),
#include "gemm/sm90/kernel_list.inc"
#undef INT8DIT_SM90_KERNEL
  };
  return table;
}

}  // namespace int8dit::detail
