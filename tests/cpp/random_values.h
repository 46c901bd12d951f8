// Fresh random test inputs (the GPU tests draw new ones every run; the seed is in the test's trace).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace int8dit::test {

// n values drawn uniformly from [lo, hi).
inline std::vector<float> uniform_floats(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// n int8 values drawn uniformly from [-127, 127], the range quantized values take.
inline std::vector<int8_t> uniform_int8(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(-127, 127);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(dist(rng));
  return v;
}

}  // namespace int8dit::test
