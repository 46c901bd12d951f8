// The CPU reference of the W8A8 GEMM: exact int32 accumulation, the fp32 epilogue in DESIGN.md's
// order, one rounding to the output type, scale modes, leading dimensions, NaN propagation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "host_array.h"
#include "int8dit/reference.h"
#include "ref/half_bits.h"

namespace int8dit {
namespace {

using ref::bf16_to_float;
using ref::float_to_bf16;

#define ASSERT_OK(expr)                        \
  do {                                         \
    const ::int8dit::Status _st = (expr);      \
    ASSERT_TRUE(_st.ok()) << _st.to_string();  \
  } while (0)

// A problem with lda = ldb = K and ldd = N rounded up to 8 (16-byte output rows, as validation
// asks), with host buffers owned by the object.
struct Problem {
  int64_t m, n, k, ldd;
  HostArray<int8_t> a, b;
  HostArray<float> sa, sb, bias;
  HostArray<uint8_t> d;  // raw bytes, sized for the widest output

  Problem(int64_t m_, int64_t n_, int64_t k_)
      : m(m_), n(n_), k(k_), ldd((n_ + 7) / 8 * 8), a(m_ * k_), b(n_ * k_), sa(m_, 1.0f), sb(n_, 1.0f), bias(n_, 0.0f),
        d(m_ * ldd * 4, 0xAB) {}

  GemmParams params(DType out) {
    GemmParams p;
    p.m = m;
    p.n = n;
    p.k = k;
    p.a = a.data();
    p.lda = k;
    p.b = b.data();
    p.ldb = k;
    p.d = d.data();
    p.d_type = out;
    p.ldd = ldd;
    if (out != DType::kInt32) {
      p.scale_a = sa.data();
      p.scale_b = sb.data();
    }
    return p;
  }
  void fill_random(std::mt19937& rng) {
    std::uniform_int_distribution<int> q(-127, 127);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int8_t>(q(rng));
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int8_t>(q(rng));
  }
  int32_t* i32() { return reinterpret_cast<int32_t*>(d.data()); }
  float* f32() { return reinterpret_cast<float*>(d.data()); }
  uint16_t* u16() { return reinterpret_cast<uint16_t*>(d.data()); }
};

int64_t dot64(const int8_t* a, const int8_t* b, int64_t k) {
  int64_t s = 0;
  for (int64_t i = 0; i < k; ++i) s += int64_t{a[i]} * int64_t{b[i]};
  return s;
}

TEST(RefGemm, RawInt32IsExactAtMaxKWithAllValuesAt127) {
  const int64_t k = kMaxK;  // 131072: 127 * 127 * K = 2'114'060'288 < 2^31
  Problem pr(2, 3, k);
  for (int64_t i = 0; i < k; ++i) {
    pr.a[i] = 127;                         // row 0: all +127
    pr.a[k + i] = (i % 2) ? 127 : -127;    // row 1: alternating
    pr.b[i] = 127;                         // col 0: all +127
    pr.b[k + i] = -127;                    // col 1: all -127
    pr.b[2 * k + i] = (i % 2) ? 127 : -127;  // col 2: alternating
  }
  ASSERT_OK(ref::gemm_w8a8(pr.params(DType::kInt32)));
  const int32_t full = 127 * 127 * static_cast<int32_t>(k);
  EXPECT_EQ(full, 2114060288);
  EXPECT_EQ(pr.i32()[0], full);
  EXPECT_EQ(pr.i32()[1], -full);
  EXPECT_EQ(pr.i32()[2], 0);
  EXPECT_EQ(pr.i32()[pr.ldd + 0], 0);
  EXPECT_EQ(pr.i32()[pr.ldd + 1], 0);
  EXPECT_EQ(pr.i32()[pr.ldd + 2], full);
}

TEST(RefGemm, RawInt32EqualsInt64SumOnRaggedRandomShapes) {
  std::mt19937 rng(std::random_device{}());
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 16}, {7, 13, 48}, {65, 33, 160}, {129, 7, 1024}}) {
    Problem pr(m, n, k);
    pr.fill_random(rng);
    ASSERT_OK(ref::gemm_w8a8(pr.params(DType::kInt32)));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        ASSERT_EQ(pr.i32()[i * pr.ldd + j], dot64(pr.a.data() + i * k, pr.b.data() + j * k, k))
            << "M=" << m << " N=" << n << " K=" << k << " at (" << i << ", " << j << ")";
  }
}

