// The LayerNorm kernel's one-barrier mean and variance (quant/moments.h, RowReducer::mean_m2), replayed
// on the CPU in the kernel's order: per-thread sums in 4 chains, a butterfly of Chan updates in each
// warp (lower lane first), the warps joined in order. Checked against double precision on rows that
// defeat the naive E[x^2] - E[x]^2 (a large common offset, outlier channels, constant rows).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/moments.h"

namespace int8dit::quant {
namespace {

// One thread's moments as the kernel forms them: vectors t + i * threads of 8 values each.
Moments thread_moments(const std::vector<float>& row, int t, int threads, int vecs) {
  const int nvec = static_cast<int>(row.size() / 8);
  float s[4] = {0, 0, 0, 0};
  int count = 0;
  for (int i = 0; i < vecs; ++i) {
    const int c = t + i * threads;
    if (c >= nvec) continue;
    count += 8;
    for (int e = 0; e < 8; ++e) s[e % 4] += row[8 * c + e];
  }
  const float n = static_cast<float>(count);
  const float mean = count ? ((s[0] + s[1]) + (s[2] + s[3])) / n : 0.0f;
  float d2[4] = {0, 0, 0, 0};
  for (int i = 0; i < vecs; ++i) {
    const int c = t + i * threads;
    if (c >= nvec) continue;
    for (int e = 0; e < 8; ++e) {
      const float d = row[8 * c + e] - mean;
      d2[e % 4] = std::fmaf(d, d, d2[e % 4]);
    }
  }
  return {n, mean, (d2[0] + d2[1]) + (d2[2] + d2[3])};
}

bool same_bits(const Moments& a, const Moments& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The row's moments as every thread of the CTA ends with them; fails the test if two threads differ.
Moments row_moments(const std::vector<float>& row, int threads, int vecs) {
  std::vector<Moments> lane(threads);
  for (int t = 0; t < threads; ++t) lane[t] = thread_moments(row, t, threads, vecs);
  for (int o = 1; o < 32; o <<= 1) {
    std::vector<Moments> next(threads);
    for (int t = 0; t < threads; ++t) {
      const Moments& other = lane[t ^ o];
      next[t] = (t & o) ? join_moments(other, lane[t]) : join_moments(lane[t], other);
    }
    lane = next;
  }
  for (int t = 0; t < threads; ++t) EXPECT_TRUE(same_bits(lane[t], lane[t / 32 * 32])) << "lane " << t << " differs";
  Moments m = lane[0];
  for (int w = 1; w < threads / 32; ++w) m = join_moments(m, lane[32 * w]);
  return m;
}

void expect_close_to_double(const std::vector<float>& row, int threads, int vecs, const char* what,
                            double var_tolerance = 1e-6) {
  double mean = 0;
  for (float x : row) mean += x;
  mean /= static_cast<double>(row.size());
  double m2 = 0;
  for (float x : row) m2 += (x - mean) * (x - mean);
  const Moments m = row_moments(row, threads, vecs);
  const double var = m2 / row.size(), got_var = static_cast<double>(m.m2) / row.size();
  EXPECT_EQ(m.n, static_cast<float>(row.size())) << what;
  EXPECT_NEAR(m.mean, mean, 1e-6 * std::sqrt(var) + 1e-7 * std::fabs(mean)) << what;
  // LayerNorm divides by sqrt(var + eps): a relative error e in the variance is e / 2 in the scale,
  // against DESIGN.md's 1e-5 for the fused ops' scales.
  if (var > 0) {
    EXPECT_NEAR(got_var / var, 1.0, var_tolerance) << what << ": variance " << got_var << " vs " << var;
  } else {
    EXPECT_EQ(m.m2, 0.0f) << what;
  }
}

TEST(QuantMoments, OneReductionMatchesDoubleOnHardRows) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  struct Layout {
    int cols, threads, vecs;
  };
  // row_shape.h's layouts for the DiT widths, and tails (slots without a vector, lanes without any).
  const Layout layouts[] = {{3072, 64, 6}, {12288, 256, 6}, {1152, 32, 6}, {2312, 64, 6}, {256, 32, 1}, {8, 32, 1}, {2048, 64, 4}};
  for (const Layout& l : layouts) {
    std::vector<float> row(l.cols);
    // Offset 1000x the spread: each thread's mean carries fp32's rounding at 1000 (6e-5), which the
    // joins' squared mean differences see: ~3e-6 of the variance (1.5e-6 in the scale), where the two
    // reductions (a mean, then deviations from it) kept ~1e-7.
    for (float& x : row) x = 1000.0f + normal(gen);
    expect_close_to_double(row, l.threads, l.vecs, "offset row", 1e-5);
    for (int c = 0; c < l.cols; ++c) row[c] = normal(gen) * (c % 97 == 5 ? 300.0f : 1.0f);  // outlier channels
    expect_close_to_double(row, l.threads, l.vecs, "outlier channels");
    std::fill(row.begin(), row.end(), -3.25f);
    expect_close_to_double(row, l.threads, l.vecs, "constant row");
    for (float& x : row) x = 1e-3f * normal(gen);
    expect_close_to_double(row, l.threads, l.vecs, "tiny values");
  }
}

TEST(QuantMoments, JoiningNothingKeepsTheOtherSide) {
  const Moments a{0, 0, 0}, b{16, 2.5f, 7.0f};
  const Moments ab = join_moments(a, b), ba = join_moments(b, a);
  EXPECT_TRUE(same_bits(ab, b));
  EXPECT_TRUE(same_bits(ba, b));
  const Moments none = join_moments(a, a);
  EXPECT_EQ(none.n, 0.0f);
  EXPECT_EQ(none.mean, 0.0f);
  EXPECT_EQ(none.m2, 0.0f);
}

}  // namespace
}  // namespace int8dit::quant
