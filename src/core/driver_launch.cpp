#include "core/driver_launch.h"

#include <cuda.h>
#include <cudaTypedefs.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace int8dit::detail {
namespace {

struct DriverEntryPoints {
  PFN_cuLaunchKernelEx_v11060 launch = nullptr;
  PFN_cuGetErrorName_v6000 error_name = nullptr;
};

// Found through the runtime, so the library does not link against libcuda itself.
const DriverEntryPoints& entry_points() {
  static const DriverEntryPoints e = [] {
    DriverEntryPoints d;
    const char* env = std::getenv("INT8DIT_GEMM_LAUNCH");
    if (env && std::strcmp(env, "runtime") == 0) return d;
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuLaunchKernelEx", &p, 12000, cudaEnableDefault, &found) == cudaSuccess &&
        found == cudaDriverEntryPointSuccess)
      d.launch = reinterpret_cast<PFN_cuLaunchKernelEx_v11060>(p);
    if (cudaGetDriverEntryPointByVersion("cuGetErrorName", &p, 6000, cudaEnableDefault, &found) == cudaSuccess &&
        found == cudaDriverEntryPointSuccess)
      d.error_name = reinterpret_cast<PFN_cuGetErrorName_v6000>(p);
    cudaGetLastError();  // a failed query must not surface as a later launch's error
    return d;
  }();
  return e;
}

}  // namespace

bool driver_launch_enabled() { return entry_points().launch != nullptr; }

Status driver_launch(cudaFunction_t function, const cudaLaunchConfig_t& config, unsigned cluster_x,
                     unsigned cluster_y, void** args, const char* what) {
  CUlaunchConfig c{};
  c.gridDimX = config.gridDim.x, c.gridDimY = config.gridDim.y, c.gridDimZ = config.gridDim.z;
  c.blockDimX = config.blockDim.x, c.blockDimY = config.blockDim.y, c.blockDimZ = config.blockDim.z;
  c.sharedMemBytes = static_cast<unsigned>(config.dynamicSmemBytes);
  c.hStream = reinterpret_cast<CUstream>(config.stream);
  CUlaunchAttribute cluster{};
  cluster.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
  cluster.value.clusterDim.x = cluster_x, cluster.value.clusterDim.y = cluster_y, cluster.value.clusterDim.z = 1;
  c.attrs = &cluster;
  c.numAttrs = cluster_x * cluster_y > 1 ? 1 : 0;
  const CUresult r = entry_points().launch(&c, reinterpret_cast<CUfunction>(function), args, nullptr);
  if (r == CUDA_SUCCESS) return Status::Ok();
  const char* name = nullptr;
  if (entry_points().error_name) entry_points().error_name(r, &name);
  return Status(StatusCode::kCudaError, std::string(what) + " failed: cuLaunchKernelEx returned " +
                                            (name ? name : "CUresult " + std::to_string(static_cast<int>(r))));
}

}  // namespace int8dit::detail
