// The CPU reference of qk_norm_rope (attention.h) and its argument checks: hand-computable rows (the
// norm, the weight, the pair rotation and its signs, the rotary row of each token), the strided
// layouts of a fused QKV output and a joined buffer, in place, random rows against a double-precision
// evaluation of the formula, and the calls it must refuse with nothing written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "int8dit/attention.h"
#include "half_values.h"
#include "ref/half_bits.h"

namespace {

using int8dit::DType;
using int8dit::QKNormRopeParams;
using int8dit::Status;
using int8dit::ref::bf16_to_float;
using int8dit::ref::float_to_bf16;

// [batches, tokens, heads, d] contiguous.
QKNormRopeParams contiguous(int64_t batches, int64_t tokens, int64_t heads, int64_t d) {
  QKNormRopeParams p;
  p.batches = batches, p.tokens = tokens, p.heads = heads, p.head_dim = d;
  p.x_head_stride = p.out_head_stride = d;
  p.x_token_stride = p.out_token_stride = heads * d;
  p.x_batch_stride = p.out_batch_stride = tokens * heads * d;
  return p;
}

TEST(RefQKNormRope, NormWeightAndPairRotationOnExactValues) {
  const int64_t d = 16;
  // One row of 3s: mean square 9, eps 0: rstd 1/3, so every normed value is 1; the weight j + 1.
  std::vector<float> w(d), cos(2 * d), sin(2 * d);
  for (int64_t j = 0; j < d; ++j) w[j] = static_cast<float>(j + 1);
  // Token 0's rotary row: the identity (cos 1, sin 0). Token 1's: a quarter turn (cos 0, sin 1).
  for (int64_t j = 0; j < d; ++j) cos[j] = 1.0f, sin[j] = 0.0f, cos[d + j] = 0.0f, sin[d + j] = 1.0f;
  const auto x = bf16s(std::vector<float>(2 * d, 3.0f));
  const auto wb = bf16s(w);
  std::vector<uint16_t> out(2 * d, 0xffff);
  QKNormRopeParams p = contiguous(1, 2, 1, d);
  p.x = x.data(), p.weight = wb.data(), p.eps = 0.0f, p.out = out.data();
  p.cos = cos.data(), p.sin = sin.data(), p.ld_rope = d, p.rope_rows = 2;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < d; ++j) EXPECT_EQ(bf16_to_float(out[j]), w[j]) << "token 0 keeps n_j = w_j, j = " << j;
  // A quarter turn: (a, b) -> (-b, a).
  for (int64_t j = 0; j < d; j += 2) {
    EXPECT_EQ(bf16_to_float(out[d + j]), -w[j + 1]) << j;
    EXPECT_EQ(bf16_to_float(out[d + j + 1]), w[j]) << j;
  }
  // rope_offset shifts the rotary rows: token 0 now takes row 1's quarter turn.
  p.tokens = 1, p.rope_offset = 1;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  EXPECT_EQ(bf16_to_float(out[0]), -w[1]);
  EXPECT_EQ(bf16_to_float(out[1]), w[0]);
  // Without cos/sin and weight: the bare RMSNorm, all ones.
  p.cos = p.sin = nullptr, p.weight = nullptr;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < d; ++j) EXPECT_EQ(bf16_to_float(out[j]), 1.0f) << j;
}

