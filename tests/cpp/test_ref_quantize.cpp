// The CPU reference of per-row int8 quantization: DESIGN.md's semantics, case by case.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "host_array.h"
#include "int8dit/check.h"
#include "int8dit/reference.h"
#include "ref/half_bits.h"

namespace int8dit {
namespace {

using ref::bf16_to_float;
using ref::float_to_bf16;
using ref::float_to_fp16;

struct Quantized {
  std::vector<int8_t> q;
  std::vector<float> scale;
};

// Quantizes fp32 rows [rows, cols] (dense) with the reference and returns q and the scales.
Quantized quantize_fp32(const std::vector<float>& x, int64_t rows, int64_t cols, const float* smooth = nullptr) {
  Quantized out{std::vector<int8_t>(static_cast<size_t>(rows * cols), 99), std::vector<float>(static_cast<size_t>(rows), -1.0f)};
  QuantizeRowsParams p;
  p.rows = rows;
  p.cols = cols;
  p.x = x.data();
  p.x_type = DType::kFP32;
  p.ldx = cols;
  p.smooth = smooth;
  p.q = out.q.data();
  p.ldq = cols;
  p.scale = out.scale.data();
  Status st = ref::quantize_rows(p);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return out;
}

TEST(RefQuantize, TiesRoundHalfToEvenNotAwayFromZero) {
  // amax = 127 makes inv = 1 exactly, so q = rint(x): the ties show directly.
  const std::vector<float> x = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f, 126.5f, -125.5f};
  const std::vector<int8_t> want = {127, 0, 2, 2, 0, -2, -2, 4, 126, -126};
  Quantized r = quantize_fp32(x, 1, static_cast<int64_t>(x.size()));
  EXPECT_EQ(r.scale[0], 1.0f);
  EXPECT_EQ(r.q, want);
}

TEST(RefQuantize, TiesRoundHalfToEvenFromBf16Input) {
  const std::vector<float> values = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 5.5f, -6.5f};
  const std::vector<int8_t> want = {127, 0, 2, 2, 0, -2, 6, -6};
  std::vector<uint16_t> x;
  for (float v : values) x.push_back(float_to_bf16(v));
  std::vector<int8_t> q(values.size());
  float scale = -1.0f;
  QuantizeRowsParams p;
  p.rows = 1;
  p.cols = static_cast<int64_t>(values.size());
  p.x = x.data();
  p.x_type = DType::kBF16;
  p.ldx = p.cols;
  p.q = q.data();
  p.ldq = p.cols;
  p.scale = &scale;
  ASSERT_TRUE(ref::quantize_rows(p).ok());
  EXPECT_EQ(scale, 1.0f);
  EXPECT_EQ(q, want);
}

TEST(RefQuantize, ScaleIsAmaxOver127AndQuantizesWithInverse127OverAmax) {
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> dist(0.0f, 3.0f);
  const int64_t rows = 37, cols = 333;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (float& v : x) v = dist(rng);
  Quantized r = quantize_fp32(x, rows, cols);
  for (int64_t i = 0; i < rows; ++i) {
    float amax = 0.0f;
    for (int64_t k = 0; k < cols; ++k) amax = std::max(amax, std::fabs(x[i * cols + k]));
    ASSERT_EQ(r.scale[i], amax / 127.0f) << "row " << i;
    const float inv = 127.0f / amax;  // the multiply by inv, not a division by the scale
    for (int64_t k = 0; k < cols; ++k) {
      const float want = std::min(127.0f, std::max(-127.0f, std::nearbyint(x[i * cols + k] * inv)));
      ASSERT_EQ(r.q[i * cols + k], static_cast<int8_t>(want)) << "row " << i << " col " << k;
    }
  }
}

TEST(RefQuantize, ClampsAtPlusMinus127AndNeverGivesMinus128) {
  const std::vector<float> x = {-3.0f, 3.0f, -3.0f, 1.0f};
  Quantized r = quantize_fp32(x, 1, 4);
  EXPECT_EQ(r.q, (std::vector<int8_t>{-127, 127, -127, 42}));  // 127/3 = 42.33
}

