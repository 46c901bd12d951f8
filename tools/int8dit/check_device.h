// Device memory and synchronization for `int8dit check` (cmd_check.cpp, check_fused.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "int8dit/status.h"

namespace int8dit::cli {

// Device memory freed at scope exit.
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  cudaError_t err;
  explicit DeviceBuffer(size_t n) : err(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T))) {}
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  bool upload(const std::vector<T>& h) {
    return cudaMemcpy(ptr, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess;
  }
  std::vector<T> download(size_t n) const {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }
};

// Waits for the GPU; a kernel fault surfaces here with its CUDA error string.
inline Status synchronize() {
  const cudaError_t e = cudaDeviceSynchronize();
  if (e == cudaSuccess) return Status::Ok();
  return Status(StatusCode::kCudaError,
                std::string("cudaDeviceSynchronize: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

}  // namespace int8dit::cli
