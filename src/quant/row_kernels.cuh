// The two kernels behind every activation-quantization entry point, generic over a row op
// (row_ops.cuh) that turns an input element into the fp32 value to quantize.
//
// An Op provides:
//   kStatPasses                       reductions over the row before the values exist (LayerNorm: 2)
//   kChannelVec4s                     float4s of per-channel values per 8 columns that the persistent
//                                     kernel may keep in shared memory across rows (0: none)
//   begin_row(row) -> bool            per-row setup (which batch's modulation vectors); true where the
//                                     channel values differ from the previous row's
//   fill8(k, dst, stride) / apply8_cached(k, v[8], src, stride)   (kChannelVec4s > 0) those values
//                                     for columns k..k + 7 to shared memory, and apply8 reading them
//                                     there (and whatever the op does not cache, at column k)
//   kChannelsVaryByRow                (kChannelVec4s > 0) whether the op's channel values can differ
//                                     between rows; where true, also channels_vary(rows) (host: they
//                                     do in this call), and the launcher then runs the cached kernel
//                                     on WithRowBlocks<Op>: contiguous rows a persistent CTA; and
//                                     rows_sharing_channels() (host: the grouped kernel's parts,
//                                     row_grouped.cuh)
//   stat_term(pass, x) / end_pass(pass, sum)   (end_pass gets the sum over the whole row)
//   apply8(k, v[8]) / apply1(k, x)    the value of elements k.. (k: the column) from the inputs x
//   kTransformsInput, fetch8(row, k), begin_transform(row), transform8(k, v[8], fetched),
//   store_transformed8(k, v[8])       (optional) the loaded row becomes the row the op works on, from
//                                     a second row input the kernel fetches with x's (vector kernels only)
//   kWideRows                         (optional, with kTransformsInput) rows of 16392..24576 columns
//                                     run in the 512-thread register kernel (TakesWideRows)
//   kRowMaxInOneRedux                 (optional) the register kernels' row max in one redux.sync a
//                                     warp (RowMaxInOneRedux; GeluTanhOp)
//   kSecondInput, element(x, ldx, row, k)   (optional) the row continues in a second input: where
//                                     element k of the row lives (ConcatGeluOp); such an op never
//                                     takes the bulk-copy ring, which stages one input row
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "quant/nonneg_max_key.h"
#include "quant/row_io.cuh"
#include "quant/smooth_division.h"

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
// The warp's max of values >= 0 or NaN in one redux.sync (sm_80+) on their nonneg_max_key, where a
// butterfly is five dependent shuffles and maxima: a row's max is the last reduction before its int8
// values, so its latency is paid by every row. 0.993-1.000 of the time over the grouped cases on the
// H100 (LayerNorm 4096 x 3072 16.29 -> 16.20 us; bench/results/h100/quant_ab_redux_l2_prefetch.md).
// NOTE: the grouped kernel's reducer only: in the register kernels it moved ptxas's allocation by
// -18..+40 registers (SwiGLU's 6-vector kernel 128 -> 168: one CTA an SM where two fit).
__device__ __forceinline__ float warp_max_nonneg(float v) {
  return from_nonneg_max_key(__reduce_max_sync(0xffffffffu, nonneg_max_key(v)));
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Lets the kernel launched after this one with programmatic stream serialization be scheduled now,
// where it used to wait for this grid's end: that is our Hopper GEMM, which reads what these kernels
// write, and whose launch and prologue (barrier set-up, tensor-map prefetch) then overlap this
// kernel's last rows. Safe at the very start of every kernel: the release takes effect once every CTA
// of the grid has issued it (so all of them have started), and it grants no memory ordering at all;
// the GEMM waits for this grid to complete and its writes to be visible (griddepcontrol.wait) before
// its first global access. Kernels launched without that attribute (every non-int8dit kernel) are not
// affected. A no-op before sm_90.
__device__ __forceinline__ void release_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Waits until the kernel before this one in the stream has completed and its writes are visible
// (griddepcontrol.wait). On Hopper the row kernels are launched programmatically (row_launch.cuh:
// launch_row_kernel; all but the persistent one-warp grids whose CTA count shared memory sets,
// row_path.h: launches_programmatically), so that their launch and set-up overlap the end of the
// kernel before them (the previous layer's GEMM, which releases its dependents at its last tiles);
// every row kernel therefore
// calls this before its first global access, read or write (its input may be that kernel's output,
// its output buffers that kernel's input). Returns at once in a kernel launched without the attribute;
// a no-op before sm_90, where the launcher never sets it.
__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Reductions over the threads of one row, which are the whole CTA: a butterfly in every warp, then
// every thread adds the (at most kWarps: 8, or 16 in the wide kernels) warps' results from shared
// memory in one fixed tree: ~8 instructions and one shared load's latency after the barrier, where a
// second butterfly was five dependent shuffles. A butterfly leaves the same bits in every lane
// (a + b == b + a) and all threads add the same partials in the same order, so every thread gets the
// same value.
// NOTE: the slots past the last warp stay zero from init(), which is why max is for values >= 0.
// The partials alternate between two buffers, so one barrier per reduction is enough: a thread
// writes buffer p for reduction k + 2 only after passing reduction k + 1's barrier, which every
// thread reaches only after reading reduction k's values from p. (A LayerNorm row makes three.)
// kWarpRedux: the warp's max in one redux.sync (warp_max_nonneg) instead of five shuffles, for the ops
// that ask for it (RowMaxInOneRedux). Not for all: in every register kernel it moved ptxas' registers by
// -18..+40 for at most 0.7%, SwiGLU's 6-vector kernel 0.7% slower (quant_ab_redux_l2_prefetch.md, redux_all).
template <int kWarps, bool kWarpRedux = false>
struct RowReducer {
  static_assert(kWarps == 8 || kWarps == 16, "the reduction tree adds 8 or 16 partials");
  static constexpr int kVec4s = kWarps / 4;
  float4 (*partials)[kVec4s];  // [2 buffers][kWarps floats] in shared memory
  int parity = 0;

  // Every thread of the CTA, before the first reduction.
  __device__ void init() {
    if (threadIdx.x < 2 * kWarps) reinterpret_cast<float*>(partials)[threadIdx.x] = 0.0f;
    __syncthreads();
  }
  __device__ float sum(float v) {
    v = warp_sum(v);
    if (blockDim.x == 32) return v;
    const float4* p = publish(v);
    float part[kVec4s];
#pragma unroll
    for (int i = 0; i < kVec4s; ++i) {
      const float4 a = p[i];
      part[i] = (a.x + a.y) + (a.z + a.w);
    }
    return kVec4s == 2 ? part[0] + part[1] : (part[0] + part[1]) + (part[kVec4s - 2] + part[kVec4s - 1]);
  }
  // The max of values >= 0 or NaN.
  __device__ float max_nonneg(float v) {
    v = kWarpRedux ? warp_max_nonneg(v) : warp_max(v);
    if (blockDim.x == 32) return v;
    const float4* p = publish(v);
    float m = 0.0f;
#pragma unroll
    for (int i = 0; i < kVec4s; ++i) {
      const float4 a = p[i];
      m = max_nan(m, max_nan(max_nan(a.x, a.y), max_nan(a.z, a.w)));
    }
    return m;
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
static_assert(kMaxRowThreads == 8 * 32 && kWideRowThreads == 16 * 32 && kStreamThreads <= kMaxRowThreads,
              "RowReducer<8> serves the kernels of up to kMaxRowThreads, RowReducer<16> the wide ones");

// The reducer and its shared partials for a kernel of at most kMaxThreads threads.
template <int kMaxThreads, bool kWarpRedux = false>
using RowReducerFor = RowReducer<kMaxThreads / 32, kWarpRedux>;

// SmoothQuant's reciprocals in shared memory, [kVecs][2][blockDim.x] float4 (8 columns a vector slot),
// each thread reading back only its own: computed from s_k once per persistent CTA, they replace the
// division of every element of every later row by 3 FP32 operations (smooth_division.h).
constexpr int smooth_reciprocal_bytes_per_thread(int vecs) { return vecs * 2 * static_cast<int>(sizeof(float4)); }

// Fills this thread's reciprocals at `base` (the thread's first float4) and returns `base`, or nullptr
// where one of its divisors is outside the fast path's range (then its rows take the IEEE division).
template <typename T, int kVecs>
__device__ __forceinline__ const float4* smooth_reciprocals_for_thread(const RowArgs<T>& a, const bool (&has)[kVecs],
                                                                       float4* base) {
  const int col0 = threadIdx.x * kVecElems, col_step = blockDim.x * kVecElems;
  bool ok = true;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    if (has[i]) {
      float s[kVecElems], r[kVecElems];
      load8_cached(a.smooth + col0 + i * col_step, s);
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) {
        r[e] = __frcp_rn(s[e]);
        ok &= divisor_in_fast_range(s[e]);
      }
      base[(2 * i) * blockDim.x] = make_float4(r[0], r[1], r[2], r[3]);
      base[(2 * i + 1) * blockDim.x] = make_float4(r[4], r[5], r[6], r[7]);
    }
  }
  return ok ? base : nullptr;
}

// v[i][e] /= s_k for this thread's values of the row: through the reciprocals where they exist and
// every |value| is in the fast range (zeros, NaN and Inf are not), else the IEEE division; the same
// bits either way.
template <typename T, int kVecs>
__device__ __forceinline__ void smooth_held_row(const RowArgs<T>& a, float (&v)[kVecs][kVecElems],
                                                const bool (&has)[kVecs], const float4* recips) {
  const int col0 = threadIdx.x * kVecElems, col_step = blockDim.x * kVecElems;
  bool fast = recips != nullptr;
  if (fast) {
    float lo = INFINITY, hi = 0.0f;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) {
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) lo = fminf(lo, fabsf(v[i][e])), hi = max_nan(hi, fabsf(v[i][e]));
      }
    }
    fast = dividends_in_fast_range(lo, hi);
  }
  if (fast) {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) {
        float s[kVecElems];
        load8_cached(a.smooth + col0 + i * col_step, s);
        const float4 r0 = recips[(2 * i) * blockDim.x], r1 = recips[(2 * i + 1) * blockDim.x];
        const float r[kVecElems] = {r0.x, r0.y, r0.z, r0.w, r1.x, r1.y, r1.z, r1.w};
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) v[i][e] = divide_by_reciprocal(v[i][e], s[e], r[e]);
      }
    }
  } else {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) {
        float s[kVecElems];
        load8_cached(a.smooth + col0 + i * col_step, s);
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) v[i][e] = v[i][e] / s[e];
      }
    }
  }
}

