// Internal: the GEMM's kernel launches, through the driver's cuLaunchKernelEx with a CUfunction looked
// up once by default, or through the runtime's cudaLaunchKernelExC, which maps the kernel's host stub
// to its function on every launch. The GEMM's host cost per call is an issue-3 target
// (host_us_per_call).
#pragma once

#include <cuda_runtime_api.h>

#include "int8dit/status.h"

namespace int8dit::detail {

// Whether launches go through the driver: true unless INT8DIT_GEMM_LAUNCH=runtime is set (read once)
// or this driver has no cuLaunchKernelEx.
bool driver_launch_enabled();

// What a launch asks for besides its grid, block, dynamic shared memory and stream.
struct LaunchAttributes {
  unsigned cluster_x = 1, cluster_y = 1;  // a cluster shape above 1 x 1 adds the cluster attribute
  bool programmatic = false;              // programmatic stream serialization (PDL)
};

// Launches the kernel with `config`'s grid, block, dynamic shared memory and stream (config.attrs is
// not read) and `attributes`: through the driver where `function` is set (cudaGetFuncBySymbol, for the
// current device, where driver_launch_enabled()), else through the runtime with `host_stub`.
Status launch_kernel(const void* host_stub, cudaFunction_t function, const cudaLaunchConfig_t& config,
                     const LaunchAttributes& attributes, void** args, const char* what);

}  // namespace int8dit::detail
