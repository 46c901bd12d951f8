// MagicDivisor (src/core/magic_division.h): the multiply-high division the row kernels use, against
// '/' for every divisor the kernels see in practice, divisors near powers of two (where the multiplier
// is largest), and dividends at the edges of the 31-bit range and at random.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "core/magic_division.h"

namespace {

using int8dit::detail::MagicDivisor;

void check_divisor(uint32_t d, std::mt19937& gen) {
  const MagicDivisor m = MagicDivisor::of(d);
  std::vector<uint32_t> dividends = {0, 1, d - 1, d, d + 1, 2 * d - 1, 0x7fffffffu, 0x7ffffffeu, 0x40000000u};
  for (uint32_t k : {1u, 2u, 3u, 1000u, 65535u}) {
    const uint64_t edge = uint64_t{k} * d;  // the multiples of d and their neighbours
    if (edge < 0x80000000u) dividends.push_back(static_cast<uint32_t>(edge));
    if (edge - 1 < 0x80000000u) dividends.push_back(static_cast<uint32_t>(edge - 1));
  }
  std::uniform_int_distribution<uint32_t> any(0, 0x7fffffffu);
  for (int i = 0; i < 200; ++i) dividends.push_back(any(gen));
  for (uint32_t n : dividends) {
    if (n > 0x7fffffffu) continue;
    ASSERT_EQ(m.divide(n), n / d) << n << " / " << d;
  }
}

TEST(MagicDivision, MatchesIntegerDivisionOverThe31BitRange) {
  std::mt19937 gen(11);
  for (uint32_t d = 1; d <= 4096; ++d) check_divisor(d, gen);  // heads, tokens of small models
  for (uint32_t s = 2; s <= 30; ++s) {
    const uint32_t p = 1u << s;
    for (uint32_t d : {p - 1, p, p + 1}) check_divisor(d, gen);
  }
  for (uint32_t d : {4608u, 4096u, 4097u, 24u, 3u * 4608u, 75600u, 0x7fffffffu}) check_divisor(d, gen);
  std::uniform_int_distribution<uint32_t> any(2, 0x7fffffffu);
  for (int i = 0; i < 2000; ++i) check_divisor(any(gen), gen);
}

TEST(MagicDivision, MultiplierFitsAndDivisorOneIsKeptApart) {
  EXPECT_EQ(MagicDivisor::of(1).multiplier, 0u);
  EXPECT_EQ(MagicDivisor::of(1).divide(12345), 12345u);
  // A power of two: m = 2^31, the shift its log2 - 1.
  EXPECT_EQ(MagicDivisor::of(1024).multiplier, 0x80000000u);
  EXPECT_EQ(MagicDivisor::of(1024).shift, 9u);
  // Just above one: the multiplier's largest values, still below 2^32.
  EXPECT_GT(MagicDivisor::of(1025).multiplier, 0xff000000u);
}

}  // namespace