// Calls with a SmoothQuant divisor at 4 or 6 vectors a thread run the persistent reciprocal kernel
// (kSmoothReciprocals; row_launch.cuh), never the op's cached kernel, which is then built without the
// division.
constexpr bool smooth_takes_reciprocals(int vecs) { return vecs == 4 || vecs == 6; }

// Which of this thread's vector slots hold a vector of the row: the same for every row, and known for
// the leading ones (row_shape.h), which the compiler then emits without a test.
template <typename T, int kVecs>
__device__ __forceinline__ void present_vector_slots(const RowArgs<T>& a, bool (&has)[kVecs]) {
  const int nvec = static_cast<int>(a.cols / kVecElems);
#pragma unroll
  for (int i = 0; i < kVecs; ++i)
    has[i] = i < full_vector_slots(kVecs) || static_cast<int>(threadIdx.x + i * blockDim.x) < nvec;
}

// Whether an op's int8 step must be DESIGN.md's two roundings, rint(fl(v * inv)) (IdentityOp: quantize_rows,
// bit-exact against the reference), or may round v * inv once (the fused ops, within the tolerance their
// own values already take; row_io.cuh: quantize4_fast).
template <typename Op, typename = void>
struct QuantizesBitExactly : std::false_type {};
template <typename Op>
struct QuantizesBitExactly<Op, std::void_t<decltype(Op::kBitExact)>> : std::bool_constant<Op::kBitExact> {};

