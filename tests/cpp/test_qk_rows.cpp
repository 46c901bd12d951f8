// qk_norm_rope's row index (src/attention/qk_rows.h), the kernel's own index arithmetic run on the CPU:
// for strided layouts of a fused QKV output, a joined buffer, [B, H, S, D] outputs and broadcast
// rows, row r's x, out and cos/sin offsets from the 32-bit path (multiply-high divisions) and the
// 64-bit path against the [batch][token][head] loops; and where the 32-bit path stops applying.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "attention/qk_rows.h"

namespace {

using int8dit::QKNormRopeParams;
using int8dit::attention::offsets_fit_31_bits;
using int8dit::attention::row_at;
using int8dit::attention::row_index;
using int8dit::attention::RowAt;

const float kTable[1] = {0.0f};  // stands for cos/sin: only whether they are given matters here

void check_every_row(const QKNormRopeParams& p) {
  SCOPED_TRACE(std::to_string(p.batches) + "x" + std::to_string(p.tokens) + "x" + std::to_string(p.heads) + "x" +
               std::to_string(p.head_dim));
  const auto ix = row_index(p);
  const bool narrow = offsets_fit_31_bits(p);
  int64_t r = 0;
  for (int64_t b = 0; b < p.batches; ++b) {
    for (int64_t t = 0; t < p.tokens; ++t) {
      for (int64_t h = 0; h < p.heads; ++h, ++r) {
        const RowAt want{b * p.x_batch_stride + t * p.x_token_stride + h * p.x_head_stride,
                         b * p.out_batch_stride + t * p.out_token_stride + h * p.out_head_stride,
                         p.cos ? (p.rope_offset + t) * p.ld_rope : 0};
        const RowAt wide = row_at<false>(ix, r);
        ASSERT_EQ(wide.x, want.x) << "row " << r;
        ASSERT_EQ(wide.out, want.out) << "row " << r;
        ASSERT_EQ(wide.rope, want.rope) << "row " << r;
        if (narrow) {
          const RowAt got = row_at<true>(ix, r);
          ASSERT_EQ(got.x, want.x) << "row " << r;
          ASSERT_EQ(got.out, want.out) << "row " << r;
          ASSERT_EQ(got.rope, want.rope) << "row " << r;
        }
      }
    }
  }
  EXPECT_EQ(r, ix.rows);
}

TEST(QKRows, EveryRowLandsWhereTheLoopsPutIt) {
  std::mt19937 gen(5);
  std::uniform_int_distribution<int64_t> small(1, 9);
  for (int i = 0; i < 200; ++i) {
    QKNormRopeParams p;
    p.batches = small(gen), p.tokens = small(gen) * small(gen), p.heads = small(gen), p.head_dim = 16 << (i % 5);
    const int64_t d = p.head_dim, parts = 1 + i % 3;  // q alone, or q/k(/v) of a fused projection
    p.x_head_stride = d, p.x_token_stride = parts * p.heads * d + 8 * (i % 2), p.x_batch_stride = p.tokens * p.x_token_stride;
    if (i % 4 == 0) {  // out [B, H, S_total, D] with text rows first: head and token strides swapped
      const int64_t joined = p.tokens + small(gen);
      p.out_token_stride = d, p.out_head_stride = joined * d, p.out_batch_stride = p.heads * joined * d;
    } else {
      p.out_head_stride = d, p.out_token_stride = p.heads * d, p.out_batch_stride = (p.tokens + 3) * p.heads * d;
    }
    if (i % 3 != 2) p.cos = p.sin = kTable, p.ld_rope = d + 4 * (i % 2), p.rope_offset = small(gen) - 1;
    if (i % 7 == 0) p.x_head_stride = 0;  // one row broadcast over the heads
    check_every_row(p);
  }
  // Flux-dev: the single-stream blocks' queries, a third of a 21504-wide fused output's first columns
  QKNormRopeParams flux;
  flux.batches = 1, flux.tokens = 4608, flux.heads = 24, flux.head_dim = 128;
  flux.x_head_stride = 128, flux.x_token_stride = 21504, flux.x_batch_stride = 4608 * 21504;
  flux.out_head_stride = 128, flux.out_token_stride = 3072, flux.out_batch_stride = 4608 * 3072;
  flux.cos = flux.sin = kTable, flux.ld_rope = 128, flux.rope_rows = 4608;
  ASSERT_TRUE(offsets_fit_31_bits(flux));
  check_every_row(flux);
}

TEST(QKRows, TheNarrowPathEndsAt31Bits) {
  QKNormRopeParams p;
  p.batches = 2, p.tokens = 1, p.heads = 1, p.head_dim = 128;
  p.x_head_stride = p.out_head_stride = 128, p.x_token_stride = p.out_token_stride = 128;
  p.out_batch_stride = 128;
  // x's last element at 2^31 - 1: still 32-bit; one further: 64-bit
  p.x_batch_stride = (int64_t{1} << 31) - 128;
  EXPECT_TRUE(offsets_fit_31_bits(p));
  check_every_row(p);
  p.x_batch_stride += 1;
  EXPECT_FALSE(offsets_fit_31_bits(p));
  check_every_row(p);
  // a batch stride past 32 bits with one batch element never multiplies: 32-bit
  p.batches = 1, p.x_batch_stride = int64_t{1} << 40;
  EXPECT_TRUE(offsets_fit_31_bits(p));
  check_every_row(p);
  // the rotary table: row rope_offset + tokens - 1 must end below 2^31
  p.x_batch_stride = 128, p.cos = p.sin = kTable, p.ld_rope = 128;
  p.rope_offset = (int64_t{1} << 31) / 128 - 1;
  EXPECT_TRUE(offsets_fit_31_bits(p));
  p.rope_offset += 1;
  EXPECT_FALSE(offsets_fit_31_bits(p));
  check_every_row(p);
}

}  // namespace
