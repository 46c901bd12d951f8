// The row ops of the quantization kernels (the contract is in row_kernels.cuh): what value each
// element of a row becomes before it is quantized.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "quant/row_io.cuh"

namespace int8dit::quant {

// quantize_rows: the element itself.
struct IdentityOp {
  static constexpr int kStatPasses = 0;
  __device__ void begin_row(int64_t) {}
  __device__ float stat_term(int, float) const { return 0.0f; }
  __device__ void end_pass(int, float, int64_t) {}
  __device__ void apply8(int64_t, float (&)[kVecElems]) const {}
  __device__ float apply1(int64_t, float x) const { return x; }
};

// LayerNorm (no affine) + adaLN modulation; mean and variance in two passes over the held row.
template <typename T>
struct LayerNormModulateOp {
  static constexpr int kStatPasses = 2;
  const T* shift = nullptr;  // [batches, cols], row stride ld_mod
  const T* mod_scale = nullptr;
  int64_t ld_mod = 0;
  int64_t tokens_per_batch = 1;
  float eps = 0.0f;
  // per row
  const T* shift_row = nullptr;
  const T* scale_row = nullptr;
  float mean = 0.0f, rstd = 0.0f;

  __device__ void begin_row(int64_t row) {
    const int64_t b = row / tokens_per_batch;
    shift_row = shift + b * ld_mod;
    scale_row = mod_scale + b * ld_mod;
  }
  __device__ float stat_term(int pass, float x) const {
    if (pass == 0) return x;
    const float d = x - mean;
    return d * d;
  }
  __device__ void end_pass(int pass, float sum, int64_t cols) {
    if (pass == 0) mean = sum / static_cast<float>(cols);
    else rstd = 1.0f / sqrtf(sum / static_cast<float>(cols) + eps);
  }
  __device__ void apply8(int64_t k, float (&v)[kVecElems]) const {
    float sh[kVecElems], sc[kVecElems];
    load8_cached(shift_row + k, sh);
    load8_cached(scale_row + k, sc);
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = (v[e] - mean) * rstd * (1.0f + sc[e]) + sh[e];
  }
  __device__ float apply1(int64_t k, float x) const {
    return (x - mean) * rstd * (1.0f + to_float(__ldg(scale_row + k))) + to_float(__ldg(shift_row + k));
  }
};

// RMSNorm with a per-channel weight.
template <typename T>
struct RmsNormOp {
  static constexpr int kStatPasses = 1;
  const T* weight = nullptr;
  float eps = 0.0f;
  float rstd = 0.0f;

  __device__ void begin_row(int64_t) {}
  __device__ float stat_term(int, float x) const { return x * x; }
  __device__ void end_pass(int, float sum, int64_t cols) { rstd = 1.0f / sqrtf(sum / static_cast<float>(cols) + eps); }
  __device__ void apply8(int64_t k, float (&v)[kVecElems]) const {
    float w[kVecElems];
    load8_cached(weight + k, w);
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = v[e] * rstd * w[e];
  }
  __device__ float apply1(int64_t k, float x) const { return x * rstd * to_float(__ldg(weight + k)); }
};

// GELU, tanh approximation, written as x * sigmoid(2u) = x / (1 + exp(-2u)), the same function as
// 0.5 x (1 + tanh(u)).
// NOTE: tanhf costs ~20 instructions an element and would make this kernel compute-bound; __expf and
// a fast divide keep it at a few ulp (far below the quantization step) and memory-bound.
struct GeluTanhOp {
  static constexpr int kStatPasses = 0;
  __device__ static float gelu(float x) {
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return __fdividef(x, 1.0f + __expf(-2.0f * u));
  }
  __device__ void begin_row(int64_t) {}
  __device__ float stat_term(int, float) const { return 0.0f; }
  __device__ void end_pass(int, float, int64_t) {}
  __device__ void apply8(int64_t, float (&v)[kVecElems]) const {
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = gelu(v[e]);
  }
  __device__ float apply1(int64_t, float x) const { return gelu(x); }
};

}  // namespace int8dit::quant
