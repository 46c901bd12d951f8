// int8dit: element types and the small enums shared by the public API.
#pragma once

#include <cstddef>
#include <cstdint>

namespace int8dit {

enum class DType {
  kBF16,
  kFP16,
  kFP32,
  kInt32,
  kInt8,
};

const char* to_string(DType t);
size_t size_of(DType t);

// Hard limit from DESIGN.md: 127 * 127 * K must stay below 2^31 so the int32 accumulator is exact.
constexpr int64_t kMaxK = 131072;
// K must be a multiple of this: 16 int8 elements = one 16-byte vector (TMA / cp.async granule).
constexpr int64_t kKAlignment = 16;

}  // namespace int8dit
