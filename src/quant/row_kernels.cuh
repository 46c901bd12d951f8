// The two kernels behind every activation-quantization entry point, generic over a row op
// (row_ops.cuh) that turns an input element into the fp32 value to quantize.
//
// An Op provides:
//   kStatPasses                       reductions over the row before the values exist (LayerNorm: 2)
//   kChannelVec4s                     float4s of per-channel values per 8 columns that the pipelined
//                                     kernel may keep in shared memory across rows (0: none)
//   begin_row(row) -> bool            per-row setup (which batch's modulation vectors); true where the
//                                     channel values differ from the previous row's
//   fill8(k, dst, stride) / apply8_cached(v[8], src, stride)   (kChannelVec4s > 0) those values for
//                                     columns k..k + 7 to shared memory, and apply8 reading them there
//   stat_term(pass, x) / end_pass(pass, sum)   (end_pass gets the sum over the whole row)
//   apply8(k, v[8]) / apply1(k, x)    the value of elements k.. (k: the column) from the inputs x
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

// Reductions over the threads of one row, which are the whole CTA: a butterfly in every warp, then
// every thread adds the (at most 8) warps' results from shared memory in one fixed tree: ~8
// instructions and one shared load's latency after the barrier, where a second butterfly was five
// dependent shuffles. A butterfly leaves the same bits in every lane (a + b == b + a) and all threads
// add the same partials in the same order, so every thread gets the same value.
// NOTE: the slots past the last warp stay zero from init(), which is why max is for values >= 0.
// The partials alternate between two buffers, so one barrier per reduction is enough: a thread
// writes buffer p for reduction k + 2 only after passing reduction k + 1's barrier, which every
// thread reaches only after reading reduction k's values from p. (A LayerNorm row makes three.)
constexpr int kMaxRowWarps = kMaxRowThreads / 32;
static_assert(kMaxRowWarps == 8 && kStreamThreads <= kMaxRowThreads, "the reduction tree adds 8 partials");

struct RowReducer {
  float4 (*partials)[2];  // [2 buffers][8 floats] in shared memory
  int parity = 0;

  // Every thread of the CTA, before the first reduction.
  __device__ void init() {
    if (threadIdx.x < 2 * kMaxRowWarps) reinterpret_cast<float*>(partials)[threadIdx.x] = 0.0f;
    __syncthreads();
  }
  __device__ float sum(float v) {
    v = warp_sum(v);
    if (blockDim.x == 32) return v;
    const float4* p = publish(v);
    const float4 a = p[0], b = p[1];
    return ((a.x + a.y) + (a.z + a.w)) + ((b.x + b.y) + (b.z + b.w));
  }
  // The max of values >= 0 or NaN.
  __device__ float max_nonneg(float v) {
    v = warp_max(v);
    if (blockDim.x == 32) return v;
    const float4* p = publish(v);
    const float4 a = p[0], b = p[1];
    return max_nan(max_nan(max_nan(a.x, a.y), max_nan(a.z, a.w)), max_nan(max_nan(b.x, b.y), max_nan(b.z, b.w)));
  }

 private:
  __device__ const float4* publish(float warp_value) {
    float4* p = partials[parity];
    parity ^= 1;
    if (threadIdx.x % 32 == 0) reinterpret_cast<float*>(p)[threadIdx.x / 32] = warp_value;
    __syncthreads();
    return p;
  }
};

// One row held in registers, v[i] = elements [8c, 8c + 8) of the row with c = threadIdx.x + i * blockDim.x
// where has[i] (the row's last vectors fall to some threads only): the op's statistics, its values
// (written to y), the SmoothQuant division, the row max, then int8 + scale.
// NOTE: columns are 32-bit (this kernel takes rows of at most 16384 columns, row_shape.h): 64-bit
// column arithmetic cost a few instructions a vector in a kernel whose speed is its instruction count.
template <typename T, typename Op, int kVecs, bool kCacheChannels>
__device__ __forceinline__ void quantize_held_row(const RowArgs<T>& a, Op& op, int64_t row, float (&v)[kVecs][kVecElems],
                                                  const bool (&has)[kVecs], RowReducer& reduce, float4* channels) {
  const int col0 = threadIdx.x * kVecElems, col_step = blockDim.x * kVecElems;
  const int chan_step = Op::kChannelVec4s * blockDim.x;  // channels of vector i: channels + i * chan_step
  const bool refill = op.begin_row(row);
  if constexpr (kCacheChannels) {
    if (refill) {
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) op.fill8(col0 + i * col_step, channels + i * chan_step, blockDim.x);
      }
    }
  }
#pragma unroll
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) {
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) s += op.stat_term(pass, v[i][e]);
      }
    }
    op.end_pass(pass, reduce.sum(s));
  }

  T* const yr = a.y ? a.y + row * a.ldy : nullptr;
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int k = col0 + i * col_step;
    if (has[i]) {
      if constexpr (kCacheChannels) {
        op.apply8_cached(v[i], channels + i * chan_step, blockDim.x);
      } else {
        op.apply8(k, v[i]);
      }
      if (yr) store8(yr + k, v[i]);
      if (a.smooth) {
        float s[kVecElems];
        load8_cached(a.smooth + k, s);
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) v[i][e] = v[i][e] / s[e];
      }
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) amax = max_nan(amax, fabsf(v[i][e]));
    }
  }
  const RowQuant rq = row_quant(reduce.max_nonneg(amax));

  int8_t* const qr = a.q + row * a.ldq;
  if (rq.fast) {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) store8_int8_fast(qr + col0 + i * col_step, v[i], rq.inv);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) store8_int8(qr + col0 + i * col_step, v[i], rq.inv);
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

