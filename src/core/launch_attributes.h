// Internal: the launch attribute lists of core/driver_launch.h's launch_kernel, for the runtime's and
// the driver's launch calls, from one LaunchAttributes (declared here so that tests can check them).
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "core/driver_launch.h"

namespace int8dit::detail {

// Fill `list` with the cluster shape (where above 1 x 1), then programmatic stream serialization
// (where asked); return how many entries were filled.
unsigned runtime_launch_attributes(const LaunchAttributes& attributes, cudaLaunchAttribute (&list)[2]);
unsigned driver_launch_attributes(const LaunchAttributes& attributes, CUlaunchAttribute (&list)[2]);

}  // namespace int8dit::detail
