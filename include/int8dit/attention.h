// int8dit: the query/key preparation of a rotary-embedding DiT's attention in one pass: per head,
// RMSNorm (or LayerNorm without bias) with a per-channel weight, then the rotary embedding (interleaved
// pairs, or the halves of the row).
//
// Flux (and Qwen-Image, HunyuanVideo, Wan, ...) normalizes each head of q and k and rotates it before
// attention. PyTorch runs that as a norm kernel and about eight elementwise kernels (float casts, the
// pair swap, two products, a sum, the cast back) over [batch, tokens, heads, head_dim], and a copy to
// join the text and image tokens: in Flux-dev at 1024 px those took 36.6 + 9.2 ms of a 121 ms forward
// on the H200, more than its int8 GEMMs (bench/results/h200/e2e_gated_add_54907e6.md). This kernel
// reads each element once and writes it once, straight into a slice of the joined buffer.
//
// With normalize = false it only moves the rows (and rotates them where cos/sin are given): SD3's joint
// attention joins q, k and v of the image and text tokens into [batch, heads, tokens, head_dim] with
// torch.cat over transposed views, an element-by-element gather that ran at 0.66 TB/s on the H200
// (72 calls, 3.0 ms of SD3-medium's 19.4 ms forward in a graph); any out strides, 16-byte vectors.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "int8dit/status.h"
#include "int8dit/types.h"

