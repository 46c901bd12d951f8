// Host-side checks the GPU entry points add to validate(): input types the kernels are built for,
// and every pointer being device memory. They run before any launch, so an error writes nothing.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "core/cuda_check.h"
#include "int8dit/types.h"

namespace int8dit::quant {

inline Status check_gpu_input_type(DType t, const char* op) {
  if (t == DType::kBF16 || t == DType::kFP16) return Status::Ok();
  return Status(StatusCode::kNotSupported, std::string(op) + ": input type " + to_string(t) +
                                               " has no GPU kernel: pass bf16 or fp16 (fp32 is CPU reference only)");
}

// Each non-null pointer must be memory the current device can use.
inline Status check_device_pointers(std::initializer_list<std::pair<const void*, const char*>> ptrs) {
  return detail::check_device_pointers(ptrs);
}

}  // namespace int8dit::quant