TEST(RefQuantize, TinyRowWhoseInverseOverflowsSaturatesAndKeepsZerosZero) {
  // amax = 1e-38: 127 / amax overflows to Inf, so x * inv is +-Inf (saturates to +-127) or NaN for x = 0 (gives 0).
  const std::vector<float> x = {1e-38f, 0.0f, -1e-38f, 0.0f};
  Quantized r = quantize_fp32(x, 1, 4);
  EXPECT_TRUE(std::isinf(127.0f / 1e-38f));
  EXPECT_EQ(r.q, (std::vector<int8_t>{127, 0, -127, 0}));
  EXPECT_EQ(r.scale[0], 1e-38f / 127.0f);
}

TEST(RefQuantize, ZeroRowGivesZerosAndScaleZero) {
  const std::vector<float> x = {0.0f, -0.0f, 0.0f, 0.0f, 1.0f, 2.0f, 3.0f, 4.0f};
  Quantized r = quantize_fp32(x, 2, 4);
  EXPECT_EQ(r.scale[0], 0.0f);
  EXPECT_FALSE(std::signbit(r.scale[0]));
  for (int k = 0; k < 4; ++k) EXPECT_EQ(r.q[k], 0);
  EXPECT_EQ(r.scale[1], 4.0f / 127.0f);
}

TEST(RefQuantize, NanOrInfRowGivesNanScaleAndZerosWhileOtherRowsStayFinite) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {1.0f, nan, 2.0f, 3.0f,    // NaN
                                1.0f, 2.0f, inf, 3.0f,    // +Inf
                                -inf, 2.0f, 1.0f, 3.0f,   // -Inf
                                1.0f, 2.0f, 3.0f, -4.0f};  // finite
  Quantized r = quantize_fp32(x, 4, 4);
  for (int row = 0; row < 3; ++row) {
    EXPECT_TRUE(std::isnan(r.scale[row])) << "row " << row << " scale " << r.scale[row];
    for (int k = 0; k < 4; ++k) EXPECT_EQ(r.q[row * 4 + k], 0) << "row " << row;
  }
  EXPECT_EQ(r.scale[3], 4.0f / 127.0f);
  EXPECT_EQ(r.q[15], -127);

  std::vector<int64_t> bad;
  ASSERT_TRUE(find_nonfinite_rows(r.scale.data(), 4, &bad).ok());
  EXPECT_EQ(bad, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(describe_nonfinite_rows(bad, 4), "3 of 4 rows non-finite (NaN/Inf in the input): 0, 1, 2");
}

TEST(RefQuantize, CheckingModeSaysAllFiniteAndTruncatesLongLists) {
  std::vector<int64_t> bad;
  const std::vector<float> finite = {0.0f, 1.0f};
  ASSERT_TRUE(find_nonfinite_rows(finite.data(), 2, &bad).ok());
  EXPECT_TRUE(bad.empty());
  EXPECT_EQ(describe_nonfinite_rows(bad, 2), "all 2 rows finite");
  EXPECT_EQ(describe_nonfinite_rows({1, 2, 3, 4}, 10, 2), "4 of 10 rows non-finite (NaN/Inf in the input): 1, 2, ... (2 more)");
  EXPECT_EQ(find_nonfinite_rows(nullptr, 3, &bad).code(), StatusCode::kInvalidArgument);
}

TEST(RefQuantize, SmoothQuantDividesBySkBeforeTakingAmax) {
  const std::vector<float> x = {2.0f, 8.0f, -6.0f, 1.0f};
  const std::vector<float> s = {2.0f, 8.0f, 3.0f, 4.0f};  // x / s = {1, 1, -2, 0.25}
  Quantized r = quantize_fp32(x, 1, 4, s.data());
  EXPECT_EQ(r.scale[0], 2.0f / 127.0f);
  const float inv = 127.0f / 2.0f;
  EXPECT_EQ(r.q, (std::vector<int8_t>{static_cast<int8_t>(std::nearbyint(1.0f * inv)),
                                      static_cast<int8_t>(std::nearbyint(1.0f * inv)), -127,
                                      static_cast<int8_t>(std::nearbyint(0.25f * inv))}));
}

