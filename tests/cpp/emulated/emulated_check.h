// What the emulated `int8dit check` tests share: the check's own inputs, and a scoped switch for the
// bug their kernel models carry.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "ref/half_bits.h"

// The check's activations: normal (sigma 2) bf16 [m, k], one NaN in row 1 where there is a row 1.
inline std::vector<uint16_t> check_activations(int64_t m, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> act(0.0f, 2.0f);
  std::vector<uint16_t> x(static_cast<size_t>(m * k));
  for (uint16_t& v : x) v = int8dit::ref::float_to_bf16(act(rng));
  if (m > 1) x[static_cast<size_t>(k + k / 3)] = 0x7fc0;
  return x;
}

// Sets `slot` to `value` for a scope and back to what it held after: every test leaves the model correct.
template <typename T>
class ScopedSet {
 public:
  ScopedSet(T& slot, T value) : slot_(slot), old_(slot) { slot_ = value; }
  ~ScopedSet() { slot_ = old_; }
  ScopedSet(const ScopedSet&) = delete;
  ScopedSet& operator=(const ScopedSet&) = delete;

 private:
  T& slot_;
  T old_;
};
