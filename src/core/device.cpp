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

namespace detail {
namespace {

// Where a pointer lives, as far as the check needs it.
struct PointerPlace {
  enum Kind { kDevice, kManaged, kHost } kind = kHost;
  int device = -1;  // for kDevice
};

// One driver call (cuPointerGetAttributes, three attributes) instead of cudaPointerGetAttributes, which
// asks the driver for every attribute it reports: a GEMM call checks six or seven pointers and its host
// time is an issue-3 target (H200 host: the six checks 0.81-1.02 us against 1.24 through the runtime;
// bench/results/h200/README.md). False where the driver query is missing or fails, so the caller asks
// the runtime instead.
bool place_from_driver(const void* ptr, PointerPlace* out) {
  const auto query = driver_api().pointer_get_attributes;
  if (!query) return false;
  unsigned int memory_type = 0;
  unsigned int is_managed = 0;  // zero-initialised: nonzero whether the driver writes one byte or four
  int device = -1;
  CUpointer_attribute attrs[3] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_IS_MANAGED,
                                  CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL};
  void* data[3] = {&memory_type, &is_managed, &device};
  if (query(3, attrs, data, reinterpret_cast<CUdeviceptr>(ptr)) != CUDA_SUCCESS) return false;
  if (is_managed != 0) {
    out->kind = PointerPlace::kManaged;
  } else if (memory_type == CU_MEMORYTYPE_DEVICE) {
    out->kind = PointerPlace::kDevice;
    out->device = device;
  } else {
    out->kind = PointerPlace::kHost;  // pinned, registered, or memory CUDA does not know
  }
  return true;
}

Status place_from_runtime(const void* ptr, const char* name, PointerPlace* out) {
  cudaPointerAttributes attr{};
  cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return Status(StatusCode::kInvalidArgument,
                  std::string(name) + " is not a pointer CUDA knows (" + cudaGetErrorString(err) +
                      "): pass device memory from cudaMalloc or a CUDA tensor");
  }
  out->kind = attr.type == cudaMemoryTypeDevice    ? PointerPlace::kDevice
              : attr.type == cudaMemoryTypeManaged ? PointerPlace::kManaged
                                                   : PointerPlace::kHost;
  out->device = attr.device;
  return Status::Ok();
}

}  // namespace

Status check_device_pointer(const void* ptr, const char* name) {
  PointerPlace place;
  if (!place_from_driver(ptr, &place)) INT8DIT_RETURN_IF_ERROR(place_from_runtime(ptr, name, &place));
  if (place.kind == PointerPlace::kHost) {
    return Status(StatusCode::kInvalidArgument,
                  std::string(name) + " points to host memory: the GPU entry points take device memory "
                                      "(copy it with cudaMemcpy, or call int8dit::ref:: for the CPU)");
  }
  if (place.kind == PointerPlace::kDevice) {
    int dev = 0;
    cudaGetDevice(&dev);
    if (place.device != dev) {
      return Status(StatusCode::kInvalidArgument,
                    std::string(name) + " lives on device " + std::to_string(place.device) +
                        " but the current device is " + std::to_string(dev) + ": call cudaSetDevice first");
    }
  }
  return Status::Ok();
}

}  // namespace detail
}  // namespace int8dit
