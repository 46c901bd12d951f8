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

// Reductions over the threads of one row, which are the whole CTA. The xor butterfly and the fixed
// order over warps give every thread the same bits.
// NOTE: the warps' partials alternate between two shared buffers, so one barrier per reduction is
// enough: a thread writes buffer p for reduction k + 2 only after passing reduction k + 1's barrier,
// which every thread reaches only after reading reduction k's values from p. (A single buffer needs
// a second barrier before each write; a LayerNorm row makes three reductions.)
struct RowReducer {
  float (*partials)[32];  // [2][32] in shared memory
  int parity = 0;

  __device__ float sum(float v) {
    v = warp_sum(v);
    if (blockDim.x == 32) return v;
    float* p = publish(v);
    float r = p[0];
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) r += p[w];
    return r;
  }
  __device__ float max(float v) {
    v = warp_max(v);
    if (blockDim.x == 32) return v;
    float* p = publish(v);
    float r = p[0];
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) r = max_nan(r, p[w]);
    return r;
  }

 private:
  __device__ float* publish(float warp_value) {
    float* p = partials[parity];
    parity ^= 1;
    if (threadIdx.x % 32 == 0) p[threadIdx.x / 32] = warp_value;
    __syncthreads();
    return p;
  }
};

// One row held in registers, v[i] = elements [8c, 8c + 8) of the row with c = threadIdx.x + i * blockDim.x:
// the op's statistics, its values (written to y), the SmoothQuant division, the row max, then int8 + scale.
template <typename T, typename Op, int kVecs>
__device__ __forceinline__ void quantize_held_row(const RowArgs<T>& a, Op& op, int64_t row, float (&v)[kVecs][kVecElems],
                                                  int64_t nvec, RowReducer& reduce) {
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
    op.end_pass(pass, reduce.sum(s), a.cols);
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
  const RowQuant rq = row_quant(reduce.max(amax));

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

// Shared-memory stages of the pipelined kernel: rows in flight per CTA while one is processed.
// NOTE: measured, not guessed: four stages for rows of <= 2 vectors a thread (K <= 4096), which should
// have hidden more of each row's load behind the previous rows' reductions, were slower on the H200
// (2026-12-02, two runs of the same session: quantize_rows 4096x3072 at 0.525 of copy bandwidth with
// four, 0.599 with two; layernorm_modulate_quantize 0.306 and 0.325). Why is open (less L1 beside the
// larger shared-memory carve-out is one suspect); the ring stays general for the next experiment.
template <int kVecs>
constexpr int pipeline_stages() { return 2; }

// Persistent CTAs, one row at a time, global memory read once and written once. While a row is
// processed from registers, the CTA's next rows are already streaming into the other stages of a
// shared-memory ring (cp.async), so loads stay in flight through the reductions.
// Needs cols % 8 == 0 and 16-byte aligned rows. Dynamic smem: stages * kVecs * blockDim.x * 16 bytes.
// NOTE: each thread copies and later reads only its own 16-byte slots, so the pipeline needs no
// CTA barrier: cp.async.wait_group makes a thread's own copies visible to it, and the stage a
// thread refills is one only it has finished reading.
template <typename T, typename Op, int kVecs>
__global__ void __launch_bounds__(kMaxRowThreads) row_quantize_pipelined(RowArgs<T> a, Op op) {
  constexpr int kStages = pipeline_stages<kVecs>();
  extern __shared__ uint4 stages[];  // [kStages][kVecs * blockDim.x] vectors of 8 elements
  __shared__ float partials[2][32];
  RowReducer reduce{partials};
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

  // Prologue: the first kStages - 1 rows of this CTA, one commit group each (possibly empty).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    const int64_t row = blockIdx.x + static_cast<int64_t>(s) * gridDim.x;
    if (row < a.rows) fetch(row, s);
    cp_async_commit();
  }
  int stage = 0;
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x, stage = stage + 1 == kStages ? 0 : stage + 1) {
    const int64_t ahead = row + static_cast<int64_t>(kStages - 1) * gridDim.x;
    if (ahead < a.rows) fetch(ahead, stage == 0 ? kStages - 1 : stage - 1);
    cp_async_commit();  // possibly empty: one group per iteration keeps wait_group<kStages - 1> exact
    cp_async_wait<kStages - 1>();

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
    quantize_held_row<T, Op, kVecs>(a, op, row, v, nvec, reduce);
  }
}

// Any cols, any alignment (and rows too long for registers): one row per CTA, element by element,
// reading the row again for each pass (the re-reads mostly hit L2). The fallback path.
template <typename T, typename Op>
__global__ void __launch_bounds__(kStreamThreads) row_quantize_streaming(RowArgs<T> a, Op op) {
  __shared__ float partials[2][32];
  RowReducer reduce{partials};
  const int64_t row = blockIdx.x;
  const T* xr = a.x + row * a.ldx;

  op.begin_row(row);
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float s = 0.0f;
    for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) s += op.stat_term(pass, to_float(xr[k]));
    op.end_pass(pass, reduce.sum(s), a.cols);
  }

  float amax = 0.0f;
  for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) {
    float v = op.apply1(k, to_float(xr[k]));
    if (a.y) a.y[row * a.ldy + k] = from_float<T>(v);
    if (a.smooth) v = v / a.smooth[k];
    amax = max_nan(amax, fabsf(v));
  }
  const RowQuant rq = row_quant(reduce.max(amax));

  for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) {
    float v = op.apply1(k, to_float(xr[k]));
    if (a.smooth) v = v / a.smooth[k];
    a.q[row * a.ldq + k] = quantize_value(v, rq.inv);
  }
  if (threadIdx.x == 0) a.scale[row] = rq.scale;
}

}  // namespace int8dit::quant