// Whether the pipelined kernel keeps the op's per-channel values (LayerNorm's 1 + scale and shift,
// RMSNorm's weight) in shared memory as fp32 across rows: each thread reads back only its own
// columns, so like the stages it needs no barrier. Per element that replaces two bf16 loads, their
// unpacking and the 1 + scale with one shared load (~5 instructions of LayerNorm's ~28). Not at
// 8 vectors a thread, where LayerNorm's 512 bytes a thread would leave one CTA per SM.
template <typename Op, int kVecs>
constexpr bool caches_channels() { return Op::kChannelVec4s > 0 && kVecs <= 4; }

// Dynamic shared memory per thread of the pipelined kernel: the stages, then the channel cache.
template <typename Op, int kVecs>
constexpr size_t pipelined_smem_per_thread() {
  return sizeof(uint4) * (pipeline_stages<kVecs>() * kVecs + (caches_channels<Op, kVecs>() ? kVecs * Op::kChannelVec4s : 0));
}

// Persistent CTAs, each over a contiguous range of rows (so that rows of one batch, which share the
// op's channel values, follow each other), one row at a time, global memory read once and written
// once. While a row is processed from registers, the CTA's next rows are already streaming into the
// other stages of a shared-memory ring (cp.async), so loads stay in flight through the reductions.
// Needs cols % 8 == 0 and 16-byte aligned rows. Dynamic smem: pipelined_smem_per_thread() * blockDim.x.
// NOTE: each thread copies and later reads only its own 16-byte slots, so the pipeline needs no
// CTA barrier: cp.async.wait_group makes a thread's own copies visible to it, and the stage a
// thread refills is one only it has finished reading.
template <typename T, typename Op, int kVecs>
__global__ void __launch_bounds__(kMaxRowThreads) row_quantize_pipelined(RowArgs<T> a, Op op) {
  constexpr int kStages = pipeline_stages<kVecs>();
  constexpr bool kCacheChannels = caches_channels<Op, kVecs>();
  extern __shared__ uint4 stages[];  // [kStages][kVecs][blockDim.x] vectors, then [kVecs][kChannelVec4s][blockDim.x]
  __shared__ float4 partials[2][2];
  RowReducer reduce{partials};
  reduce.init();
  const int threads = blockDim.x;
  const int nvec = static_cast<int>(a.cols / kVecElems);
  // Which of this thread's vector slots hold a vector: the same for every row, and known for the
  // leading ones (row_shape.h), which the compiler then emits without a test.
  bool has[kVecs];
#pragma unroll
  for (int i = 0; i < kVecs; ++i) has[i] = i < full_vector_slots(kVecs) || static_cast<int>(threadIdx.x) + i * threads < nvec;
  uint4* const mine = stages + threadIdx.x;  // vector i of stage s: mine[(s * kVecs + i) * threads]
  float4* const channels = kCacheChannels ? reinterpret_cast<float4*>(stages + kStages * kVecs * threads) + threadIdx.x : nullptr;
  const int col0 = threadIdx.x * kVecElems, col_step = threads * kVecElems;
  // This CTA's rows: [first, end), the rows split as evenly as the grid allows.
  const int64_t first = a.rows * blockIdx.x / gridDim.x, end = a.rows * (blockIdx.x + 1) / gridDim.x;

  auto fetch = [&](int64_t row, int stage) {
    const T* xr = a.x + row * a.ldx + col0;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) cp_async16(mine + (stage * kVecs + i) * threads, xr + i * col_step);
    }
  };

  // Prologue: the first kStages - 1 rows of this CTA, one commit group each (possibly empty).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (first + s < end) fetch(first + s, s);
    cp_async_commit();
  }
  int stage = 0;
  for (int64_t row = first; row < end; ++row, stage = stage + 1 == kStages ? 0 : stage + 1) {
    const int64_t ahead = row + (kStages - 1);
    if (ahead < end) fetch(ahead, stage == 0 ? kStages - 1 : stage - 1);
    cp_async_commit();  // possibly empty: one group per iteration keeps wait_group<kStages - 1> exact
    cp_async_wait<kStages - 1>();

    float v[kVecs][kVecElems];  // slots without a vector stay unset: every use tests has[i]
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) load8(reinterpret_cast<const T*>(mine + (stage * kVecs + i) * threads), v[i]);
    }
    quantize_held_row<T, Op, kVecs, kCacheChannels>(a, op, row, v, has, reduce, channels);
  }
}

// Any cols, any alignment (and rows too long for registers): one row per CTA, element by element,
// reading the row again for each pass (the re-reads mostly hit L2). The fallback path.
template <typename T, typename Op>
__global__ void __launch_bounds__(kStreamThreads) row_quantize_streaming(RowArgs<T> a, Op op) {
  __shared__ float4 partials[2][2];
  RowReducer reduce{partials};
  reduce.init();
  const int64_t row = blockIdx.x;
  const T* xr = a.x + row * a.ldx;

  op.begin_row(row);
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float s = 0.0f;
    for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) s += op.stat_term(pass, to_float(xr[k]));
    op.end_pass(pass, reduce.sum(s));
  }

  float amax = 0.0f;
  for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) {
    float v = op.apply1(k, to_float(xr[k]));
    if (a.y) a.y[row * a.ldy + k] = from_float<T>(v);
    if (a.smooth) v = v / a.smooth[k];
    amax = max_nan(amax, fabsf(v));
  }
  const RowQuant rq = row_quant(reduce.max_nonneg(amax));

  for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) {
    float v = op.apply1(k, to_float(xr[k]));
    if (a.smooth) v = v / a.smooth[k];
    a.q[row * a.ldq + k] = quantize_value(v, rq.inv);
  }
  if (threadIdx.x == 0) a.scale[row] = rq.scale;
}

}  // namespace int8dit::quant