// subtract_mean (LayerNorm statistics) and rope_split_halves (CogView4's pairs) on exact values.
TEST(RefQKNormRope, LayerNormStatisticsAndSplitHalvesOnExactValues) {
  const int64_t d = 16;
  // A row alternating 7 and 3: mean 5, deviations +-2, variance 4, eps 0: rstd 1/2, normed +-1; the
  // RMSNorm of the same row would give 7 / sqrt(29) and 3 / sqrt(29).
  std::vector<float> w(d), row(2 * d), cos(2 * d), sin(2 * d);
  for (int64_t j = 0; j < d; ++j) w[j] = static_cast<float>(j + 1);
  for (int64_t j = 0; j < 2 * d; ++j) row[j] = j % 2 == 0 ? 7.0f : 3.0f;
  for (int64_t j = 0; j < d; ++j) cos[j] = 1.0f, sin[j] = 0.0f, cos[d + j] = 0.0f, sin[d + j] = 1.0f;
  const auto x = bf16s(row);
  const auto wb = bf16s(w);
  std::vector<uint16_t> out(2 * d, 0xffff);
  QKNormRopeParams p = contiguous(1, 2, 1, d);
  p.x = x.data(), p.weight = wb.data(), p.eps = 0.0f, p.out = out.data(), p.subtract_mean = true;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < d; ++j)
    EXPECT_EQ(bf16_to_float(out[j]), (j % 2 == 0 ? 1.0f : -1.0f) * w[j]) << "n_j = +-w_j, j = " << j;
  // A bias adds after the weight: +-w_j + b_j.
  std::vector<float> b(d);
  for (int64_t j = 0; j < d; ++j) b[j] = 0.25f * static_cast<float>(j);
  const auto bb = bf16s(b);
  p.bias = bb.data();
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < d; ++j)
    EXPECT_EQ(bf16_to_float(out[j]), (j % 2 == 0 ? 1.0f : -1.0f) * w[j] + b[j]) << "n_j = +-w_j + b_j, j = " << j;
  p.bias = nullptr;
  // Split halves: token 0 the identity; token 1 a quarter turn, (n_i, n_i+8) -> (-n_i+8, n_i).
  p.cos = cos.data(), p.sin = sin.data(), p.ld_rope = d, p.rope_rows = 2, p.rope_split_halves = true;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  auto n = [&](int64_t j) { return (j % 2 == 0 ? 1.0f : -1.0f) * w[j]; };
  for (int64_t j = 0; j < d; ++j) EXPECT_EQ(bf16_to_float(out[j]), n(j)) << "token 0 keeps n_j, j = " << j;
  for (int64_t i = 0; i < d / 2; ++i) {
    EXPECT_EQ(bf16_to_float(out[d + i]), -n(i + d / 2)) << i;
    EXPECT_EQ(bf16_to_float(out[d + i + d / 2]), n(i)) << i;
  }
  // The halves without the norm: the rows as they are, turned.
  p.normalize = false, p.subtract_mean = false, p.weight = nullptr;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t i = 0; i < d / 2; ++i) {
    EXPECT_EQ(bf16_to_float(out[d + i]), -row[d + i + d / 2]) << i;
    EXPECT_EQ(bf16_to_float(out[d + i + d / 2]), row[d + i]) << i;
  }
}

// weight_fp32: the norm's weight in fp32 (Krea 2 keeps its zero-centered 1 + w so), values bf16 cannot
// hold: each normed value is multiplied by the fp32 weight and rounded once.
TEST(RefQKNormRope, AnFp32WeightMultipliesInFp32AndRoundsOnce) {
  const int64_t d = 16;
  // A row of 3s at eps 0: every normed value is exactly 1, so n_j = round_bf16(w_j).
  std::vector<float> w(d);
  for (int64_t j = 0; j < d; ++j) w[j] = 1.0f + std::ldexp(static_cast<float>(j + 1), -20);  // 1 + (j + 1) 2^-20
  const auto x = bf16s(std::vector<float>(d, 3.0f));
  std::vector<uint16_t> out(d, 0xffff);
  QKNormRopeParams p = contiguous(1, 1, 1, d);
  p.x = x.data(), p.weight_fp32 = w.data(), p.eps = 0.0f, p.out = out.data();
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < d; ++j) EXPECT_EQ(out[j], float_to_bf16(w[j])) << j;  // all round to 1 in bf16
  // A row of 2^-4 multiples where the fp32 weight shows: normed 0.5, weight 1.75 + 2^-12: 0.875 + 2^-13 -> 0.875
  const std::vector<float> halves(d, 0.5f);
  const auto xh = bf16s(halves);
  std::vector<float> w2(d, 1.75f + std::ldexp(1.0f, -12));
  p.x = xh.data(), p.weight_fp32 = w2.data();
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  // rstd of a row of 0.5s is 2 (eps 0): normed 1, times 1.75 + 2^-12 rounds to bf16's 1.75
  for (int64_t j = 0; j < d; ++j) EXPECT_EQ(bf16_to_float(out[j]), 1.75f) << j;
}

