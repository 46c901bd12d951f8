// CPU reference of qk_norm_rope (attention.h): the tests' oracle. It follows the header's formula
// step by step, the sum of squares in the GPU kernel's order, so that the two agree bit for bit.
// NOTE: built with -ffp-contract=off (src/CMakeLists.txt): the products and sums below are rounded
// one by one, as the formula says; a contracted multiply-add would round once and change bits.
#include <cmath>
#include <cstdint>
#include <vector>

#include "int8dit/attention.h"
#include "ref/half_bits.h"

namespace int8dit::ref {
namespace {

constexpr int kLaneElems = 8;  // elements a lane of the GPU kernel sums

float load(const void* base, DType type, int64_t i) {
  const uint16_t bits = static_cast<const uint16_t*>(base)[i];
  return type == DType::kBF16 ? bf16_to_float(bits) : fp16_to_float(bits);
}
uint16_t round_to(DType type, float v) { return type == DType::kBF16 ? float_to_bf16(v) : float_to_fp16(v); }
float rounded(DType type, float v) {
  const uint16_t bits = round_to(type, v);
  return type == DType::kBF16 ? bf16_to_float(bits) : fp16_to_float(bits);
}

// The lanes' sums halved in a butterfly (lane l with lane l + half): the value every lane ends with.
float butterfly(std::vector<float>& lanes) {
  for (size_t half = lanes.size() / 2; half >= 1; half /= 2) {
    for (size_t l = 0; l < half; ++l) lanes[l] = lanes[l] + lanes[l + half];
  }
  return lanes[0];
}

// The sum of squares of one row: per lane of 8 elements with fused multiply-adds from 0, then the butterfly.
float sum_of_squares(const float* v, int64_t head_dim, std::vector<float>& lanes) {
  const int64_t lane_count = head_dim / kLaneElems;
  lanes.assign(static_cast<size_t>(lane_count), 0.0f);
  for (int64_t l = 0; l < lane_count; ++l) {
    float acc = 0.0f;
    for (int e = 0; e < kLaneElems; ++e) acc = std::fma(v[l * kLaneElems + e], v[l * kLaneElems + e], acc);
    lanes[l] = acc;
  }
  return butterfly(lanes);
}

// The sum of one row (subtract_mean's): per lane of 8 elements added in order from 0, then the butterfly.
float sum_of(const float* v, int64_t head_dim, std::vector<float>& lanes) {
  const int64_t lane_count = head_dim / kLaneElems;
  lanes.assign(static_cast<size_t>(lane_count), 0.0f);
  for (int64_t l = 0; l < lane_count; ++l) {
    float acc = 0.0f;
    for (int e = 0; e < kLaneElems; ++e) acc = acc + v[l * kLaneElems + e];
    lanes[l] = acc;
  }
  return butterfly(lanes);
}

}  // namespace

Status qk_norm_rope(const QKNormRopeParams& p) {
  if (Status st = validate(p); !st.ok()) return st;
  const int64_t d = p.head_dim, group = p.norm_heads;
  const float inv_d = 1.0f / static_cast<float>(d);  // exact: head_dim is a power of two
  const float inv_group = 1.0f / static_cast<float>(group * d);
  std::vector<float> in(static_cast<size_t>(d)), n(static_cast<size_t>(d)), lanes;
  std::vector<float> head_ss(static_cast<size_t>(p.heads));
  std::vector<uint16_t> row_out(static_cast<size_t>(d));
  auto* out = static_cast<uint16_t*>(p.out);
  for (int64_t b = 0; b < p.batches; ++b) {
    for (int64_t t = 0; t < p.tokens; ++t) {
      // Across heads (norm_heads > 1): every head's sum of squares first, the group's sums in head order.
      for (int64_t h = 0; h < p.heads && group > 1; ++h) {
        const int64_t x_row = b * p.x_batch_stride + t * p.x_token_stride + h * p.x_head_stride;
        for (int64_t j = 0; j < d; ++j) in[j] = load(p.x, p.type, x_row + j);
        head_ss[h] = sum_of_squares(in.data(), d, lanes);
      }
      for (int64_t h = 0; h < p.heads; ++h) {
        const float* c = p.cos ? p.cos + (p.rope_offset + t) * p.ld_rope + h * p.rope_head_stride : nullptr;
        const float* s = p.sin ? p.sin + (p.rope_offset + t) * p.ld_rope + h * p.rope_head_stride : nullptr;
        const int64_t x_row = b * p.x_batch_stride + t * p.x_token_stride + h * p.x_head_stride;
        for (int64_t j = 0; j < d; ++j) in[j] = load(p.x, p.type, x_row + j);
        if (p.normalize) {
          if (p.subtract_mean) {
            const float mean = sum_of(in.data(), d, lanes) * inv_d;
            for (int64_t j = 0; j < d; ++j) in[j] = in[j] - mean;
          }
          float rstd;
          if (group > 1) {
            const int64_t first = h - h % group;
            float ss = head_ss[first];
            for (int64_t g = 1; g < group; ++g) ss = ss + head_ss[first + g];
            rstd = 1.0f / std::sqrt(ss * inv_group + p.eps);
          } else {
            rstd = 1.0f / std::sqrt(sum_of_squares(in.data(), d, lanes) * inv_d + p.eps);
          }
          const int64_t w0 = (h % group) * d;  // head h's part of the group's weight
          for (int64_t j = 0; j < d; ++j) {
            const float normed = in[j] * rstd;
            const float w = p.weight ? load(p.weight, p.type, w0 + j) : p.weight_fp32 ? p.weight_fp32[w0 + j] : 1.0f;
            const float weighted = p.weight || p.weight_fp32 ? normed * w : normed;
            n[j] = rounded(p.type, p.bias ? weighted + load(p.bias, p.type, j) : weighted);
          }
        } else {
          n = in;
        }
        for (int64_t j = 0; j < d && c && p.rope_split_halves; ++j) {
          const int64_t half = d / 2;
          const float partner = j < half ? -n[j + half] : n[j - half];
          row_out[j] = round_to(p.type, n[j] * c[j] + partner * s[j]);
        }
        for (int64_t j = 0; j < d && !(c && p.rope_split_halves); j += 2) {
          const float a = n[j], bb = n[j + 1];
          if (c) {
            const float even = a * c[j] + (-bb) * s[j];
            const float odd = bb * c[j + 1] + a * s[j + 1];
            row_out[j] = round_to(p.type, even);
            row_out[j + 1] = round_to(p.type, odd);
          } else {
            row_out[j] = round_to(p.type, a);
            row_out[j + 1] = round_to(p.type, bb);
          }
        }
        // (written after the whole row is read: out may be x itself)
        const int64_t o_row = b * p.out_batch_stride + t * p.out_token_stride + h * p.out_head_stride;
        for (int64_t j = 0; j < d; ++j) out[o_row + j] = row_out[j];
      }
    }
  }
  return Status::Ok();
}

}  // namespace int8dit::ref
