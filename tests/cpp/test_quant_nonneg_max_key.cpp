// The grouped kernel's row max as an unsigned max of keys (src/quant/nonneg_max_key.h) is the max of
// PTX max.NaN.f32 over values >= 0 or NaN: the same value where no NaN is present, a NaN where one is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "quant/nonneg_max_key.h"
#include "ref/half_bits.h"

namespace {

using int8dit::ref::bits_float;
using int8dit::ref::float_bits;
using int8dit::quant::from_nonneg_max_key;
using int8dit::quant::nonneg_max_key;

// max.NaN.f32: NaN if either is NaN, else the larger (+0 and -0 compare equal).
float max_nan(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<float>::quiet_NaN();
  return a < b ? b : a;
}

float key_max(const std::vector<float>& values) {
  uint32_t m = 0;
  for (float v : values) m = std::max(m, nonneg_max_key(v));
  return from_nonneg_max_key(m);
}
float reference_max(const std::vector<float>& values) {
  float m = 0.0f;
  for (float v : values) m = max_nan(m, v);
  return m;
}

// One warp's 32 values drawn from every class a row max meets: zeros of either sign, subnormals,
// normals, the largest finite, +Inf, and NaNs of either sign and any payload.
float draw(std::mt19937& gen) {
  switch (gen() % 8) {
    case 0: return gen() % 2 ? 0.0f : -0.0f;
    case 1: return bits_float(1u + gen() % 0x007fffffu);                     // subnormal
    case 2: return bits_float(0x00800000u + gen() % (0x7f7fffffu - 0x00800000u));  // normal
    case 3: return std::numeric_limits<float>::max();
    case 4: return std::numeric_limits<float>::infinity();
    case 5: return bits_float((gen() % 2 ? 0x80000000u : 0u) | 0x7f800001u | (gen() & 0x007fffffu));  // NaN
    default: return std::ldexp(static_cast<float>(gen() % 1000000), static_cast<int>(gen() % 80) - 60);
  }
}

TEST(NonnegMaxKey, UnsignedMaxOfKeysIsTheNanPropagatingMax) {
  std::mt19937 gen(2026);
  int nan_sets = 0;
  for (int trial = 0; trial < 200000; ++trial) {
    std::vector<float> values(32);
    // Most sets without NaN or Inf, so the finite order is what most of them check.
    const bool specials = trial % 4 == 0;
    for (float& v : values) {
      do v = draw(gen);
      while (!specials && !std::isfinite(v));
    }
    const float got = key_max(values), want = reference_max(values);
    if (std::isnan(want)) {
      ++nan_sets;
      ASSERT_TRUE(std::isnan(got)) << "trial " << trial;
    } else {
      // The same value, and +0 rather than -0 for an all-zero set (the bits, not just ==).
      ASSERT_EQ(float_bits(got), float_bits(want == 0.0f ? 0.0f : want)) << "trial " << trial;
    }
  }
  EXPECT_GT(nan_sets, 1000);  // the NaN branch was exercised
}

TEST(NonnegMaxKey, EdgesOfTheOrder) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(key_max({-0.0f, bits_float(1u)}), bits_float(1u));  // -0 below the smallest subnormal
  EXPECT_EQ(float_bits(key_max({-0.0f, 0.0f})), float_bits(0.0f));
  EXPECT_EQ(key_max({std::numeric_limits<float>::max(), inf}), inf);
  EXPECT_TRUE(std::isnan(key_max({inf, bits_float(0xffc00000u)})));  // a NaN with its sign set
  EXPECT_TRUE(std::isnan(key_max({bits_float(0x7f800001u), inf})));   // the smallest NaN payload
  EXPECT_EQ(key_max({1.0f, 0.5f, bits_float(0x3f800001u)}), bits_float(0x3f800001u));
}

}  // namespace
