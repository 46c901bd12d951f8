#include "core/driver_launch.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/driver_api.h"

namespace int8dit::detail {

bool driver_launch_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("INT8DIT_GEMM_LAUNCH");
    return !(env && std::strcmp(env, "runtime") == 0) && driver_api().launch_kernel_ex != nullptr;
  }();
  return enabled;
}

Status driver_launch(cudaFunction_t function, const cudaLaunchConfig_t& config, unsigned cluster_x,
                     unsigned cluster_y, bool programmatic, void** args, const char* what) {
  CUlaunchConfig c{};
  c.gridDimX = config.gridDim.x, c.gridDimY = config.gridDim.y, c.gridDimZ = config.gridDim.z;
  c.blockDimX = config.blockDim.x, c.blockDimY = config.blockDim.y, c.blockDimZ = config.blockDim.z;
  c.sharedMemBytes = static_cast<unsigned>(config.dynamicSmemBytes);
  c.hStream = reinterpret_cast<CUstream>(config.stream);
  CUlaunchAttribute attrs[2]{};
  unsigned n = 0;
  if (cluster_x * cluster_y > 1) {
    attrs[n].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attrs[n].value.clusterDim.x = cluster_x, attrs[n].value.clusterDim.y = cluster_y, attrs[n].value.clusterDim.z = 1;
    ++n;
  }
  if (programmatic) {
    attrs[n].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attrs[n].value.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  c.attrs = attrs;
  c.numAttrs = n;
  const CUresult r = driver_api().launch_kernel_ex(&c, reinterpret_cast<CUfunction>(function), args, nullptr);
  if (r == CUDA_SUCCESS) return Status::Ok();
  char buffer[32];
  return Status(StatusCode::kCudaError,
                std::string(what) + " failed: cuLaunchKernelEx returned " + driver_error_name(r, buffer));
}

}  // namespace int8dit::detail