// fp32 steps kept apart (volatile) so the test's own compiler cannot fuse them.
float unfused(int32_t acc, float sa, float sb, float bias) {
  volatile float s = sa * sb;
  volatile float y = static_cast<float>(acc) * s;
  return y + bias;
}

TEST(RefGemm, EpilogueMultipliesScalesFirstThenAddsBiasWithoutFma) {
  // Find inputs where the three plausible orders disagree, then check the reference picks DESIGN.md's.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> acc_dist(-2000000, 2000000);
  std::uniform_real_distribution<float> s_dist(1e-4f, 1e-1f), b_dist(-3.0f, 3.0f);
  int witnesses_order = 0, witnesses_fma = 0;
  for (int t = 0; t < 200000 && (witnesses_order < 20 || witnesses_fma < 20); ++t) {
    const int32_t acc = acc_dist(rng);
    const float sa = s_dist(rng), sb = s_dist(rng), bias = b_dist(rng);
    const float want = unfused(acc, sa, sb, bias);
    volatile float left = static_cast<float>(acc) * sa;
    volatile float left2 = left * sb;
    const float other_order = left2 + bias;
    const float fused = std::fma(static_cast<float>(acc), sa * sb, bias);
    if (other_order == want && fused == want) continue;
    EXPECT_EQ(ref::epilogue_value(acc, sa, sb, bias), want) << "acc=" << acc << " sa=" << sa << " sb=" << sb << " bias=" << bias;
    witnesses_order += other_order != want;
    witnesses_fma += fused != want;
  }
  EXPECT_GE(witnesses_order, 20) << "no inputs found where (acc*sa)*sb differs: the test checks nothing";
  EXPECT_GE(witnesses_fma, 20) << "no inputs found where fma differs: the test checks nothing";
}

TEST(RefGemm, Fp32OutputEqualsEpilogueOfExactAccumulator) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> s_dist(1e-3f, 2e-2f), b_dist(-1.0f, 1.0f);
  Problem pr(9, 24, 272);
  pr.fill_random(rng);
  for (size_t i = 0; i < pr.sa.size(); ++i) pr.sa[i] = s_dist(rng);
  for (size_t i = 0; i < pr.sb.size(); ++i) pr.sb[i] = s_dist(rng), pr.bias[i] = b_dist(rng);
  GemmParams p = pr.params(DType::kFP32);
  p.bias = pr.bias.data();
  ASSERT_OK(ref::gemm_w8a8(p));
  for (int64_t i = 0; i < pr.m; ++i)
    for (int64_t j = 0; j < pr.n; ++j) {
      const auto acc = static_cast<int32_t>(dot64(pr.a.data() + i * pr.k, pr.b.data() + j * pr.k, pr.k));
      ASSERT_EQ(pr.f32()[i * pr.ldd + j], unfused(acc, pr.sa[i], pr.sb[j], pr.bias[j])) << "(" << i << ", " << j << ")";
    }
}

// A 1x1 problem whose accumulator is a0 (one product a0 * 1, the other 15 zero), scaled by sa and
// offset by bias: y = a0 * sa + bias, chosen to land on rounding ties of the 16-bit formats.
struct TieCase {
  int32_t a0;
  float sa, bias;
  uint16_t want;
};

