// Internal: turning CUDA runtime errors and device-pointer checks into Status values.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "int8dit/status.h"

namespace int8dit::detail {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  return Status(StatusCode::kCudaError,
                std::string(what) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

// The error of the last launch on this thread, if any (cleared as it is read).
inline Status last_launch_status(const char* kernel) {
  return cuda_status(cudaGetLastError(), kernel);
}

// Ok if `ptr` is device (or managed) memory the current device can use; a clear error otherwise.
Status check_device_pointer(const void* ptr, const char* name);

}  // namespace int8dit::detail

#define INT8DIT_RETURN_IF_ERROR(expr)      \
  do {                                     \
    ::int8dit::Status _st = (expr);        \
    if (!_st.ok()) return _st;             \
  } while (0)
