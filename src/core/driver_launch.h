// Internal: kernel launches through the driver's cuLaunchKernelEx with a CUfunction looked up once,
// instead of the runtime's cudaLaunchKernelExC, which maps the kernel's host stub to its function on
// every launch. For the GEMM, whose host cost per call is an issue-3 target (host_us_per_call).
#pragma once

#include <cuda_runtime_api.h>

#include "int8dit/status.h"

namespace int8dit::detail {

// Whether launches go through the driver: true unless INT8DIT_GEMM_LAUNCH=runtime is set (read once)
// or this driver has no cuLaunchKernelEx.
bool driver_launch_enabled();

// Launches `function` (from cudaGetFuncBySymbol, for the current device) with `config`'s grid, block,
// dynamic shared memory and stream (config.attrs is not read), the cluster shape (cluster_x * cluster_y
// > 1 adds the attribute) and, where `programmatic`, programmatic stream serialization (PDL).
Status driver_launch(cudaFunction_t function, const cudaLaunchConfig_t& config, unsigned cluster_x,
                     unsigned cluster_y, bool programmatic, void** args, const char* what);

}  // namespace int8dit::detail