uint16_t run_tie(const TieCase& c, DType out) {
  Problem pr(1, 1, 16);
  std::fill(pr.a.data(), pr.a.data() + 16, 0);
  std::fill(pr.b.data(), pr.b.data() + 16, 0);
  pr.a[0] = static_cast<int8_t>(c.a0);
  pr.b[0] = 1;
  pr.sa[0] = c.sa;
  pr.bias[0] = c.bias;
  GemmParams p = pr.params(out);
  p.bias = pr.bias.data();
  const Status st = ref::gemm_w8a8(p);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return pr.u16()[0];
}

TEST(RefGemm, Bf16OutputRoundsOnceToNearestEven) {
  const float u = std::ldexp(1.0f, -8);  // half a bf16 ulp at 1.0 (bf16 keeps 8 significant bits)
  const TieCase cases[] = {
      {127, 1.0f / 128, 0.0f, 0x3f7e},           // 0.9921875: exact
      {1, 1.0f + u, 0.0f, 0x3f80},               // tie between 1 and 1 + 2^-7: even is 1
      {1, 1.0f + 3 * u, 0.0f, 0x3f82},           // tie between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6
      {-1, 1.0f + u, 0.0f, 0xbf80},              // negative tie
      // Rounded once: the fp32 sum 1 + 2^-8 + 2^-10 is past the tie and rounds up. Rounding the
      // product to bf16 before adding the bias would give 1 + 2^-10 and then 1.
      {1, 1.0f + u, std::ldexp(1.0f, -10), 0x3f81},
  };
  for (const TieCase& c : cases)
    EXPECT_EQ(run_tie(c, DType::kBF16), c.want) << "a0=" << c.a0 << " sa=" << c.sa << " bias=" << c.bias;
}

TEST(RefGemm, Fp16OutputRoundsOnceToNearestEvenAndOverflowsToInf) {
  const float u = std::ldexp(1.0f, -11);  // half an fp16 ulp at 1.0 (fp16 keeps 11 significant bits)
  const TieCase cases[] = {
      {1, 1.0f + u, 0.0f, 0x3c00},                   // tie between 1 and 1 + 2^-10: even is 1
      {1, 1.0f + 3 * u, 0.0f, 0x3c02},               // tie: even is 1 + 2^-9
      {1, 1.0f + u, std::ldexp(1.0f, -13), 0x3c01},  // past the tie once the bias is in: rounds up
      {127, 1000.0f, 0.0f, 0x7c00},                  // 127000 > 65504: +Inf
      {1, std::ldexp(1.0f, -25), 0.0f, 0x0000},      // half the smallest subnormal: tie to even 0
      {3, std::ldexp(1.0f, -25), 0.0f, 0x0002},      // 1.5 subnormal ulps: tie to even 2
  };
  for (const TieCase& c : cases)
    EXPECT_EQ(run_tie(c, DType::kFP16), c.want) << "a0=" << c.a0 << " sa=" << c.sa << " bias=" << c.bias;
}

TEST(RefGemm, PerTensorScaleEqualsPerRowScaleWithTheSameValueEverywhere) {
  std::mt19937 rng(std::random_device{}());
  Problem pr(17, 40, 64);
  pr.fill_random(rng);
  for (size_t i = 0; i < pr.sa.size(); ++i) pr.sa[i] = 0.0125f;
  for (size_t i = 0; i < pr.sb.size(); ++i) pr.sb[i] = 0.003f;
  ASSERT_OK(ref::gemm_w8a8(pr.params(DType::kFP32)));
  std::vector<float> per_row(pr.f32(), pr.f32() + pr.m * pr.ldd);

  HostArray<float> one_a(1, 0.0125f), one_b(1, 0.003f);
  GemmParams p = pr.params(DType::kFP32);
  p.scale_a = one_a.data();
  p.scale_a_mode = ScaleMode::kPerTensor;
  p.scale_b = one_b.data();
  p.scale_b_mode = ScaleMode::kPerTensor;
  ASSERT_OK(ref::gemm_w8a8(p));
  EXPECT_EQ(std::vector<float>(pr.f32(), pr.f32() + pr.m * pr.ldd), per_row);
}

