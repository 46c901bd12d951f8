// The CPU reference tests of the fused quantization ops: bf16 rows from floats and poisoned outputs.
#pragma once

#include <cstdint>
#include <vector>

#include "int8dit/reference.h"
#include "ref/half_bits.h"

namespace quant_ref_test {

using int8dit::DType;
using int8dit::StatusCode;
using int8dit::ref::bf16_to_float;
using int8dit::ref::float_to_bf16;

inline constexpr int8_t kPoisonQ = -128;      // never produced: quantized values are clamped to [-127, 127]
inline constexpr float kPoisonScale = -1.0f;  // never produced: scales are >= 0 or NaN

inline std::vector<uint16_t> bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out;
  for (float f : v) out.push_back(float_to_bf16(f));
  return out;
}

struct Outputs {
  Outputs(int64_t rows, int64_t ldq) : q(static_cast<size_t>(rows * ldq), kPoisonQ), scale(static_cast<size_t>(rows), kPoisonScale) {}
  std::vector<int8_t> q;
  std::vector<float> scale;
};

}  // namespace quant_ref_test
