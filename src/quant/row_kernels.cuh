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

// Register-row kernel shapes. Short rows: one warp per row, kWarpRowsPerCta rows per CTA, up to
// 32 lanes x 12 vectors (3072 elements, the DiT hidden sizes). Longer rows: one CTA of up to
// kMaxRowWarps warps per row, 8 vectors a lane (up to 32768 elements). Longer or unaligned rows: the
// streaming kernel.
constexpr int kWarpRowsPerCta = 4;
constexpr int kMaxWarpRowVecs = 12;
// NOTE: 4 resident CTAs (16 warps, 16 rows in flight) an SM cap the warp kernel at 128 registers; left
// alone, ptxas takes ~155 for 12 vectors a lane, which leaves 12 warps. 5 CTAs (96 registers) spill.
constexpr int kWarpRowMinCtas = 4;
constexpr int kCtaRowVecs = 8;
constexpr int kMaxRowWarps = 16;
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

// The threads that share one row and how they reduce over it.
// One warp: shuffles only, no barrier, so the warps of a CTA finish their rows independently.
struct WarpTeam {
  __device__ int rank() const { return threadIdx.x % 32; }
  __device__ int size() const { return 32; }
  __device__ float sum(float v) const { return warp_sum(v); }
  __device__ float max(float v) const { return warp_max(v); }
};
// A whole CTA (long rows): block-wide reductions through shared memory.
struct CtaTeam {
  float* smem;  // 32 floats
  __device__ int rank() const { return threadIdx.x; }
  __device__ int size() const { return blockDim.x; }
  __device__ float sum(float v) const { return row_sum(v, smem); }
  __device__ float max(float v) const { return row_max(v, smem); }
};

// A team's share of a row: v[i] = elements [8c, 8c + 8) with c = rank + i * size (each load
// instruction of a warp reads 512 contiguous bytes), zeros past the row's end.
// NOTE: all kVecs 16-byte loads are issued before the first use, so a lane has kVecs loads in flight;
// streaming loads (evict-first) because each activation is read once and should not displace the
// per-channel vectors the ops read for every row.
template <typename T, int kVecs, typename Team>
__device__ __forceinline__ void load_row(const T* xr, int64_t nvec, const Team& team, float (&v)[kVecs][kVecElems]) {
  uint4 raw[kVecs];
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t c = team.rank() + static_cast<int64_t>(i) * team.size();
    raw[i] = c < nvec ? __ldcs(reinterpret_cast<const uint4*>(xr + c * kVecElems)) : make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int i = 0; i < kVecs; ++i) load8(reinterpret_cast<const T*>(&raw[i]), v[i]);
}

// Rows whose smoothed max |v| lies in this range are quantized from smooth_div's quotients; any other
// row (zeros, NaN/Inf, tiny or huge values, or a divisor outside [2^-40, 2^40]) is recomputed with
// IEEE division. Why the range suffices: smooth_div is exact for |x| in [2^-60, 2^100] and such
// divisors; a smaller |x| gives |x / s| < 2^-20, which quantizes to 0 against a row max >= 2^-8
// whether or not its last bit is right.
constexpr float kSmoothFastMin = 0x1p-8f;
constexpr float kSmoothFastMax = 0x1p60f;
constexpr float kSmoothDivisorMax = 0x1p40f;

