// Device memory and synchronization for `int8dit check` (cmd_check.cpp, check_fused.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdio>
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

enum class GpuResult { kAgrees, kMismatch, kUnavailable };

// A GPU call's status as a result: "not implemented"/"not supported" is reported as unavailable, not
// failed; other errors fail, with their message.
inline GpuResult classify(const char* what, const Status& st) {
  if (st.ok()) return GpuResult::kAgrees;
  if (st.code() == StatusCode::kNotImplemented || st.code() == StatusCode::kNotSupported) {
    std::printf("  --    %-34s not run: %s\n", what, st.to_string().c_str());
    return GpuResult::kUnavailable;
  }
  std::printf("  FAIL  %s: %s\n", what, st.to_string().c_str());
  return GpuResult::kMismatch;
}

// Waits for the GPU; a kernel fault surfaces here with its CUDA error string.
inline Status synchronize() {
  const cudaError_t e = cudaDeviceSynchronize();
  if (e == cudaSuccess) return Status::Ok();
  return Status(StatusCode::kCudaError,
                std::string("cudaDeviceSynchronize: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

}  // namespace int8dit::cli
