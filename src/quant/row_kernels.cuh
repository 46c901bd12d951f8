// The two kernels behind every activation-quantization entry point, generic over a row op
// (row_ops.cuh) that turns an input element into the fp32 value to quantize.
//
// An Op provides:
//   kStatPasses                       reductions over the row before the values exist (LayerNorm: 2)
//   begin_row(row)                    per-row setup (which batch's modulation vectors)
//   stat_term(pass, x) / end_pass(pass, sum, cols)
//   apply8(k, v[8]) / apply1(k, x)    the value of elements k.. from the inputs x
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "quant/row_io.cuh"

namespace int8dit::quant {

template <typename T>
struct RowArgs {
  int64_t rows = 0, cols = 0;
  const T* x = nullptr;
  int64_t ldx = 0;
  const float* smooth = nullptr;  // optional divisor s_k
  int8_t* q = nullptr;
  int64_t ldq = 0;
  float* scale = nullptr;
  T* y = nullptr;                 // optional: the value before smoothing, rounded to T
  int64_t ldy = 0;
};

// The register kernel holds a row in at most 256 threads x 8 vectors x 8 elements.
constexpr int kMaxRowThreads = 256;
constexpr int kMaxVecsPerThread = 8;
constexpr int kStreamThreads = 256;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ uint32_t warp_max(uint32_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Reductions over the threads of one row: a warp (blockDim.x == 32, several rows per CTA) or the whole
// CTA (one row). The xor butterfly and the fixed order over warps give every thread the same bits.
__device__ __forceinline__ float row_sum(float v, float* smem) {
  v = warp_sum(v);
  if (blockDim.x == 32) return v;
  __syncthreads();  // the previous reduction's readers are done with smem
  if (threadIdx.x % 32 == 0) smem[threadIdx.x / 32] = v;
  __syncthreads();
  float r = smem[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) r += smem[w];
  return r;
}
__device__ __forceinline__ uint32_t row_max(uint32_t v, uint32_t* smem) {
  v = warp_max(v);
  if (blockDim.x == 32) return v;
  __syncthreads();
  if (threadIdx.x % 32 == 0) smem[threadIdx.x / 32] = v;
  __syncthreads();
  uint32_t r = smem[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) r = max(r, smem[w]);
  return r;
}

// One row per CTA (or per warp, blockDim.y rows per CTA, when blockDim.x == 32), held in registers:
// global memory is read once and written once. Needs cols % 8 == 0 and 16-byte aligned rows.
template <typename T, typename Op, int kVecs>
__global__ void __launch_bounds__(kMaxRowThreads) row_quantize_registers(RowArgs<T> a, Op op) {
  __shared__ float sum_smem[32];
  __shared__ uint32_t max_smem[32];
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= a.rows) return;  // the whole CTA shares `row` whenever it synchronizes (blockDim.y == 1)
  const int64_t nvec = a.cols / kVecElems;
  const T* xr = a.x + row * a.ldx;

  // NOTE: all loads are issued before any use so kVecs 16-byte loads per thread are in flight.
  float v[kVecs][kVecElems];
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t c = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (c < nvec) {
      load8(xr + c * kVecElems, v[i]);
    } else {
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) v[i][e] = 0.0f;
    }
  }

  op.begin_row(row);
#pragma unroll
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (threadIdx.x + static_cast<int64_t>(i) * blockDim.x < nvec) {
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) s += op.stat_term(pass, v[i][e]);
      }
    }
    op.end_pass(pass, row_sum(s, sum_smem), a.cols);
  }

  uint32_t amax = 0;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t c = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (c < nvec) {
      op.apply8(c * kVecElems, v[i]);
      if (a.y) store8(a.y + row * a.ldy + c * kVecElems, v[i]);
      if (a.smooth) {
        float s[kVecElems];
        load8_cached(a.smooth + c * kVecElems, s);
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) v[i][e] = v[i][e] / s[e];
      }
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) amax = max(amax, abs_bits(v[i][e]));
    }
  }
  const RowQuant rq = row_quant(row_max(amax, max_smem));

  int8_t* qr = a.q + row * a.ldq;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t c = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (c < nvec) store8_int8(qr + c * kVecElems, v[i], rq.inv);
  }
  if (threadIdx.x == 0) a.scale[row] = rq.scale;
}

// Any cols, any alignment (and rows too long for registers): one row per CTA, element by element,
// reading the row again for each pass (the re-reads mostly hit L2). The fallback path.
template <typename T, typename Op>
__global__ void __launch_bounds__(kStreamThreads) row_quantize_streaming(RowArgs<T> a, Op op) {
  __shared__ float sum_smem[32];
  __shared__ uint32_t max_smem[32];
  const int64_t row = blockIdx.x;
  const T* xr = a.x + row * a.ldx;

  op.begin_row(row);
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float s = 0.0f;
    for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) s += op.stat_term(pass, to_float(xr[k]));
    op.end_pass(pass, row_sum(s, sum_smem), a.cols);
  }

  uint32_t amax = 0;
  for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) {
    float v = op.apply1(k, to_float(xr[k]));
    if (a.y) a.y[row * a.ldy + k] = from_float<T>(v);
    if (a.smooth) v = v / a.smooth[k];
    amax = max(amax, abs_bits(v));
  }
  const RowQuant rq = row_quant(row_max(amax, max_smem));

  for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) {
    float v = op.apply1(k, to_float(xr[k]));
    if (a.smooth) v = v / a.smooth[k];
    a.q[row * a.ldq + k] = quantize_value(v, rq.inv);
  }
  if (threadIdx.x == 0) a.scale[row] = rq.scale;
}

}  // namespace int8dit::quant