// Whether an op's values may be inexact for some rows, which its row max tells (row_ops.cuh:
// SmoothDivisionOp): row_max_exact(m), and apply1_exact(x, channels, stride, e) for the row read again
// (quantize_row_exactly).
template <typename Op, typename = void>
struct ChecksRowMax : std::false_type {};
template <typename Op>
struct ChecksRowMax<Op, std::void_t<decltype(Op::kChecksRowMax)>> : std::bool_constant<Op::kChecksRowMax> {};

// Whether an op's register kernels take a warp's row max in one redux.sync (RowReducer's kWarpRedux):
// GeluTanhOp, 0.983-0.984 of the time at 3072 columns on the H100 (quant_ab_merged_stats_gelu_redux.md;
// the grouped kernels always do).
template <typename Op, typename = void>
struct RowMaxInOneRedux : std::false_type {};
template <typename Op>
struct RowMaxInOneRedux<Op, std::void_t<decltype(Op::kRowMaxInOneRedux)>> : std::bool_constant<Op::kRowMaxInOneRedux> {};

// Whether an op's one-warp cached rows run as a grid launched in stream order, so that its 1536-column rows
// take two warps instead (row_ops.cuh: LayerNormModulateOp; row_shape.h: two_warp_row_launch_shape).
template <typename Op, typename = void>
struct OneWarpRowsInStreamOrder : std::false_type {};
template <typename Op>
struct OneWarpRowsInStreamOrder<Op, std::void_t<decltype(Op::kOneWarpRowsInStreamOrder)>>
    : std::bool_constant<Op::kOneWarpRowsInStreamOrder> {};

