#include "int8dit/types.h"

namespace int8dit {

const char* to_string(DType t) {
  switch (t) {
    case DType::kBF16: return "bf16";
    case DType::kFP16: return "fp16";
    case DType::kFP32: return "fp32";
    case DType::kInt32: return "int32";
    case DType::kInt8: return "int8";
  }
  return "unknown";
}

size_t size_of(DType t) {
  switch (t) {
    case DType::kBF16:
    case DType::kFP16: return 2;
    case DType::kFP32:
    case DType::kInt32: return 4;
    case DType::kInt8: return 1;
  }
  return 0;
}

}  // namespace int8dit
