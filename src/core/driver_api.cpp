#include "core/driver_api.h"

#include <cuda_runtime_api.h>

#include <cstdio>

namespace int8dit::detail {
namespace {

template <typename Fn>
Fn lookup(const char* symbol, int version) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult found{};
  if (cudaGetDriverEntryPointByVersion(symbol, &p, version, cudaEnableDefault, &found) == cudaSuccess &&
      found == cudaDriverEntryPointSuccess)
    return reinterpret_cast<Fn>(p);
  return nullptr;
}

}  // namespace

const DriverApi& driver_api() {
  static const DriverApi api = [] {
    DriverApi d;
    d.launch_kernel_ex = lookup<PFN_cuLaunchKernelEx_v11060>("cuLaunchKernelEx", 12000);
    d.get_error_name = lookup<PFN_cuGetErrorName_v6000>("cuGetErrorName", 6000);
    d.pointer_get_attributes = lookup<PFN_cuPointerGetAttributes_v7000>("cuPointerGetAttributes", 7000);
    cudaGetLastError();  // a failed query must not surface as a later call's error
    return d;
  }();
  return api;
}

const char* driver_error_name(CUresult r, char (&buffer)[32]) {
  const char* name = nullptr;
  if (driver_api().get_error_name && driver_api().get_error_name(r, &name) == CUDA_SUCCESS && name) return name;
  std::snprintf(buffer, sizeof buffer, "CUresult %d", static_cast<int>(r));
  return buffer;
}

}  // namespace int8dit::detail
