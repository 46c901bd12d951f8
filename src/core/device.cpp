#include "int8dit/device.h"

#include <cuda_runtime_api.h>

#include <string>

#include "core/cuda_check.h"
#include "core/driver_api.h"

namespace int8dit {

KernelFamily kernel_family_for(int cc) {
  if (cc >= 90 && cc < 100) return KernelFamily::kSm90Wgmma;
  if (cc >= 80) return KernelFamily::kSm80MmaSync;  // sm_80/86/87/89, and newer parts via PTX-free SASS of sm80 where built
  return KernelFamily::kNone;
}

const char* to_string(KernelFamily f) {
  switch (f) {
    case KernelFamily::kNone: return "none (int8dit needs compute capability 8.0 or newer)";
    case KernelFamily::kSm80MmaSync: return "sm80 mma.sync (Ampere/Ada: cp.async + mma.sync m16n8k32 s8)";
    case KernelFamily::kSm90Wgmma: return "sm90 wgmma (Hopper: TMA + wgmma, warp-specialized)";
  }
  return "unknown";
}

const char* built_architectures() { return INT8DIT_BUILT_ARCHS; }
const char* version() { return INT8DIT_VERSION; }

static bool family_built(KernelFamily f) {
  switch (f) {
#ifdef INT8DIT_HAVE_SM90
    case KernelFamily::kSm90Wgmma: return true;
#endif
#ifdef INT8DIT_HAVE_SM80
    case KernelFamily::kSm80MmaSync: return true;
#endif
    default: return false;
  }
}

Status current_device(DeviceInfo* out) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();  // clear the sticky "no device" error so later calls start clean
    std::string why = err == cudaSuccess ? "the driver reports no devices"
                                         : std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    return Status(StatusCode::kNotSupported, "no CUDA GPU found (" + why + ")");
  }
  int dev = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDevice(&dev), "cudaGetDevice"));
  cudaDeviceProp prop{};
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties"));
  DeviceInfo info;
  info.index = dev;
  info.name = prop.name;
  info.cc = prop.major * 10 + prop.minor;
  info.sm_count = prop.multiProcessorCount;
  info.memory_bytes = prop.totalGlobalMem;
  info.l2_bytes = static_cast<size_t>(prop.l2CacheSize);
  cudaDeviceGetAttribute(&info.clock_khz, cudaDevAttrClockRate, dev);
  info.family = kernel_family_for(info.cc);
  info.family_built = family_built(info.family);
  *out = info;
  return Status::Ok();
}

}  // namespace int8dit
