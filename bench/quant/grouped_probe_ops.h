// The ops the grouped-kernel probes (grouped_timeline.cu, grouped_ring_probe.cu) time, set up alike: the
// library's LayerNorm, RMSNorm and SmoothQuant division on one modulation / weight / divisor vector, and
// quantize_rows' own work in the grouped layout.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "quant/row_ops.cuh"
#include "timing.h"

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

// 0 where device 0 is a Hopper GPU (its name printed); else why not, on stderr, and 1 (the probe's exit code).
inline int require_hopper(const char* program) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "%s: no CUDA GPU visible; this probe times GPU kernels\n", program);
    return 1;
  }
  cudaDeviceProp prop{};
  bench_quant::check_cuda(cudaGetDeviceProperties(&prop, 0), "properties");
  if (prop.major < 9) {
    std::fprintf(stderr, "%s: the grouped kernel runs on Hopper (sm_90) only; this GPU is sm_%d%d\n", program, prop.major, prop.minor);
    return 1;
  }
  std::printf("%s (%d SMs)\n", prop.name, prop.multiProcessorCount);
  return 0;
}

// The ops' vectors on the device, filled once: `mod` LayerNorm's shift | scale (also RMSNorm's weight), `divisor`
// SmoothQuant's divisors in [0.5, 2).
struct ChannelVectors {
  uint16_t* mod = nullptr;
  float* divisor = nullptr;
  explicit ChannelVectors(int64_t k) {
    mod = bench_quant::device_alloc<uint16_t>(static_cast<size_t>(2 * k));
    divisor = bench_quant::device_alloc<float>(static_cast<size_t>(k));
    bench_quant::fill_bf16(mod, static_cast<size_t>(2 * k), 11u);
    bench_quant::fill_f32(divisor, static_cast<size_t>(k), 0.5f, 2.0f, 12u);
  }
  ~ChannelVectors() { cudaFree(mod), cudaFree(divisor); }
  ChannelVectors(const ChannelVectors&) = delete;
  ChannelVectors& operator=(const ChannelVectors&) = delete;
};

}  // namespace grouped_probe
