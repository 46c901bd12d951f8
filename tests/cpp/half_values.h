// Test helper: fp32 values as the bf16 bit patterns the CPU reference takes (round to nearest even).
#pragma once

#include <cstdint>
#include <vector>

#include "ref/half_bits.h"

inline std::vector<uint16_t> bf16s(const std::vector<float>& v) {
  std::vector<uint16_t> h;
  h.reserve(v.size());
  for (float f : v) h.push_back(int8dit::ref::float_to_bf16(f));
  return h;
}