// normalize = false: the rows as they are, moved into another layout (SD3's [B, H, S_total, D] join,
// image tokens first), rotated only where cos/sin are given.
TEST(RefQKNormRope, WithoutTheNormRowsMoveAsTheyAre) {
  const int64_t b = 2, t = 3, txt = 2, h = 2, d = 16, total = t + txt;
  std::vector<float> v(static_cast<size_t>(b * t * h * d));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 97) - 40.0f;
  const auto x = bf16s(v);
  std::vector<uint16_t> joined(static_cast<size_t>(b * h * total * d), 0x7fff);
  QKNormRopeParams p = contiguous(b, t, h, d);
  p.normalize = false, p.x = x.data(), p.out = joined.data();
  p.out_batch_stride = h * total * d, p.out_head_stride = total * d, p.out_token_stride = d;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t ti = 0; ti < total; ++ti)
        for (int64_t j = 0; j < d; ++j) {
          const uint16_t got = joined[((bi * h + hi) * total + ti) * d + j];
          if (ti >= t) {
            ASSERT_EQ(got, 0x7fff) << "a text row was written";
          } else {
            ASSERT_EQ(got, x[((bi * t + ti) * h + hi) * d + j]) << bi << " " << hi << " " << ti << " " << j;
          }
        }
  // with a quarter-turn rotation and no norm: (a, b) -> (-b, a) of the raw values
  std::vector<float> cos(3 * d, 0.0f), sin(3 * d, 1.0f);
  p.cos = cos.data(), p.sin = sin.data(), p.ld_rope = d, p.rope_rows = 3;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  EXPECT_EQ(bf16_to_float(joined[0]), -bf16_to_float(x[1]));
  EXPECT_EQ(bf16_to_float(joined[1]), bf16_to_float(x[0]));
}

TEST(RefQKNormRope, EpsEntersTheMeanSquare) {
  const int64_t d = 16;
  const auto x = bf16s(std::vector<float>(d, 1.0f));
  std::vector<uint16_t> out(d);
  QKNormRopeParams p = contiguous(1, 1, 1, d);
  p.x = x.data(), p.out = out.data(), p.eps = 3.0f;  // rstd = 1 / sqrt(1 + 3) = 0.5
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < d; ++j) EXPECT_EQ(bf16_to_float(out[j]), 0.5f);
}