TEST(RefQuantize, Fp16InputIsDecodedExactlyIncludingSubnormals) {
  // 2^-24 is the smallest fp16 subnormal; the row's amax is 4 * 2^-24, so q = {127, 32 (31.75), -64 (-63.5 to even)}.
  const std::vector<uint16_t> x = {0x0004, 0x0001, static_cast<uint16_t>(0x8002)};
  std::vector<int8_t> q(3);
  float scale = 0.0f;
  QuantizeRowsParams p;
  p.rows = 1;
  p.cols = 3;
  p.x = x.data();
  p.x_type = DType::kFP16;
  p.ldx = 3;
  p.q = q.data();
  p.ldq = 3;
  p.scale = &scale;
  ASSERT_TRUE(ref::quantize_rows(p).ok());
  EXPECT_EQ(scale, std::ldexp(4.0f, -24) / 127.0f);
  const float inv = 127.0f / std::ldexp(4.0f, -24);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], static_cast<int8_t>(std::nearbyint(std::ldexp(1.0f, -24) * inv)));
  EXPECT_EQ(q[2], static_cast<int8_t>(std::nearbyint(-std::ldexp(2.0f, -24) * inv)));
  EXPECT_EQ(q[2], -64);
}

TEST(RefQuantize, LeadingDimensionsAreHonouredAndPaddingIsNotWritten) {
  const int64_t rows = 3, cols = 5, ldx = 8, ldq = 7;
  std::vector<uint16_t> x(static_cast<size_t>(rows * ldx), float_to_bf16(1000.0f));  // padding would dominate amax
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) x[r * ldx + k] = float_to_bf16(static_cast<float>((r + 1) * (k - 2)));
  std::vector<int8_t> q(static_cast<size_t>(rows * ldq), 55);
  std::vector<float> scale(rows);
  QuantizeRowsParams p;
  p.rows = rows;
  p.cols = cols;
  p.x = x.data();
  p.x_type = DType::kBF16;
  p.ldx = ldx;
  p.q = q.data();
  p.ldq = ldq;
  p.scale = scale.data();
  ASSERT_TRUE(ref::quantize_rows(p).ok());
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(scale[r], static_cast<float>(2 * (r + 1)) / 127.0f) << "row " << r;
    EXPECT_EQ(q[r * ldq + 0], -127);
    EXPECT_EQ(q[r * ldq + 2], 0);
    EXPECT_EQ(q[r * ldq + 4], 127);
    for (int64_t k = cols; k < ldq; ++k) EXPECT_EQ(q[r * ldq + k], 55) << "padding written at row " << r;
  }
}

TEST(RefQuantize, MultithreadedResultEqualsRowByRowResult) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-50.0f, 50.0f);
  const int64_t rows = 1500, cols = 1024;  // > 1M elements: the reference splits rows over threads
  std::vector<uint16_t> x(static_cast<size_t>(rows * cols));
  for (uint16_t& v : x) v = float_to_bf16(dist(rng));
  std::vector<int8_t> q(x.size()), q1(x.size());
  std::vector<float> s(rows), s1(rows);
  QuantizeRowsParams p;
  p.rows = rows;
  p.cols = cols;
  p.x = x.data();
  p.x_type = DType::kBF16;
  p.ldx = cols;
  p.q = q.data();
  p.ldq = cols;
  p.scale = s.data();
  ASSERT_TRUE(ref::quantize_rows(p).ok());
  for (int64_t r = 0; r < rows; ++r) {
    QuantizeRowsParams one = p;
    one.rows = 1;
    one.x = x.data() + r * cols;
    one.q = q1.data() + r * cols;
    one.scale = s1.data() + r;
    ASSERT_TRUE(ref::quantize_rows(one).ok());
  }
  EXPECT_EQ(q, q1);
  EXPECT_EQ(s, s1);
}

TEST(RefQuantize, ZeroRowsIsOkAndWritesNothing) {
  QuantizeRowsParams p;
  p.rows = 0;
  p.cols = 16;
  p.ldx = 16;
  p.ldq = 16;
  EXPECT_TRUE(ref::quantize_rows(p).ok());
}

}  // namespace
}  // namespace int8dit
