// SmoothQuant's division through a per-channel reciprocal (src/quant/smooth_division.h) gives the bits of
// the IEEE division inside its ranges, and the range checks send everything else to the division.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "quant/smooth_division.h"
#include "ref/half_bits.h"

namespace {

using int8dit::ref::bits_float;
using int8dit::ref::float_bits;
using int8dit::quant::divide_by_reciprocal;
using int8dit::quant::dividends_in_fast_range;
using int8dit::quant::divisor_in_fast_range;

// Every divisor significand (2^23 of them) against dividends at the significand edges and random
// ones: the quotient's bits are the division's. (On the CPU in CI, ~0.5 s.)
TEST(SmoothDivision, EveryDivisorSignificandGivesTheIeeeQuotient) {
  std::mt19937 gen(12345);
  std::vector<float> dividends = {1.0f, bits_float(0x3fffffffu), bits_float(0x3f800001u), 1.5f, -bits_float(0x3fbfffffu),
                                  bits_float(0x3faaaaabu)};
  for (int i = 0; i < 4; ++i)
    dividends.push_back(bits_float((gen() & 0x807fffffu) | (static_cast<uint32_t>(127 - 20 + gen() % 40) << 23)));
  int64_t mismatches = 0, checked = 0;
  for (uint32_t m = 0; m < (1u << 23); ++m) {
    const float s = bits_float((127u << 23) | m) * ((m & 1) ? 8.0f : 0.25f);
    const float r = 1.0f / s;
    for (const float x : dividends) {
      mismatches += float_bits(divide_by_reciprocal(x, s, r)) != float_bits(x / s);
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
        mismatches += float_bits(divide_by_reciprocal(x, s, 1.0f / s)) != float_bits(x / s);
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

// The grouped kernel divides a whole row through the reciprocals with no range test and lets the row max
// decide (reciprocal_row_max_exact): where it accepts the row, the int8 values and the row max must be the
// IEEE division's, though some quotients (of dividends under 2^-60) may be an ulp off. Rows mix ordinary
// values with zeros, tiny ones (down to subnormal), and now and then a huge value or a divisor outside
// its range (whose reciprocal the op makes NaN). The bounds keep a wide margin: inside the divisor
// range a quotient through the reciprocals is off only where its dividend is below ~2^-100, far under
// any accepted row max, so what this test catches is a check that lets NaN, Inf or those rows through
// (as one accepting NaN row maxima, tried: ~1000 rows wrong), not bounds a little too wide.
TEST(SmoothDivision, RowsTheRowMaxAcceptsQuantizeAsTheDivision) {
  std::mt19937 gen(4242);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  auto log_uniform = [&](int lo, int hi) {
    return std::ldexp(1.0f + (gen() & 0x7fffff) * 0x1p-23f, lo + static_cast<int>(gen() % (hi - lo + 1)));
  };
  auto quantize = [](const std::vector<float>& q, float m, std::vector<int>& out) {
    const float inv = 127.0f / m;
    for (size_t i = 0; i < q.size(); ++i) out[i] = static_cast<int>(std::max(-127.0f, std::min(127.0f, std::nearbyint(q[i] * inv))));
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  int64_t accepted = 0, rejected = 0, inexact_tiny = 0, mismatched_rows = 0;
  constexpr int kCols = 64;
  for (int row = 0; row < 20000; ++row) {
    // The ordinary values' scale, 2^-12 .. 2^16, and the divisors', 2^-8 .. 2^8, or in one row of four
    // anywhere in the divisor range (2^-40 .. 2^40), where most rows' maxima fall outside the bounds.
    const int row_exp = -12 + static_cast<int>(gen() % 29);
    const bool wide_divisors = gen() % 4 == 0;
    std::vector<float> x(kCols), s(kCols);
    for (int k = 0; k < kCols; ++k) {
      const unsigned kind = gen() % 16;
      if (kind == 0) x[k] = (gen() & 1) ? 0.0f : -0.0f;
      else if (kind <= 3) x[k] = log_uniform(-149, -61) * ((gen() & 1) ? -1.0f : 1.0f);  // under 2^-60
      else x[k] = std::ldexp(unit(gen), row_exp);
      s[k] = wide_divisors ? log_uniform(-40, 39) : log_uniform(-8, 7);
    }
    if (gen() % 20 == 0) x[gen() % kCols] = log_uniform(61, 120);  // a huge value
    if (gen() % 20 == 0) s[gen() % kCols] = (gen() & 1) ? 0x1p-45f : 0.0f;  // a divisor outside the range
    std::vector<float> exact(kCols), fast(kCols);
    float m_exact = 0.0f, m_fast = 0.0f;
    for (int k = 0; k < kCols; ++k) {
      exact[k] = x[k] / s[k];
      fast[k] = divide_by_reciprocal(x[k], s[k], divisor_in_fast_range(s[k]) ? 1.0f / s[k] : nan);
      m_exact = std::isnan(m_exact) || std::isnan(exact[k]) ? nan : std::max(m_exact, std::fabs(exact[k]));
      m_fast = std::isnan(m_fast) || std::isnan(fast[k]) ? nan : std::max(m_fast, std::fabs(fast[k]));
    }
    if (!int8dit::quant::reciprocal_row_max_exact(m_fast)) {
      ++rejected;
      continue;
    }
    ++accepted;
    for (int k = 0; k < kCols; ++k) inexact_tiny += float_bits(fast[k]) != float_bits(exact[k]) && fast[k] != 0.0f;
    std::vector<int> q_exact(kCols), q_fast(kCols);
    quantize(exact, m_exact, q_exact);
    quantize(fast, m_fast, q_fast);
    mismatched_rows += float_bits(m_fast) != float_bits(m_exact) || q_fast != q_exact;
  }
  EXPECT_EQ(mismatched_rows, 0) << "of " << accepted << " accepted rows";
  EXPECT_GT(accepted, 10000);
  EXPECT_GT(rejected, 1000);      // rows of tiny values, huge ones, divisors outside the range
  EXPECT_GT(inexact_tiny, 0);     // the premise: some quotients through the reciprocals are not the division's
}

TEST(SmoothDivision, TheRowMaxBoundsRejectNanInfZeroAndTheEdges) {
  using int8dit::quant::reciprocal_row_max_exact;
  EXPECT_TRUE(reciprocal_row_max_exact(1.0f));
  EXPECT_TRUE(reciprocal_row_max_exact(0x1p-12f));
  EXPECT_FALSE(reciprocal_row_max_exact(0x1p20f));
  EXPECT_FALSE(reciprocal_row_max_exact(0x1.fffffep-13f));
  for (const float m : {0.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()})
    EXPECT_FALSE(reciprocal_row_max_exact(m)) << m;
}