// The threads that hold one row. CtaLanes: the whole CTA (every kernel but the grouped one), which
// also refills the op's channel cache itself when a row changes batch element. GroupLanes: kThreads
// consecutive threads of a CTA that holds several rows at once (row_grouped.cuh), whose cache is
// shared by the groups and filled once, before the rows.
struct CtaLanes {
  static constexpr bool kWholeCta = true;
  __device__ int lane() const { return static_cast<int>(threadIdx.x); }
  __device__ int count() const { return static_cast<int>(blockDim.x); }
};
template <int kThreads>
struct GroupLanes {
  static constexpr bool kWholeCta = false;
  int lane_in_group;
  __device__ int lane() const { return lane_in_group; }
  __device__ static constexpr int count() { return kThreads; }
};

// The row of an op whose values were inexact for it (ChecksRowMax: its row max said so), from x again,
// element by element, through the op's exact values (apply1_exact, which reads the channel cache):
// a rare path, kept out of the held row's registers (the unrolled form of it took the 128 x 3 grouped
// kernel's stack from 16 to 32 bytes).
template <typename T, typename Op, int kVecs, typename Reducer, typename Lanes>
__device__ __forceinline__ void quantize_row_exactly(const RowArgs<T>& a, const Op& op, int64_t row, const bool (&has)[kVecs],
                                                  Reducer& reduce, const float4* channels, const Lanes lanes) {
  const int col_step = lanes.count() * kVecElems, chan_step = Op::kChannelVec4s * lanes.count();
  const T* const xr = a.x + row * a.ldx + lanes.lane() * kVecElems;
  float m = 0.0f;
#pragma unroll 1
  for (int i = 0; i < kVecs; ++i) {
    if (!has[i]) continue;
#pragma unroll 1
    for (int e = 0; e < kVecElems; ++e)
      m = max_nan(m, fabsf(op.apply1_exact(to_float(xr[i * col_step + e]), channels + i * chan_step, lanes.count(), e)));
  }
  const RowQuant rq = row_quant(reduce.max_nonneg(m));
  int8_t* const qr = a.q + row * a.ldq + lanes.lane() * kVecElems;
#pragma unroll 1
  for (int i = 0; i < kVecs; ++i) {
    if (!has[i]) continue;
#pragma unroll 1
    for (int e = 0; e < kVecElems; ++e)
      qr[i * col_step + e] =
          quantize_value(op.apply1_exact(to_float(xr[i * col_step + e]), channels + i * chan_step, lanes.count(), e), rq.inv);
  }
  if (lanes.lane() == 0) a.scale[row] = rq.scale;
}

// One row held in registers, v[i] = elements [8c, 8c + 8) of the row with c = threadIdx.x + i * blockDim.x
// where has[i] (the row's last vectors fall to some threads only): the op's statistics, its values
// (written to y), the SmoothQuant division, the row max, then int8 + scale.
// NOTE: columns are 32-bit (this kernel takes rows of at most 24576 columns, row_shape.h): 64-bit
// column arithmetic cost a few instructions a vector in a kernel whose speed is its instruction count.
// kRecips: the persistent SmoothQuant kernel, recips this thread's reciprocals
// (smooth_reciprocals_for_thread) or nullptr for the IEEE division.
template <typename T, typename Op, int kVecs, bool kCacheChannels, bool kRecips, typename Reducer,
          typename Lanes = CtaLanes>