// Random rows of a fused QKV output ([B, T, 3, H, D]: the queries a strided view) written into the
// image part of a joined [B, T_txt + T, H, D] buffer, against the formula in double precision: each
// output within one bf16 step of it (the reference rounds n to bf16 before rotating, as PyTorch does),
// the text rows and the padding untouched.
TEST(RefQKNormRope, StridedInputIntoAJoinedBufferMatchesTheFormula) {
  const int64_t b = 2, t = 5, t_txt = 3, h = 3, d = 64;
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<uint16_t> qkv(static_cast<size_t>(b * t * 3 * h * d)), w(d);
  for (auto& v : qkv) v = float_to_bf16(normal(gen));
  for (auto& v : w) v = float_to_bf16(1.0f + 0.1f * normal(gen));
  const int64_t rope_rows = t_txt + t;
  std::vector<float> cos(static_cast<size_t>(rope_rows * d)), sin(cos.size());
  for (int64_t r = 0; r < rope_rows; ++r) {
    for (int64_t j = 0; j < d; j += 2) {
      const double theta = r * std::pow(10000.0, -static_cast<double>(j) / d);
      cos[r * d + j] = cos[r * d + j + 1] = static_cast<float>(std::cos(theta));
      sin[r * d + j] = sin[r * d + j + 1] = static_cast<float>(std::sin(theta));
    }
  }
  std::vector<uint16_t> joined(static_cast<size_t>(b * rope_rows * h * d), 0x7fff);
  QKNormRopeParams p;
  p.batches = b, p.tokens = t, p.heads = h, p.head_dim = d, p.eps = 1e-6f;
  p.x = qkv.data(), p.x_batch_stride = t * 3 * h * d, p.x_token_stride = 3 * h * d, p.x_head_stride = d;
  p.weight = w.data();
  p.cos = cos.data(), p.sin = sin.data(), p.ld_rope = d, p.rope_rows = rope_rows, p.rope_offset = t_txt;
  p.out = joined.data() + t_txt * h * d;
  p.out_batch_stride = rope_rows * h * d, p.out_token_stride = h * d, p.out_head_stride = d;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  int64_t checked = 0;
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t ti = 0; ti < rope_rows; ++ti) {
      for (int64_t hi = 0; hi < h; ++hi) {
        const uint16_t* o = joined.data() + ((bi * rope_rows + ti) * h + hi) * d;
        if (ti < t_txt) {
          for (int64_t j = 0; j < d; ++j) ASSERT_EQ(o[j], 0x7fff) << "a text row was written";
          continue;
        }
        const uint16_t* xr = qkv.data() + bi * p.x_batch_stride + (ti - t_txt) * p.x_token_stride + hi * d;
        double ss = 0;
        for (int64_t j = 0; j < d; ++j) ss += std::pow(bf16_to_float(xr[j]), 2);
        const double rstd = 1.0 / std::sqrt(ss / d + 1e-6);
        for (int64_t j = 0; j < d; j += 2) {
          const double a = bf16_to_float(xr[j]) * rstd * bf16_to_float(w[j]);
          const double bb = bf16_to_float(xr[j + 1]) * rstd * bf16_to_float(w[j + 1]);
          const double c0 = cos[ti * d + j], s0 = sin[ti * d + j];
          const double want[2] = {a * c0 - bb * s0, bb * c0 + a * s0};
          for (int e = 0; e < 2; ++e) {
            const double got = bf16_to_float(o[j + e]);
            // two bf16 roundings (n, then the output) of values up to ~|a| + |b|
            const double tol = (std::fabs(a) + std::fabs(bb)) * std::ldexp(1.0, -7) + 1e-6;
            ASSERT_NEAR(got, want[e], tol) << "batch " << bi << " token " << ti << " head " << hi << " j " << j + e;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, b * t * h * d);
}

TEST(RefQKNormRope, InPlaceEqualsSeparateAndNonFiniteRowsFollowTheFormula) {
  const int64_t d = 32, tokens = 4;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(tokens * d));
  for (auto& f : v) f = normal(gen);
  v[1 * d + 5] = NAN;       // a NaN: the whole row NaN
  v[2 * d + 7] = INFINITY;  // an Inf: rstd 0, NaN where the Inf was (Inf * 0), 0 elsewhere
  auto x = bf16s(v);
  std::vector<uint16_t> out(x.size());
  QKNormRopeParams p = contiguous(1, tokens, 1, d);
  p.x = x.data(), p.out = out.data();
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  p.out = x.data();
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (size_t i = 0; i < x.size(); ++i) {
    const float a = bf16_to_float(x[i]), b = bf16_to_float(out[i]);
    EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << i;
  }
  for (int64_t j = 0; j < d; ++j) EXPECT_TRUE(std::isnan(bf16_to_float(out[1 * d + j]))) << j;
  for (int64_t j = 0; j < d; ++j) {
    const float o = bf16_to_float(out[2 * d + j]);
    if (j == 7) {
      EXPECT_TRUE(std::isnan(o));
    } else {
      EXPECT_EQ(o, 0.0f) << j;
    }
  }
}

// norm_heads: the statistics of a group of heads (Wan's and LTX-Video's norm across heads), each head
// taking its part of the group's weight; rope_head_stride: a head's cos/sin values further along its
// token's row (LTX-Video's tables, a value a channel).
TEST(RefQKNormRope, NormAcrossHeadsAndTablesAChannelAHeadOnExactValues) {
  const int64_t d = 16, heads = 4;
  // One token: heads 0 and 1 all 1s, heads 2 and 3 all 7s. Across pairs of heads (norm_heads 2): the
  // first group's mean square is 1 (rstd 1), the second's 49 (rstd 1/7): every normed value is 1.
  // Across all four: mean square 25, rstd 1/5: 0.2 and 1.4. Per head: 1 everywhere.
  std::vector<float> row(heads * d), w(heads * d);
  for (int64_t j = 0; j < heads * d; ++j) row[j] = j < 2 * d ? 1.0f : 7.0f, w[j] = static_cast<float>(j / d + 1);
  const auto x = bf16s(row);
  const auto wb = bf16s(w);
  std::vector<uint16_t> out(heads * d, 0xffff);
  QKNormRopeParams p = contiguous(1, 1, heads, d);
  p.x = x.data(), p.weight = wb.data(), p.eps = 0.0f, p.out = out.data(), p.norm_heads = 2;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  // head h takes weight elements [h * d, (h + 1) * d) of the group's: within a group of 2, h % 2
  for (int64_t j = 0; j < heads * d; ++j) EXPECT_EQ(bf16_to_float(out[j]), static_cast<float>(j / d % 2 + 1)) << j;
  p.norm_heads = 4;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < heads * d; ++j)
    EXPECT_EQ(out[j], float_to_bf16((row[j] * 0.2f) * static_cast<float>(j / d + 1))) << j;
  p.norm_heads = 1, p.weight = nullptr;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < heads * d; ++j) EXPECT_EQ(bf16_to_float(out[j]), 1.0f) << j;
  // A table row of heads * d values: head 1 turns a quarter (cos 0, sin 1), the others not at all; with
  // rope_head_stride 0 every head would read head 0's identity.
  std::vector<float> cos(heads * d, 1.0f), sin(heads * d, 0.0f);
  for (int64_t j = d; j < 2 * d; ++j) cos[j] = 0.0f, sin[j] = 1.0f;
  p.cos = cos.data(), p.sin = sin.data(), p.ld_rope = heads * d, p.rope_rows = 1, p.rope_head_stride = d;
  const auto ramp = bf16s([&] { std::vector<float> v(heads * d); for (int64_t j = 0; j < heads * d; ++j) v[j] = float(j % 8 + 1); return v; }());
  p.x = ramp.data(), p.normalize = false;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < heads * d; j += 2) {
    const float a = static_cast<float>(j % 8 + 1), b = a + 1.0f;
    const bool turned = j >= d && j < 2 * d;
    EXPECT_EQ(bf16_to_float(out[j]), turned ? -b : a) << j;
    EXPECT_EQ(bf16_to_float(out[j + 1]), turned ? a : b) << j;
  }
  p.rope_head_stride = 0;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());
  for (int64_t j = 0; j < heads * d; ++j) EXPECT_EQ(bf16_to_float(out[j]), static_cast<float>(j % 8 + 1)) << j;
}

