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

// The pipelined kernel holds a row in at most 256 threads x 8 vectors x 8 elements.
constexpr int kMaxRowThreads = 256;
constexpr int kMaxVecsPerThread = 8;
constexpr int kStreamThreads = 256;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Reductions over the threads of one row, which are the whole CTA. The xor butterfly and the fixed order over warps give every thread the same bits.
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
__device__ __forceinline__ float row_max(float v, float* smem) {
  v = warp_max(v);
  if (blockDim.x == 32) return v;
  __syncthreads();
  if (threadIdx.x % 32 == 0) smem[threadIdx.x / 32] = v;
  __syncthreads();
  float r = smem[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) r = max_nan(r, smem[w]);
  return r;
}

// One row held in registers, v[i] = elements [8c, 8c + 8) of the row with c = threadIdx.x + i * blockDim.x:
// the op's statistics, its values (written to y), the SmoothQuant division, the row max, then int8 + scale.
template <typename T, typename Op, int kVecs>
__device__ __forceinline__ void quantize_held_row(const RowArgs<T>& a, Op& op, int64_t row, float (&v)[kVecs][kVecElems],
                                                  int64_t nvec, float* sum_smem, float* max_smem) {
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

  float amax = 0.0f;
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
      for (int e = 0; e < kVecElems; ++e) amax = max_nan(amax, fabsf(v[i][e]));
    }
  }
  const RowQuant rq = row_quant(row_max(amax, max_smem));

  int8_t* qr = a.q + row * a.ldq;
  if (rq.fast) {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
      if (c < nvec) store8_int8_fast(qr + c * kVecElems, v[i], rq.inv);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
      if (c < nvec) store8_int8(qr + c * kVecElems, v[i], rq.inv);
    }
  }
  if (threadIdx.x == 0) a.scale[row] = rq.scale;
}

// Persistent CTAs, one row at a time, global memory read once and written once. While a row is
// processed from registers, the CTA's next row is already streaming into the other half of a
// two-stage shared-memory buffer (cp.async), so loads stay in flight through the reductions.
// Needs cols % 8 == 0 and 16-byte aligned rows. Dynamic smem: 2 * kVecs * blockDim.x * 16 bytes.
// NOTE: each thread copies and later reads only its own 16-byte slots, so the pipeline needs no
// CTA barrier: cp.async.wait_group makes a thread's own copies visible to it.
template <typename T, typename Op, int kVecs>
__global__ void __launch_bounds__(kMaxRowThreads) row_quantize_pipelined(RowArgs<T> a, Op op) {
  extern __shared__ uint4 stages[];  // [2][kVecs * blockDim.x] vectors of 8 elements
  __shared__ float sum_smem[32];
  __shared__ float max_smem[32];
  const int64_t nvec = a.cols / kVecElems;
  const int slots = kVecs * blockDim.x;

  auto fetch = [&](int64_t row, int stage) {
    const T* xr = a.x + row * a.ldx;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
      if (c < nvec) cp_async16(&stages[stage * slots + c], xr + c * kVecElems);
    }
  };

  int stage = 0;
  fetch(blockIdx.x, 0);
  cp_async_commit();
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x, stage ^= 1) {
    if (row + gridDim.x < a.rows) fetch(row + gridDim.x, stage ^ 1);
    cp_async_commit();  // possibly empty: one group per iteration keeps wait_group<1> exact
    cp_async_wait<1>();

    float v[kVecs][kVecElems];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
      if (c < nvec) {
        load8(reinterpret_cast<const T*>(&stages[stage * slots + c]), v[i]);
      } else {
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) v[i][e] = 0.0f;
      }
    }
    quantize_held_row<T, Op, kVecs>(a, op, row, v, nvec, sum_smem, max_smem);
  }
}

// Any cols, any alignment (and rows too long for registers): one row per CTA, element by element,
// reading the row again for each pass (the re-reads mostly hit L2). The fallback path.
template <typename T, typename Op>
__global__ void __launch_bounds__(kStreamThreads) row_quantize_streaming(RowArgs<T> a, Op op) {
  __shared__ float sum_smem[32];
  __shared__ float max_smem[32];
  const int64_t row = blockIdx.x;
  const T* xr = a.x + row * a.ldx;

  op.begin_row(row);
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float s = 0.0f;
    for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) s += op.stat_term(pass, to_float(xr[k]));
    op.end_pass(pass, row_sum(s, sum_smem), a.cols);
  }

  float amax = 0.0f;
  for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) {
    float v = op.apply1(k, to_float(xr[k]));
    if (a.y) a.y[row * a.ldy + k] = from_float<T>(v);
    if (a.smooth) v = v / a.smooth[k];
    amax = max_nan(amax, fabsf(v));
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
