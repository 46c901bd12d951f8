// The ops the grouped-kernel probes (grouped_timeline.cu, grouped_ring_probe.cu) time, set up alike: the
// library's LayerNorm, RMSNorm and SmoothQuant division on one modulation / weight / divisor vector, and
// quantize_rows' own work in the grouped layout.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "quant/row_ops.cuh"

namespace grouped_probe {

using T = __nv_bfloat16;

// quantize_rows' own work (one reduction, the row max; its two roundings) in the grouped layout, with a
// channel cache the kernel fills and the op never reads: what the layout costs without an op's statistics
// and channel values, beside the library's quantize_rows (one CTA a row) in int8dit_bench_quant.
struct PlainRowsOp : int8dit::quant::IdentityOp {
  static constexpr int kChannelVec4s = 1;
  __device__ void fill8(int, float4* dst, int) const { dst[0] = make_float4(0.0f, 0.0f, 0.0f, 0.0f); }
  __device__ void apply8_cached(int, float (&)[int8dit::quant::kVecElems], const float4*, int) const {}
};

// LayerNorm's fields (or an op derived from it): one batch element, shift and scale from `mod` ([2k]).
template <typename LayerNorm>
void set_layernorm_fields(LayerNorm& ln, const uint16_t* mod, int64_t m, int64_t k) {
  ln.shift = reinterpret_cast<const T*>(mod), ln.mod_scale = reinterpret_cast<const T*>(mod) + k, ln.ld_mod = 2 * k;
  ln.tokens_per_batch = m, ln.eps = 1e-6f, ln.inv_cols = 1.0f / static_cast<float>(k);
}

inline int8dit::quant::RmsNormOp<T> rmsnorm_op(const uint16_t* weight, int64_t k) {
  int8dit::quant::RmsNormOp<T> rms;
  rms.weight = reinterpret_cast<const T*>(weight), rms.eps = 1e-6f, rms.inv_cols = 1.0f / static_cast<float>(k);
  return rms;
}

}  // namespace grouped_probe
