// Internal: the few CUDA driver functions the library calls directly, found once through the runtime
// (cudaGetDriverEntryPointByVersion), so the library does not link against libcuda itself. Each is
// null where this driver lacks it; callers fall back to the runtime then.
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>

namespace int8dit::detail {

struct DriverApi {
  PFN_cuLaunchKernelEx_v11060 launch_kernel_ex = nullptr;
  PFN_cuGetErrorName_v6000 get_error_name = nullptr;
  PFN_cuPointerGetAttributes_v7000 pointer_get_attributes = nullptr;
};

const DriverApi& driver_api();

// "CUDA_ERROR_..." for r, or "CUresult <number>" where the driver cannot name it.
const char* driver_error_name(CUresult r, char (&buffer)[32]);

}  // namespace int8dit::detail