// One row held in registers: the op's statistics, its values (written to y), the SmoothQuant
// division, the row max, then int8 + scale.
template <typename T, typename Op, int kVecs, typename Team>
__device__ __forceinline__ void quantize_held_row(const RowArgs<T>& a, Op& op, int64_t row, float (&v)[kVecs][kVecElems],
                                                  int64_t nvec, const Team& team) {
  op.begin_row(row);
#pragma unroll
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (team.rank() + static_cast<int64_t>(i) * team.size() < nvec) {
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) s += op.stat_term(pass, v[i][e]);
      }
    }
    op.end_pass(pass, team.sum(s), a.cols);
  }

  float amax = 0.0f;
  float divisor_range = 0.0f;  // max over this lane's divisors s and reciprocals 1/s
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t c = team.rank() + static_cast<int64_t>(i) * team.size();
    if (c < nvec) {
      op.apply8(c * kVecElems, v[i]);
      if (a.y) store8(a.y + row * a.ldy + c * kVecElems, v[i]);
      if (a.smooth) {
        float s[kVecElems];
        load8_cached(a.smooth + c * kVecElems, s);
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) v[i][e] = smooth_div(v[i][e], s[e], divisor_range);
      }
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) amax = max_nan(amax, fabsf(v[i][e]));
    }
  }
  if (a.smooth) {
    // A divisor outside the range makes the row max NaN, which sends the row to the exact path below.
    if (!(divisor_range <= kSmoothDivisorMax)) amax = __uint_as_float(0x7fc00000u);
    amax = team.max(amax);
    if (!(amax >= kSmoothFastMin && amax <= kSmoothFastMax)) {
      // Rare: the row again from global memory, divided with IEEE division (what the CPU reference does).
      load_row<T, kVecs>(a.x + row * a.ldx, nvec, team, v);
      amax = 0.0f;
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        const int64_t c = team.rank() + static_cast<int64_t>(i) * team.size();
        if (c < nvec) {
          op.apply8(c * kVecElems, v[i]);
          float s[kVecElems];
          load8_cached(a.smooth + c * kVecElems, s);
#pragma unroll
          for (int e = 0; e < kVecElems; ++e) {
            v[i][e] = v[i][e] / s[e];
            amax = max_nan(amax, fabsf(v[i][e]));
          }
        }
      }
      amax = team.max(amax);
    }
  } else {
    amax = team.max(amax);
  }
  const RowQuant rq = row_quant(amax);

  int8_t* qr = a.q + row * a.ldq;
  if (rq.fast) {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int64_t c = team.rank() + static_cast<int64_t>(i) * team.size();
      if (c < nvec) store8_int8_fast(qr + c * kVecElems, v[i], rq.inv);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int64_t c = team.rank() + static_cast<int64_t>(i) * team.size();
      if (c < nvec) store8_int8(qr + c * kVecElems, v[i], rq.inv);
    }
  }
  if (team.rank() == 0) a.scale[row] = rq.scale;
}

// Rows of at most 32 * kVecs vectors: one warp per row, kWarpRowsPerCta rows per CTA, one row per warp
// (no grid-stride loop). The row goes straight into registers and is reduced with shuffles.
// NOTE: why a plain grid: a DiT activation has only ~2-4 rows per resident warp, too few for a
// persistent loop to pipeline and enough to leave its last round mostly empty; with a warp per row
// the block scheduler refills an SM as soon as a CTA's rows are done, and every resident warp keeps
// its whole row (6 KB at K = 3072) of loads in flight while others compute.
template <typename T, typename Op, int kVecs>
__global__ void __launch_bounds__(kWarpRowsPerCta * 32, kWarpRowMinCtas) row_quantize_warp(RowArgs<T> a, Op op) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpRowsPerCta + threadIdx.x / 32;
  if (row >= a.rows) return;  // whole warps only; no CTA barrier follows
  const int64_t nvec = a.cols / kVecElems;
  const WarpTeam team;
  float v[kVecs][kVecElems];
  load_row<T, kVecs>(a.x + row * a.ldx, nvec, team, v);
  quantize_held_row<T, Op, kVecs>(a, op, row, v, nvec, team);
}

// Longer rows: one CTA of blockDim.x <= 32 * kMaxRowWarps threads per row, kVecs vectors a thread.
template <typename T, typename Op, int kVecs>
__global__ void __launch_bounds__(kMaxRowWarps * 32) row_quantize_cta(RowArgs<T> a, Op op) {
  __shared__ float red_smem[32];
  const int64_t row = blockIdx.x;
  const int64_t nvec = a.cols / kVecElems;
  const CtaTeam team{red_smem};
  float v[kVecs][kVecElems];
  load_row<T, kVecs>(a.x + row * a.ldx, nvec, team, v);
  quantize_held_row<T, Op, kVecs>(a, op, row, v, nvec, team);
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