__device__ __forceinline__ void quantize_held_row(const RowArgs<T>& a, Op& op, int64_t row, float (&v)[kVecs][kVecElems],
                                                  const bool (&has)[kVecs], Reducer& reduce, float4* channels,
                                                  const float4* recips, const Lanes lanes = {}) {
  static_assert(!kRecips || Lanes::kWholeCta, "the reciprocal path reads threadIdx.x's columns");
  const int col0 = lanes.lane() * kVecElems, col_step = lanes.count() * kVecElems;
  const int chan_step = Op::kChannelVec4s * lanes.count();  // channels of vector i: channels + i * chan_step
  const bool refill = op.begin_row(row);
  if constexpr (kCacheChannels && Lanes::kWholeCta) {
    if (refill) {
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) op.fill8(col0 + i * col_step, channels + i * chan_step, blockDim.x);
      }
    }
  }
  // Sums and the max in 4 independent chains: one chain through the row's 32-64 values was a
  // dependent-latency wait of ~4 cycles a value in every pass.
#pragma unroll
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) {
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) s[e % 4] += op.stat_term(pass, v[i][e]);
      }
    }
    op.end_pass(pass, reduce.sum((s[0] + s[1]) + (s[2] + s[3])));
  }

  T* const yr = a.y ? a.y + row * a.ldy : nullptr;
  float amax[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if constexpr (kRecips) {
    // The op's values, then the smoothing of all of them (one test of their range), then the max.
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int k = col0 + i * col_step;
      if (has[i]) {
        op.apply8(k, v[i]);
        if (yr) store8(yr + k, v[i]);
      }
    }
    smooth_held_row(a, v, has, recips);
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) {
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) amax[e % 4] = max_nan(amax[e % 4], fabsf(v[i][e]));
      }
    }
  } else {
    // NOTE: one pass a vector: the three-pass form above took the 8-vector LayerNorm kernel from
    // 128 to 216 registers (84.7 -> 124.4 us at 4608 x 15360 on the H200).
    // Cached kernels of 4 and 6 vectors never see a divisor (the launcher sends those calls to the
    // reciprocal kernel: smooth_takes_reciprocals) and are built without the division, whose IEEE
    // slow path held registers across the whole row: LayerNorm at 64 x 6 (3072 columns) 157 -> 128.
    constexpr bool kMaySmooth = !kCacheChannels || !smooth_takes_reciprocals(kVecs);
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int k = col0 + i * col_step;
      if (has[i]) {
        if constexpr (kCacheChannels) {
          op.apply8_cached(k, v[i], channels + i * chan_step, lanes.count());
        } else {
          op.apply8(k, v[i]);
        }
        if (yr) store8(yr + k, v[i]);
        if constexpr (kMaySmooth) {
          if (a.smooth) {
            float s[kVecElems];
            load8_cached(a.smooth + k, s);
#pragma unroll
            for (int e = 0; e < kVecElems; ++e) v[i][e] = v[i][e] / s[e];
          }
        }
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) amax[e % 4] = max_nan(amax[e % 4], fabsf(v[i][e]));
      }
    }
  }
  const float row_max = reduce.max_nonneg(max_nan(max_nan(amax[0], amax[1]), max_nan(amax[2], amax[3])));
  if constexpr (ChecksRowMax<Op>::value) {
    static_assert(kCacheChannels && !kRecips, "the op's exact values read its cached channel values");
    if (!op.row_max_exact(row_max)) {  // the same for every thread of the row: its reduction's result
      quantize_row_exactly<T, Op, kVecs>(a, op, row, has, reduce, channels, lanes);
      return;
    }
  }
  const RowQuant rq = row_quant(row_max);

  int8_t* const qr = a.q + row * a.ldq;
  if (rq.fast) {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) store8_int8_fast<QuantizesBitExactly<Op>::value>(qr + col0 + i * col_step, v[i], rq.inv);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) store8_int8(qr + col0 + i * col_step, v[i], rq.inv);
    }
  }
  if (lanes.lane() == 0) a.scale[row] = rq.scale;
}

// Whether the persistent kernel may keep the op's per-channel values (LayerNorm's 1 + scale and
// shift, RMSNorm's weight) in shared memory as fp32 across rows: each thread reads back only its own
// columns, so it needs no barrier. Per element that replaces two 16-bit loads, their unpacking and
// the 1 + scale with one shared load. Not at 8 vectors a thread (the 8-vector kernel is not
// persistent, row_launch.cuh), and only where the cache takes at most kMaxChannelCacheBytes a CTA.
template <typename Op, int kVecs>
constexpr bool caches_channels() { return Op::kChannelVec4s > 0 && kVecs <= 6; }

