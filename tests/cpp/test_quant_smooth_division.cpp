// SmoothQuant's division through a per-channel reciprocal (src/quant/smooth_division.h) gives the bits of
// the IEEE division inside its ranges, and the range checks send everything else to the division.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include "quant/smooth_division.h"

namespace {

using int8dit::quant::divide_by_reciprocal;
using int8dit::quant::dividends_in_fast_range;
using int8dit::quant::divisor_in_fast_range;

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Every divisor significand (2^23 of them) against dividends at the significand edges and random
// ones: the quotient's bits are the division's. (On the CPU in CI, ~0.5 s.)
TEST(SmoothDivision, EveryDivisorSignificandGivesTheIeeeQuotient) {
  std::mt19937 gen(12345);
  std::vector<float> dividends = {1.0f, from_bits(0x3fffffffu), from_bits(0x3f800001u), 1.5f, -from_bits(0x3fbfffffu),
                                  from_bits(0x3faaaaabu)};
  for (int i = 0; i < 4; ++i)
    dividends.push_back(from_bits((gen() & 0x807fffffu) | (static_cast<uint32_t>(127 - 20 + gen() % 40) << 23)));
  int64_t mismatches = 0, checked = 0;
  for (uint32_t m = 0; m < (1u << 23); ++m) {
    const float s = from_bits((127u << 23) | m) * ((m & 1) ? 8.0f : 0.25f);
    const float r = 1.0f / s;
    for (const float x : dividends) {
      mismatches += bits(divide_by_reciprocal(x, s, r)) != bits(x / s);
      ++checked;
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << checked;
}

// The ranges' corners: the smallest and largest dividends over the smallest and largest divisors.
TEST(SmoothDivision, RangeCornersGiveTheIeeeQuotient) {
  std::mt19937 gen(777);
  const float dividend_exps[] = {-60, -59, 0, 59, 60};
  const float divisor_exps[] = {-40, -39, 0, 39, 40};
  int64_t mismatches = 0;
  for (const float ex : dividend_exps) {
    for (const float es : divisor_exps) {
      for (int i = 0; i < 20000; ++i) {
        const float x = std::ldexp(1.0f + (gen() & 0x7fffff) * 0x1p-23f, static_cast<int>(ex)) * ((gen() & 1) ? -1.0f : 1.0f);
        const float s = std::ldexp(1.0f + (gen() & 0x7fffff) * 0x1p-23f, static_cast<int>(es));
        if (!divisor_in_fast_range(s) || !dividends_in_fast_range(std::fabs(x), std::fabs(x))) continue;
        mismatches += bits(divide_by_reciprocal(x, s, 1.0f / s)) != bits(x / s);
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(SmoothDivision, ValuesOutsideTheRangesTakeTheDivision) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(divisor_in_fast_range(1.0f));
  EXPECT_TRUE(divisor_in_fast_range(-0x1p40f));
  for (const float s : {0.0f, 0x1p-41f, 0x1p41f, nan, inf, -inf, 1e-45f}) EXPECT_FALSE(divisor_in_fast_range(s)) << s;
  EXPECT_TRUE(dividends_in_fast_range(0x1p-60f, 0x1p60f));
  EXPECT_FALSE(dividends_in_fast_range(0.0f, 1.0f));       // a zero in the row's values
  EXPECT_FALSE(dividends_in_fast_range(0x1p-61f, 1.0f));   // a tiny one
  EXPECT_FALSE(dividends_in_fast_range(1.0f, 0x1p61f));    // a huge one
  EXPECT_FALSE(dividends_in_fast_range(1.0f, inf));
  EXPECT_FALSE(dividends_in_fast_range(1.0f, nan));        // the row max carries NaN
}

}  // namespace