TEST(RefGemm, PerRowAndPerColScalesApplyToTheirOwnRowAndColumn) {
  Problem pr(3, 2, 16);
  std::fill(pr.a.data(), pr.a.data() + pr.a.size(), 1);
  std::fill(pr.b.data(), pr.b.data() + pr.b.size(), 1);  // acc = 16 everywhere
  pr.sa[0] = 1.0f, pr.sa[1] = 2.0f, pr.sa[2] = 4.0f;
  pr.sb[0] = 0.5f, pr.sb[1] = 8.0f;
  pr.bias[0] = 1.0f, pr.bias[1] = -1.0f;
  GemmParams p = pr.params(DType::kFP32);
  p.bias = pr.bias.data();
  ASSERT_OK(ref::gemm_w8a8(p));
  const float want[] = {16 * 0.5f + 1, 16 * 8.0f - 1, 16 * 1.0f + 1, 16 * 16.0f - 1, 16 * 2.0f + 1, 16 * 32.0f - 1};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(pr.f32()[i / 2 * pr.ldd + i % 2], want[i]) << "element " << i;

  HostArray<float> one(1, 3.0f);
  p.scale_a = one.data();
  p.scale_a_mode = ScaleMode::kPerTensor;  // every row uses 3.0 now
  ASSERT_OK(ref::gemm_w8a8(p));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(pr.f32()[i * pr.ldd], 16 * 1.5f + 1);
    EXPECT_EQ(pr.f32()[i * pr.ldd + 1], 16 * 24.0f - 1);
  }
}

TEST(RefGemm, LeadingDimensionsAreHonouredAndPaddingIsNotWritten) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> q(-127, 127);
  const int64_t m = 5, n = 6, k = 32, lda = 48, ldb = 64, ldd = 16;  // padded, 16-byte rows
  HostArray<int8_t> a(m * lda, 100), b(n * ldb, -100);  // padding that would change every sum
  for (int64_t i = 0; i < m; ++i)
    for (int64_t kk = 0; kk < k; ++kk) a[i * lda + kk] = static_cast<int8_t>(q(rng));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t kk = 0; kk < k; ++kk) b[j * ldb + kk] = static_cast<int8_t>(q(rng));
  HostArray<int32_t> d(m * ldd, 0x7eadbeef);
  GemmParams p;
  p.m = m, p.n = n, p.k = k;
  p.a = a.data(), p.lda = lda, p.b = b.data(), p.ldb = ldb;
  p.d = d.data(), p.d_type = DType::kInt32, p.ldd = ldd;
  ASSERT_OK(ref::gemm_w8a8(p));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j)
      EXPECT_EQ(d[i * ldd + j], dot64(a.data() + i * lda, b.data() + j * ldb, k)) << "(" << i << ", " << j << ")";
    for (int64_t j = n; j < ldd; ++j) EXPECT_EQ(d[i * ldd + j], 0x7eadbeef) << "padding written at row " << i;
  }
}

TEST(RefGemm, NanScaleRowFromNanInputGivesNanOutputRowAndOthersFinite) {
  // Quantize X with one NaN row, then run the GEMM: that row of D is NaN, never silently zero.
  const int64_t m = 3, n = 8, k = 16;
  std::vector<uint16_t> x(m * k);
  for (int64_t i = 0; i < m * k; ++i) x[i] = float_to_bf16(static_cast<float>(i % 7) - 3.0f);
  x[1 * k + 5] = 0x7fc0;  // bf16 NaN in row 1
  Problem pr(m, n, k);
  QuantizeRowsParams qp;
  qp.rows = m, qp.cols = k, qp.x = x.data(), qp.x_type = DType::kBF16, qp.ldx = k;
  qp.q = pr.a.data(), qp.ldq = k, qp.scale = pr.sa.data();
  ASSERT_OK(ref::quantize_rows(qp));
  std::fill(pr.b.data(), pr.b.data() + pr.b.size(), 1);
  for (DType out : {DType::kBF16, DType::kFP16, DType::kFP32}) {
    ASSERT_OK(ref::gemm_w8a8(pr.params(out)));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const int64_t at = i * pr.ldd + j;
        const float y = out == DType::kFP32   ? pr.f32()[at]
                        : out == DType::kBF16 ? bf16_to_float(pr.u16()[at])
                                              : ref::fp16_to_float(pr.u16()[at]);
        EXPECT_EQ(std::isnan(y), i == 1) << to_string(out) << " (" << i << ", " << j << ") = " << y;
      }
  }
}