namespace int8dit {

// x and out are [batches, tokens, heads, head_dim] with any strides (in elements) for the first three
// dimensions and head_dim contiguous. For each row of head_dim elements (one token's head):
//
//   ss    = sum of x_j * x_j in fp32, in the fixed order below
//   rstd  = 1 / sqrt(ss / head_dim + eps), each step rounded to fp32 (IEEE sqrt and division)
//   n_j   = round_T((x_j * rstd) * w_j)             (w = 1 without a weight: round_T(x_j * rstd);
//                                                    normalize = false: n_j = x_j, no weight allowed;
//                                                    w_j of `type`, or fp32 with weight_fp32)
//   then, with cos/sin: for each pair (a, b) = (n_2i, n_2i+1), c = cos[p][.], s = sin[p][.],
//   p = rope_offset + token:
//   out_2i   = round_T(a * c_2i   + (-b) * s_2i)    (two fp32 products and a sum, each rounded:
//   out_2i+1 = round_T(b * c_2i+1 +   a  * s_2i+1)   diffusers' apply_rotary_emb, use_real_unbind_dim=-1)
//   without cos/sin, out_j = n_j.
//
// subtract_mean (LayerNorm statistics, no bias: CogView4's per-head LayerNorm): the row's mean first,
//   mean = (sum of x_j, lane l adding elements 8l..8l+7 in order from 0, then the lanes' butterfly
//          below) * (1 / head_dim),
//   d_j = x_j - mean, and the formula above on d in place of x (ss the sum of d_j * d_j, n_j =
//   round_T((d_j * rstd) * w_j)): torch's layer_norm up to its rsqrt and Welford statistics.
// bias (LayerNorm's, CogVideoX's): n_j = round_T(((d_j * rstd) * w_j) + b_j), each step rounded to fp32.
// rope_split_halves: the pairs are (n_i, n_i+D/2) for i < D/2 (D = head_dim; diffusers'
//   apply_rotary_emb with use_real_unbind_dim=-2, CogView4's):
//   out_i     = round_T(n_i     * c_i     + (-n_i+D/2) * s_i)
//   out_i+D/2 = round_T(n_i+D/2 * c_i+D/2 +   n_i      * s_i+D/2)
// The GPU kernel takes these three for head_dim 64 and 128 (kNotSupported otherwise; the reference takes all).
//
// The sum of squares: lane l of the head_dim / 8 lanes a row sums elements 8l..8l+7 in order with
// fused multiply-adds from 0, then the lanes' sums meet in a butterfly (lane l with lane l + L/2, then
// L/4, ... for L lanes). The CPU reference sums in the same order, so the GPU and the reference agree
// bit for bit. (torch's rms_norm uses an approximate rsqrt: ours is within an ulp of it.)
// norm_heads > 1 (Wan's and LTX-Video's RMSNorm across heads): the statistics of a group of norm_heads
//   consecutive heads of a token, ss = ((ss_0 + ss_1) + ss_2) + ... over the group's heads in order
//   (each ss_g the sum of squares of its head's row as above), rstd = 1 / sqrt(ss * inv + eps) with
//   inv = 1 / (norm_heads * head_dim) rounded to fp32 (exact for a power of two), and head g of the group takes
//   weight elements [g * head_dim, (g + 1) * head_dim): the weight holds norm_heads * head_dim values.
//   RMSNorm only (no subtract_mean, bias or rope_split_halves). The GPU kernel takes head_dim 64 and 128
//   with norm_heads * head_dim / 8 threads a group: a multiple of 32, at most 1024.
// rope_head_stride: head h of a token reads its cos/sin values at (rope_offset + t) * ld_rope +
//   h * rope_head_stride: 0, every head shares its token's row (Flux, Wan); head_dim, the row holds a
//   value for every channel of the token (LTX-Video's [tokens, heads * head_dim] tables).
// Non-finite rows follow the formula, as PyTorch's ops do: a NaN makes the whole row NaN; an Inf makes
// rstd 0, so NaN where the Inf was (Inf * 0) and 0 elsewhere; a zero row with eps = 0 gives NaN (0 * Inf).
struct QKNormRopeParams {
  int64_t batches = 0;
  int64_t tokens = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;       // a power of two from 16 to 256
  DType type = DType::kBF16;  // kBF16 or kFP16: x, weight and out
  const void* x = nullptr;    // [batches, tokens, heads, head_dim]
  int64_t x_batch_stride = 0, x_token_stride = 0, x_head_stride = 0;
  bool normalize = true;         // false: no RMSNorm (n = x); weight must then be null
  const void* weight = nullptr;  // [head_dim] of `type`; null: no weight (1)
  // Or the weight in fp32 (a norm a model keeps in fp32, whose values `type` cannot hold: Krea 2's
  // zero-centered 1 + weight); at most one of weight and weight_fp32.
  const float* weight_fp32 = nullptr;
  const void* bias = nullptr;    // [head_dim] of `type`, added after the weight; null: none. Needs normalize
  float eps = 1e-6f;             // >= 0
  bool subtract_mean = false;    // LayerNorm's statistics (the mean subtracted); needs normalize
  bool rope_split_halves = false;  // rotate (n_i, n_i+D/2) pairs rather than (n_2i, n_2i+1); needs cos/sin
  int64_t norm_heads = 1;        // heads a norm's statistics span (above); divides heads; > 1 needs normalize
  int64_t rope_head_stride = 0;  // >= 0: the cos/sin offset from one head of a token to the next (above)
  const float* cos = nullptr;    // [rope_rows, head_dim] fp32, row stride ld_rope; null with sin: no rotation
  const float* sin = nullptr;
  int64_t ld_rope = 0;           // >= head_dim
  int64_t rope_rows = 0;         // rows of cos and sin: >= rope_offset + tokens
  int64_t rope_offset = 0;       // the cos/sin row of token 0 (its position in the joined sequence)
  void* out = nullptr;           // [batches, tokens, heads, head_dim]; may be x itself (the same strides)
  int64_t out_batch_stride = 0, out_token_stride = 0, out_head_stride = 0;
};

// On the GPU, asynchronous on `stream`; every pointer device memory of the current device. The kernel
// moves 16-byte vectors: x, out and weight 16-byte aligned, cos and sin too, every stride (x's, out's
// and ld_rope) a multiple of 8 elements (ld_rope: of 4 floats); other layouts are refused with
// kNotSupported before anything runs (the CPU reference takes them).
Status qk_norm_rope(const QKNormRopeParams& p, cudaStream_t stream);
// Argument checks (sizes, strides, overlap), no CUDA calls; both entry points run them.
Status validate(const QKNormRopeParams& p);

namespace ref {
// The CPU reference: host pointers, any layout validate() accepts.
Status qk_norm_rope(const QKNormRopeParams& p);
}  // namespace ref

}  // namespace int8dit
