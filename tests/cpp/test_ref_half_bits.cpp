// The host bf16/fp16 <-> fp32 conversions the reference decodes inputs and rounds outputs with.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "ref/half_bits.h"

namespace int8dit::ref {
namespace {

bool is_nan16(uint16_t h, uint16_t exp_mask) { return (h & exp_mask) == exp_mask && (h & ~exp_mask & 0x7fff) != 0; }

TEST(RefHalfBits, EveryBf16ValueRoundTripsThroughFloatExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = bf16_to_float(bits);
    if (is_nan16(bits, 0x7f80)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_TRUE(is_nan16(float_to_bf16(f), 0x7f80)) << std::hex << h;
      continue;
    }
    ASSERT_EQ(float_to_bf16(f), bits) << std::hex << h;
  }
}

TEST(RefHalfBits, EveryFp16ValueRoundTripsThroughFloatExactlyIncludingSubnormals) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = fp16_to_float(bits);
    if (is_nan16(bits, 0x7c00)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_TRUE(is_nan16(float_to_fp16(f), 0x7c00)) << std::hex << h;
      continue;
    }
    ASSERT_EQ(float_to_fp16(f), bits) << std::hex << h << " = " << f;
  }
  EXPECT_EQ(fp16_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_float(0x7bff), 65504.0f);
}

TEST(RefHalfBits, Bf16RoundsToNearestEvenAndOverflowsToInf) {
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie: even is 1
  EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie: even is 1 + 2^-6
  EXPECT_EQ(float_to_bf16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)), 0x3f81);  // past the tie
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);               // rounds up to +Inf
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(float_to_bf16(-0.0f), 0x8000);
}

TEST(RefHalfBits, Fp16RoundsToNearestEvenAtNormalsSubnormalsAndOverflow) {
  EXPECT_EQ(float_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie: even is 1
  EXPECT_EQ(float_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(float_to_fp16(65519.0f), 0x7bff);                      // below the halfway point to 65536
  EXPECT_EQ(float_to_fp16(65520.0f), 0x7c00);                      // halfway: ties to even, which is Inf
  EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -25)), 0x0000);         // half the smallest subnormal: to 0
  EXPECT_EQ(float_to_fp16(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 ulps: to 2
  EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)), 0x0400);  // carries into the smallest normal
  EXPECT_EQ(float_to_fp16(-std::ldexp(1.0f, -26)), 0x8000);        // keeps the sign of zero
}

}  // namespace
}  // namespace int8dit::ref