TEST(RefQKNormRope, BadCallsAreRefusedWithNothingWritten) {
  const int64_t d = 64;
  std::vector<uint16_t> x(4 * d, float_to_bf16(1.0f)), out(4 * d, 0x7fff), w(d, float_to_bf16(1.0f));
  std::vector<float> table(4 * d, 0.5f);
  QKNormRopeParams p = contiguous(1, 4, 1, d);
  p.x = x.data(), p.out = out.data(), p.weight = w.data();
  p.cos = table.data(), p.sin = table.data(), p.ld_rope = d, p.rope_rows = 4;
  ASSERT_TRUE(int8dit::validate(p).ok());
  auto refused = [&](QKNormRopeParams q, const std::string& says) {
    const Status st = int8dit::ref::qk_norm_rope(q);
    EXPECT_FALSE(st.ok()) << says;
    EXPECT_NE(st.message().find(says), std::string::npos) << st.message();
  };
  QKNormRopeParams q = p;
  q.head_dim = 96;
  refused(q, "head_dim = 96 is not supported: it must be a power of two from 16 to 256");
  q = p, q.type = DType::kFP32;
  refused(q, "is not supported: use bf16 or fp16");
  q = p, q.sin = nullptr;
  refused(q, "only cos was given");
  q = p, q.rope_offset = 1;
  refused(q, "cos and sin have 4 rows but tokens 1..4 need rows up to 4");
  q = p, q.ld_rope = 32;
  refused(q, "ld_rope = 32 is smaller than head_dim = 64");
  q = p, q.normalize = false;
  refused(q, "a weight was given with normalize = false");
  std::vector<float> w32(d, 1.0f);
  q = p, q.weight_fp32 = w32.data();
  refused(q, "both weight and weight_fp32 were given");
  q = p, q.weight = nullptr, q.weight_fp32 = w32.data(), q.normalize = false;
  refused(q, "a weight was given with normalize = false");
  q = p, q.eps = -1.0f;
  refused(q, "must be finite and >= 0");
  q = p, q.weight = nullptr, q.normalize = false, q.bias = w.data();
  refused(q, "a bias was given with normalize = false");
  q = p, q.bias = out.data();
  refused(q, "out overlaps the bias");
  q = p, q.weight = nullptr, q.normalize = false, q.subtract_mean = true;
  refused(q, "subtract_mean was set with normalize = false");
  q = p, q.cos = q.sin = nullptr, q.rope_split_halves = true;
  refused(q, "rope_split_halves was set without cos and sin");
  q = p, q.out_token_stride = 32;
  refused(q, "make rows of head_dim = 64 elements share memory");
  q = p, q.out = x.data() + 8;
  refused(q, "out overlaps x without being it");
  q = p, q.out = x.data(), q.out_token_stride = 2 * d, q.out_batch_stride = 8 * d, q.x = x.data();
  refused(q, "out overlaps x without being it");  // the same pointer, other strides
  q = p, q.x_head_stride = -1;
  refused(q, "x_head_stride = -1 is negative");
  q = p, q.batches = -1;
  refused(q, "negative size");
  q = p, q.x = nullptr;
  refused(q, "x (the queries or keys) is null");
  q = p, q.norm_heads = 0;
  refused(q, "norm_heads = 0 must be >= 1 and divide heads = 1");
  q = contiguous(1, 1, 3, d), q.x = x.data(), q.out = out.data(), q.norm_heads = 2;
  refused(q, "norm_heads = 2 must be >= 1 and divide heads = 3");
  q = contiguous(1, 2, 2, d), q.x = x.data(), q.out = out.data(), q.norm_heads = 2, q.subtract_mean = true;
  refused(q, "norm_heads = 2 takes the RMSNorm alone");
  q = contiguous(1, 2, 2, d), q.x = x.data(), q.out = out.data(), q.norm_heads = 2, q.normalize = false;
  refused(q, "norm_heads = 2 takes the RMSNorm alone");
  q = p, q.rope_head_stride = -1;
  refused(q, "rope_head_stride = -1 must be in 0..2^30");
  q = contiguous(1, 2, 2, d), q.x = x.data(), q.out = out.data(), q.cos = table.data(), q.sin = table.data();
  q.ld_rope = d, q.rope_rows = 2, q.rope_head_stride = d;
  refused(q, "ld_rope = 64 is smaller than (heads - 1) * rope_head_stride + head_dim = 128");
  EXPECT_EQ(out, std::vector<uint16_t>(4 * d, 0x7fff));
  // Empty calls are fine with null pointers.
  q = p, q.tokens = 0, q.x = nullptr, q.out = nullptr, q.cos = q.sin = nullptr;
  EXPECT_TRUE(int8dit::ref::qk_norm_rope(q).ok());
}

}  // namespace
