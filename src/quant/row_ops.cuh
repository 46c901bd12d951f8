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
  // x_hat (1 + scale) + shift as x_hat * scale + x_hat + shift (no rounded 1 + scale).
  // NOTE: x - mean stays a separate subtraction: folding it into an FMA with a rounded mean * rstd
  // loses x_hat's precision on rows with a large mean.
  __device__ void apply8(int64_t k, float (&v)[kVecElems]) const {
    float sh[kVecElems], sc[kVecElems];
    load8_cached(shift_row + k, sh);
    load8_cached(scale_row + k, sc);
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) {
      const float x_hat = (v[e] - mean) * rstd;
      v[e] = __fmaf_rn(x_hat, sc[e], x_hat) + sh[e];
    }
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

// GELU, tanh approximation, written as x * sigmoid(2u) = x / (1 + 2^(-2u log2 e)), the same function
// as 0.5 x (1 + tanh(u)) with u = sqrt(2 / pi) (x + 0.044715 x^3).
// NOTE: tanhf costs ~20 instructions an element and would make this kernel compute-bound; ex2.approx
// and a fast divide (two SFU operations) keep it at a few ulp (far below the quantization step) and
// memory-bound. The constants fold -2 log2(e) sqrt(2 / pi) into the polynomial: -2u log2 e = x (kA + kB x^2).
struct GeluTanhOp {
  static constexpr int kStatPasses = 0;
  __device__ static float gelu(float x) {
    constexpr float kA = -2.302208198144325f;   // -2 log2(e) sqrt(2 / pi)
    constexpr float kB = -0.1029432395800235f;  // kA * 0.044715
    float e;
    const float t = x * __fmaf_rn(x * x, kB, kA);
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(t));
    return __fdividef(x, 1.0f + e);
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
