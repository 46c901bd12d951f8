// Where qk_norm_rope's kernel finds each row (host and device code, so that the CPU tests check the
// kernel's own index arithmetic: tests/cpp/test_qk_rows.cpp).
//
// Row r of a call runs over [batch, token, head] in that order (r = (b * tokens + t) * heads + h), so
// that the heads of a token follow each other and share its cos/sin row. Where every row index and
// element offset fits 31 bits, the split of r into (b, t, h) is two multiply-high divisions
// (MagicDivisor) and the offsets 32-bit products: kNarrow.
#pragma once

#include <cstdint>

#include "core/magic_division.h"
#include "int8dit/attention.h"

#if defined(__CUDACC__)
#define INT8DIT_QK_HD __host__ __device__ __forceinline__
#else
#define INT8DIT_QK_HD inline
#endif

namespace int8dit::attention {

struct RowIndex {
  int64_t rows = 0;  // batches * tokens * heads
  int64_t tokens = 0, heads = 0;
  int64_t x_batch_stride = 0, x_token_stride = 0, x_head_stride = 0;
  int64_t out_batch_stride = 0, out_token_stride = 0, out_head_stride = 0;
  int64_t ld_rope = 0, rope_offset = 0;  // ld_rope 0 without cos/sin
  int64_t rope_head_stride = 0;          // 0 without cos/sin
  detail::MagicDivisor by_tokens, by_heads;  // set where offsets_fit_31_bits (kNarrow)
};

// Whether every row index and element offset of the call is below 2^31 (kNarrow applies).
inline bool offsets_fit_31_bits(const QKNormRopeParams& p) {
  constexpr int64_t kLimit = int64_t{1} << 31;
  const int64_t x_end = (p.batches - 1) * p.x_batch_stride + (p.tokens - 1) * p.x_token_stride +
                        (p.heads - 1) * p.x_head_stride + p.head_dim;
  const int64_t out_end = (p.batches - 1) * p.out_batch_stride + (p.tokens - 1) * p.out_token_stride +
                          (p.heads - 1) * p.out_head_stride + p.head_dim;
  const int64_t rope_end = p.cos ? (p.rope_offset + p.tokens) * p.ld_rope : 0;  // >= its last element + 1
  return p.batches * p.tokens * p.heads <= kLimit && x_end <= kLimit && out_end <= kLimit && rope_end <= kLimit;
}

// The call's row index (p validated, no size 0).
inline RowIndex row_index(const QKNormRopeParams& p) {
  RowIndex ix;
  ix.rows = p.batches * p.tokens * p.heads;
  ix.tokens = p.tokens, ix.heads = p.heads;
  ix.x_batch_stride = p.x_batch_stride, ix.x_token_stride = p.x_token_stride, ix.x_head_stride = p.x_head_stride;
  ix.out_batch_stride = p.out_batch_stride, ix.out_token_stride = p.out_token_stride;
  ix.out_head_stride = p.out_head_stride;
  ix.ld_rope = p.cos ? p.ld_rope : 0, ix.rope_offset = p.rope_offset;
  ix.rope_head_stride = p.cos ? p.rope_head_stride : 0;
  if (offsets_fit_31_bits(p)) {
    ix.by_tokens = detail::MagicDivisor::of(static_cast<uint32_t>(p.tokens));
    ix.by_heads = detail::MagicDivisor::of(static_cast<uint32_t>(p.heads));
  }
  return ix;
}

// a / b with a 32-bit division where the operands fit (a 64-bit one is a ~70-instruction call on the GPU).
INT8DIT_QK_HD int64_t div64(int64_t a, int64_t b) {
  return (a | b) <= 0xffffffffLL ? static_cast<int64_t>(static_cast<uint32_t>(a) / static_cast<uint32_t>(b)) : a / b;
}

// Where row r's elements are: x's and out's first element, and its cos/sin values' (in elements).
struct RowAt {
  int64_t x, out, rope;
};

template <bool kNarrow>
INT8DIT_QK_HD RowAt row_at(const RowIndex& ix, int64_t r) {
  if constexpr (kNarrow) {
    const uint32_t r32 = static_cast<uint32_t>(r);
    const uint32_t bt = ix.by_heads.divide(r32);
    const uint32_t h = r32 - bt * static_cast<uint32_t>(ix.heads);
    const uint32_t b = ix.by_tokens.divide(bt);
    const uint32_t t = bt - b * static_cast<uint32_t>(ix.tokens);
    // (a stride past 32 bits only meets b = 0 here: offsets_fit_31_bits bounds every product)
    const auto u = [](int64_t v) { return static_cast<uint32_t>(v); };
    return {static_cast<int64_t>(b * u(ix.x_batch_stride) + t * u(ix.x_token_stride) + h * u(ix.x_head_stride)),
            static_cast<int64_t>(b * u(ix.out_batch_stride) + t * u(ix.out_token_stride) + h * u(ix.out_head_stride)),
            static_cast<int64_t>((u(ix.rope_offset) + t) * u(ix.ld_rope) + h * u(ix.rope_head_stride))};
  } else {
    const int64_t bt = div64(r, ix.heads);
    const int64_t h = r - bt * ix.heads;
    const int64_t b = div64(bt, ix.tokens);
    const int64_t t = bt - b * ix.tokens;
    return {b * ix.x_batch_stride + t * ix.x_token_stride + h * ix.x_head_stride,
            b * ix.out_batch_stride + t * ix.out_token_stride + h * ix.out_head_stride,
            (ix.rope_offset + t) * ix.ld_rope + h * ix.rope_head_stride};
  }
}

}  // namespace int8dit::attention