template <typename Op, int kVecs>
constexpr size_t channel_cache_bytes_per_thread() { return sizeof(float4) * kVecs * Op::kChannelVec4s; }

// The __launch_bounds__ minimum of CTAs an SM (kMinCtas) of an op's persistent cached kernel: the op's
// kCachedMinCtas where it states one (RMSNorm: 2, 128 registers), else none.
template <typename Op, typename = void>
struct CachedKernelMinCtas {
  static constexpr int value = 0;
};
template <typename Op>
struct CachedKernelMinCtas<Op, std::void_t<decltype(Op::kCachedMinCtas)>> {
  static constexpr int value = Op::kCachedMinCtas;
};
template <typename Op>
constexpr int cached_kernel_min_ctas() { return CachedKernelMinCtas<Op>::value; }

// NOTE: measured on the H200 (bench/results/h200/quant_layout_*.txt): at 64 x 6 (24 KB) LayerNorm's
// cache gains 4%, RMSNorm's 48 KB at 256 x 6 gains 10%. Up to kMaxChannelCacheBytes the kernel keeps
// the registers ptxas gives it.
constexpr size_t kMaxChannelCacheBytes = 48 * 1024;
// Above that, up to kMaxCappedChannelCacheBytes, the cache runs with registers capped for two CTAs an
// SM (kMinCtas = 2), where the occupancy API says two such CTAs fit the SM's shared memory (96 KB fits
// twice in Hopper's 227 KB, not in sm_80's 164 or sm_86/89's 100; elsewhere the channel values come
// through L1). Measured on Hopper only. LayerNorm at 256 x 6 (96 KB): uncapped it takes ~160
// registers, one CTA an SM, 64.4 us at 4096 x 12288; capped at 128 53.2 us, against 58.4 reading the
// channel values through L1 (bench/results/h200/quant_layout_4096x12288_cache_capped.txt). The cap
// then cost a 16-byte stack (three address words reloaded in the row loop). Since c1ed37e the cached
// kernels carry no SmoothQuant division and LayerNorm's takes 128 registers, no stack, capped or not;
// the cap stays as the guarantee that two CTAs fit.
constexpr size_t kMaxCappedChannelCacheBytes = 96 * 1024;

// The rows of one persistent CTA: row = first, first + step, ... < end. Strided (CTA b takes rows b,
// b + gridDim.x, ...: the grid sweeps the rows together), or one contiguous block a CTA for an op
// wrapped in WithRowBlocks (below).
struct PersistentRows {
  int64_t first, end, step;
};

// An op whose persistent CTAs each take one contiguous block of rows (row_shape.h: contiguous_rows,
// which the launcher fills in for its grid): what the launcher runs where the op's channel values
// change between rows (LayerNorm with several batch elements, row_launch.cuh: with_cached_rows). Strided
// rows a grid apart change batch element at almost every row, and a cached kernel then refills its
// channel cache each row: 8192 x 1152 took 19.97 us with 8 batch elements against 15.59 with one
// (bench/results/h200/quant_428776d.md). A separate instantiation, so that the kernels of one batch
// element compile as before: with the blocks as a run-time choice inside them ptxas moved registers
// by up to 30 and gave RMSNorm's capped kernel a stack.
template <typename Op>
struct WithRowBlocks : Op {
  static constexpr bool kRowBlocks = true;
  ContiguousRows row_blocks;
};
template <typename Op, typename = void>
struct TakesRowBlocks : std::false_type {};
template <typename Op>
struct TakesRowBlocks<Op, std::void_t<decltype(Op::kRowBlocks)>> : std::true_type {};

// An op that turns the loaded row into the one it works on (row_ops.cuh: GatedResidualLayerNormModulateOp):
// fetch8(row, k) with x's vectors, then begin_transform(row), transform8(k, v, fetched) for each vector and
// store_transformed8(k, v) for each. Vector kernels only; compile-time, so the other kernels compile as before.
template <typename Op, typename = void>
struct TransformsInput : std::false_type {};
template <typename Op>
struct TransformsInput<Op, std::void_t<decltype(Op::kTransformsInput)>> : std::true_type {};