TEST(RefGemm, NoBiasEqualsSkippingTheAdditionIncludingNegativeZero) {
  Problem pr(1, 1, 16);
  std::fill(pr.a.data(), pr.a.data() + 16, 0);
  std::fill(pr.b.data(), pr.b.data() + 16, 0);
  pr.sb[0] = -1.0f;  // acc = 0 times -1 is -0; adding a +0 bias would make it +0
  ASSERT_OK(ref::gemm_w8a8(pr.params(DType::kFP32)));
  EXPECT_EQ(pr.f32()[0], 0.0f);
  EXPECT_TRUE(std::signbit(pr.f32()[0]));
}

TEST(RefGemm, MultithreadedResultEqualsRowByRowResult) {
  std::mt19937 rng(std::random_device{}());
  Problem pr(96, 128, 512);  // 6M multiply-adds: split over threads where the machine has them
  pr.fill_random(rng);
  std::uniform_real_distribution<float> s(1e-3f, 1e-2f);
  for (size_t i = 0; i < pr.sa.size(); ++i) pr.sa[i] = s(rng);
  for (size_t i = 0; i < pr.sb.size(); ++i) pr.sb[i] = s(rng);
  ASSERT_OK(ref::gemm_w8a8(pr.params(DType::kBF16)));
  std::vector<uint16_t> all(pr.u16(), pr.u16() + pr.m * pr.ldd);
  for (int64_t i = 0; i < pr.m; ++i) {
    HostArray<uint16_t> row(pr.n, 0);
    GemmParams p = pr.params(DType::kBF16);
    p.m = 1;
    p.a = pr.a.data() + i * pr.k;
    p.scale_a = pr.sa.data() + i;
    p.d = row.data();
    ASSERT_OK(ref::gemm_w8a8(p));
    for (int64_t j = 0; j < pr.n; ++j) ASSERT_EQ(row[j], all[i * pr.ldd + j]) << "(" << i << ", " << j << ")";
  }
}

TEST(RefGemm, QuantizeThenGemmApproximatesTheFloatMatmul) {
  // End to end through the reference: W8A8 error on random data is small next to the result.
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t m = 16, n = 24, k = 256;
  std::vector<float> x(m * k), w(n * k);
  for (float& v : x) v = dist(rng);
  for (float& v : w) v = dist(rng);
  Problem pr(m, n, k);
  QuantizeRowsParams qp;
  qp.cols = k, qp.x_type = DType::kFP32, qp.ldx = k, qp.ldq = k;
  qp.rows = m, qp.x = x.data(), qp.q = pr.a.data(), qp.scale = pr.sa.data();
  ASSERT_OK(ref::quantize_rows(qp));
  qp.rows = n, qp.x = w.data(), qp.q = pr.b.data(), qp.scale = pr.sb.data();
  ASSERT_OK(ref::quantize_rows(qp));
  ASSERT_OK(ref::gemm_w8a8(pr.params(DType::kFP32)));
  double err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double want = 0;
      for (int64_t kk = 0; kk < k; ++kk) want += double(x[i * k + kk]) * w[j * k + kk];
      const double e = pr.f32()[i * pr.ldd + j] - want;
      err2 += e * e, ref2 += want * want;
    }
  EXPECT_LT(std::sqrt(err2 / ref2), 0.03) << "relative error of W8A8 vs the fp32 matmul";
}

}  // namespace
}  // namespace int8dit
