// Internal: turning CUDA runtime errors and device-pointer checks into Status values.
#pragma once

#include <cuda_runtime_api.h>

#include <initializer_list>
#include <string>
#include <utility>

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

// Ok if `ptr` is device (or managed) memory the current device can use; a clear error otherwise (null
// included).
Status check_device_pointer(const void* ptr, const char* name);
// The same for each non-null pointer of a call (null ones are the call's optional inputs, skipped), in order (the first error is returned), asking for the
// current device and the thread's remembered allocations once for all of them (pointer_check.cpp).
Status check_device_pointers(std::initializer_list<std::pair<const void*, const char*>> pointers);

}  // namespace int8dit::detail

#define INT8DIT_RETURN_IF_ERROR(expr)      \
  do {                                     \
    ::int8dit::Status _st = (expr);        \
    if (!_st.ok()) return _st;             \
  } while (0)