// A transforming op that also runs rows too long for the 256-thread kernels, in the 512-thread one
// (row_shape.h: wide_transform_row_threads; row_ops.cuh: SwigluOp). Opt-in, so that the other ops do
// not each compile a kernel their entry points never launch.
template <typename Op, typename = void>
struct TakesWideRows : std::false_type {};
template <typename Op>
struct TakesWideRows<Op, std::void_t<decltype(Op::kWideRows)>> : std::true_type {};

// An op whose row continues in a second input (row_ops.cuh: ConcatGeluOp): element(x, ldx, row, k)
// says where element k lives. A compile-time branch, so that the one-input kernels compile as before.
template <typename Op, typename = void>
struct ReadsSecondInput : std::false_type {};
template <typename Op>
struct ReadsSecondInput<Op, std::void_t<decltype(Op::kSecondInput)>> : std::true_type {};

// The row in registers, read straight from global memory (16-byte vectors, evict-first): no
// cp.async shared-memory stage, whose extra copy and shared loads measured slower than this on the
// H200 (bench/quant/layout_probe.cu; Hopper's bulk-copy ring, row_bulk_ring.cuh, is the other form).
// kPersistent: as launch_vector_rows() (row_launch.cuh) decides; otherwise one CTA a row (a grid of
// up to 2^31 - 1 CTAs strides over more). Needs cols % 8 == 0 and 16-byte aligned rows. Dynamic smem a
// thread: channel_cache_bytes_per_thread() where kCacheChannels, smooth_reciprocal_bytes_per_thread()
// where kSmoothReciprocals (a persistent kernel for calls with a.smooth, without the op's cache).
// kMinCtas: __launch_bounds__' CTAs an SM, which caps the registers a thread. 0 states no minimum,
// which is not the same as 1: with (256, 1) ptxas took up to 40 more registers a thread than with
// (256) alone (RMSNorm's cached 6-vector kernel 126 -> 146, one CTA an SM instead of two).
// kMaxThreads: kMaxRowThreads, or kWideRowThreads for the wide kernels (launch bounds and reducer).
template <typename T, typename Op, int kVecs, bool kPersistent, bool kCacheChannels, bool kSmoothReciprocals = false,
          int kMinCtas = 0, int kMaxThreads = kMaxRowThreads>
