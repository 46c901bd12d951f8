// Bit-for-bit comparison of two results of the same computation (the programmatic-launch tests: a
// kernel started early must give exactly what plain stream order gives).
#pragma once

#include <cstddef>
#include <cstring>
#include <vector>

namespace int8dit::test {

// How many elements of `got` differ from `want` in their bit pattern (NaN payloads and signed zeros
// included); the sizes must agree, else every element counts as differing.
template <class T>
size_t differing_elements(const std::vector<T>& got, const std::vector<T>& want) {
  if (got.size() != want.size()) return got.size() > want.size() ? got.size() : want.size();
  size_t differing = 0;
  for (size_t i = 0; i < got.size(); ++i) differing += std::memcmp(&got[i], &want[i], sizeof(T)) != 0;
  return differing;
}

}  // namespace int8dit::test
