#include "core/driver_launch.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/cuda_check.h"
#include "core/driver_api.h"
#include "core/launch_attributes.h"

namespace int8dit::detail {

bool driver_launch_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("INT8DIT_GEMM_LAUNCH");
    return !(env && std::strcmp(env, "runtime") == 0) && driver_api().launch_kernel_ex != nullptr;
  }();
  return enabled;
}

namespace {

// `attributes` as either API's list: the driver's CUlaunchAttribute (value in .value) or the runtime's
// cudaLaunchAttribute (value in .val), whose value unions name their fields alike. Returns the count.
template <class Attribute, auto kValue, class Id>
unsigned fill_attributes(Attribute (&list)[2], const LaunchAttributes& attributes, Id cluster_id, Id programmatic_id) {
  unsigned n = 0;
  if (attributes.cluster_x * attributes.cluster_y > 1) {
    list[n].id = cluster_id;
    auto& value = list[n].*kValue;
    value.clusterDim.x = attributes.cluster_x, value.clusterDim.y = attributes.cluster_y, value.clusterDim.z = 1;
    ++n;
  }
  if (attributes.programmatic) {
    list[n].id = programmatic_id;
    (list[n].*kValue).programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  return n;
}

Status runtime_launch(const void* host_stub, cudaLaunchConfig_t config, const LaunchAttributes& attributes,
                      void** args, const char* what) {
  cudaLaunchAttribute list[2]{};
  config.numAttrs = runtime_launch_attributes(attributes, list);
  config.attrs = list;
  return cuda_status(cudaLaunchKernelExC(&config, host_stub, args), what);
}

Status driver_launch(cudaFunction_t function, const cudaLaunchConfig_t& config, const LaunchAttributes& attributes,
                     void** args, const char* what) {
  CUlaunchConfig c{};
  c.gridDimX = config.gridDim.x, c.gridDimY = config.gridDim.y, c.gridDimZ = config.gridDim.z;
  c.blockDimX = config.blockDim.x, c.blockDimY = config.blockDim.y, c.blockDimZ = config.blockDim.z;
  c.sharedMemBytes = static_cast<unsigned>(config.dynamicSmemBytes);
  c.hStream = reinterpret_cast<CUstream>(config.stream);
  CUlaunchAttribute list[2]{};
  c.numAttrs = driver_launch_attributes(attributes, list);
  c.attrs = list;
  const CUresult r = driver_api().launch_kernel_ex(&c, reinterpret_cast<CUfunction>(function), args, nullptr);
  if (r == CUDA_SUCCESS) return Status::Ok();
  char buffer[32];
  return Status(StatusCode::kCudaError,
                std::string(what) + " failed: cuLaunchKernelEx returned " + driver_error_name(r, buffer));
}

}  // namespace

unsigned runtime_launch_attributes(const LaunchAttributes& attributes, cudaLaunchAttribute (&list)[2]) {
  return fill_attributes<cudaLaunchAttribute, &cudaLaunchAttribute::val>(
      list, attributes, cudaLaunchAttributeClusterDimension, cudaLaunchAttributeProgrammaticStreamSerialization);
}

unsigned driver_launch_attributes(const LaunchAttributes& attributes, CUlaunchAttribute (&list)[2]) {
  return fill_attributes<CUlaunchAttribute, &CUlaunchAttribute::value>(
      list, attributes, CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
}

Status launch_kernel(const void* host_stub, cudaFunction_t function, const cudaLaunchConfig_t& config,
                     const LaunchAttributes& attributes, void** args, const char* what) {
  if (function) return driver_launch(function, config, attributes, args, what);
  return runtime_launch(host_stub, config, attributes, args, what);
}

}  // namespace int8dit::detail