__global__ void __launch_bounds__(kMaxThreads, kMinCtas) row_quantize_registers(RowArgs<T> a, Op op) {
  static_assert(kPersistent || !kCacheChannels, "the channel cache lives across the rows of a persistent CTA");
  static_assert(!kSmoothReciprocals || (kPersistent && !kCacheChannels), "reciprocals: persistent, no op cache");
  release_dependent_launch();
  wait_for_previous_grid();
  extern __shared__ float4 channel_cache[];  // [kVecs][kChannelVec4s][blockDim.x]
  using Reducer = RowReducerFor<kMaxThreads, RowMaxInOneRedux<Op>::value>;
  __shared__ float4 partials[2][Reducer::kVec4s];
  Reducer reduce{partials};
  reduce.init();
  const int threads = blockDim.x;
  bool has[kVecs];
  present_vector_slots(a, has);
  float4* const channels = kCacheChannels ? channel_cache + threadIdx.x : nullptr;
  const float4* recips = nullptr;
  if constexpr (kSmoothReciprocals) recips = smooth_reciprocals_for_thread(a, has, channel_cache + threadIdx.x);

  uint4 raw[kVecs];  // the next row's vectors, as loaded
  // A transforming op's second row input (the residual update), fetched with x's: a row ahead in the
  // persistent kernels, so its latency hides behind the row before as x's does.
  uint4 raw_in[TransformsInput<Op>::value ? kVecs : 1];
  auto fetch = [&](int64_t row) {
    if constexpr (TransformsInput<Op>::value) {
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) raw_in[i] = op.fetch8(row, static_cast<int64_t>(threadIdx.x + i * threads) * kVecElems);
      }
    }
    if constexpr (ReadsSecondInput<Op>::value) {
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        const int64_t k = static_cast<int64_t>(threadIdx.x + i * threads) * kVecElems;
        if (has[i]) raw[i] = __ldcs(reinterpret_cast<const uint4*>(op.element(a.x, a.ldx, row, k)));
      }
    } else {
      const uint4* xr = reinterpret_cast<const uint4*>(a.x + row * a.ldx) + threadIdx.x;
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) raw[i] = __ldcs(xr + i * threads);
      }
    }
  };
  PersistentRows rows{blockIdx.x, a.rows, gridDim.x};
  if constexpr (kPersistent && TakesRowBlocks<Op>::value) {
    const int64_t first = contiguous_block_first(blockIdx.x, op.row_blocks);
    rows = {first, first + contiguous_block_rows(blockIdx.x, op.row_blocks), 1};
  }
  // The wide SmoothQuant kernel asks L2 for x's row after the one it loads into registers (row_io.cuh:
  // prefetch_l2): 4608 x 15360 88.4 -> 80.5 us on the H100, one 480-thread CTA an SM holding one 30 KB
  // row. Measured slower in the grouped kernel (LayerNorm 4096 x 3072 +4.6%) and the 256-thread
  // persistent kernels (LayerNorm 4096 x 12288 +5.8%, SmoothQuant +1.2%), so only here
  // (bench/results/h100/quant_ab_redux_l2_prefetch.md).
  constexpr bool kPrefetchesL2 = kPersistent && kSmoothReciprocals && kMaxThreads == kWideRowThreads;
  const uint32_t row_bytes = static_cast<uint32_t>(a.cols * sizeof(T));
  auto prefetch = [&](int64_t row) {
    if (kPrefetchesL2 && threadIdx.x == 0 && row < rows.end) prefetch_l2(a.x + row * a.ldx, row_bytes);
  };
  if (kPersistent) fetch(rows.first);  // every CTA has a row: grid <= rows
  prefetch(rows.first + rows.step);
  for (int64_t row = rows.first; row < rows.end; row += rows.step) {
    if (!kPersistent) fetch(row);
    float v[kVecs][kVecElems];  // slots without a vector stay unset: every use tests has[i]
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) unpack8<T>(raw[i], v[i]);
    }
    if constexpr (TransformsInput<Op>::value) {
      op.begin_transform(row);
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) op.transform8(static_cast<int>(threadIdx.x + i * threads) * kVecElems, v[i], raw_in[i]);
      }
      // NOTE: stored only once every vector is transformed: the op's output may alias its inputs as far
      // as the compiler knows, so a store between two vectors would hold the next vector's gate loads
      // behind it.
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) op.store_transformed8(static_cast<int>(threadIdx.x + i * threads) * kVecElems, v[i]);
      }
    }
    if (kPersistent && row + rows.step < rows.end) fetch(row + rows.step);
    prefetch(row + 2 * rows.step);
    quantize_held_row<T, Op, kVecs, kCacheChannels, kSmoothReciprocals>(a, op, row, v, has, reduce, channels, recips);
  }
}

// Any cols, any alignment (and rows too long for registers): one row per CTA, element by element,
// reading the row again for each pass (the re-reads mostly hit L2). The fallback path.
template <typename T, typename Op>
__global__ void __launch_bounds__(kStreamThreads) row_quantize_streaming(RowArgs<T> a, Op op) {
  release_dependent_launch();
  wait_for_previous_grid();
  using Reducer = RowReducerFor<kStreamThreads>;
  __shared__ float4 partials[2][Reducer::kVec4s];
  Reducer reduce{partials};
  reduce.init();
  const int64_t row = blockIdx.x;
  const T* xr = a.x + row * a.ldx;
  auto element = [&](int64_t k) {
    if constexpr (ReadsSecondInput<Op>::value) {
      return to_float(*op.element(a.x, a.ldx, row, k));
    } else {
      return to_float(xr[k]);
    }
  };

  op.begin_row(row);
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float s = 0.0f;
    for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) s += op.stat_term(pass, element(k));
    op.end_pass(pass, reduce.sum(s));
  }

  float amax = 0.0f;
  for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) {
    float v = op.apply1(k, element(k));
    if (a.y) a.y[row * a.ldy + k] = from_float<T>(v);
    if (a.smooth) v = v / a.smooth[k];
    amax = max_nan(amax, fabsf(v));
  }
  const RowQuant rq = row_quant(reduce.max_nonneg(amax));

  for (int64_t k = threadIdx.x; k < a.cols; k += blockDim.x) {
    float v = op.apply1(k, element(k));
    if (a.smooth) v = v / a.smooth[k];
    a.q[row * a.ldq + k] = quantize_value(v, rq.inv);
  }
  if (threadIdx.x == 0) a.scale[row] = rq.scale;
}

}  // namespace int8dit::quant
