// qk_norm_rope's kernel and its launch (attention.h: per head, RMSNorm or LayerNorm with a weight, then
// the rotary embedding, one pass), shared by qk_norm_rope.cu (the entry point and the RMSNorm /
// interleaved-pair kernels) and qk_norm_rope_extended.cu (subtract_mean, rope_split_halves); the norm
// across heads has a kernel of its own (qk_group_norm_rope.cu).
//
// Memory-bound: each row of head_dim elements is read once and written once; the weight and the
// cos/sin rows (fp32, one a token, read by each of its heads) come from L1/L2. A row is
// head_dim / 8 lanes of one warp, each holding one 16-byte vector, so the row's sum of squares is a
// few shuffles and no shared memory. Each thread takes kUnroll rows, all loads issued before any
// arithmetic, for loads in flight. Rows go in [batch, token, head] order, so that the heads of a token
// follow each other and its cos/sin rows stay in L1.
//
// Where every offset fits 31 bits (a Flux-dev q: 99 M elements) the rows are split into (batch, token,
// head) with multiply-high divisions and indexed in 32 bits: kNarrow. The 64-bit build of the kernel
// spent ~250 of its ~700 instructions (two rows a thread) on 64-bit index products and two 32/64-bit
// divisions, in a kernel that must stay below the SMs' issue rate at the copy's bandwidth.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cstdint>

#include "attention/qk_rows.h"
#include "int8dit/attention.h"
#include "quant/row_io.cuh"
#include "quant/row_kernels.cuh"  // release_dependent_launch, wait_for_previous_grid
#include "quant/row_launch.cuh"   // launch_row_kernel

namespace int8dit::attention {

using quant::kVecElems;

constexpr int kThreads = 256;
constexpr int kUnroll = 2;

template <typename T>
struct QKArgs {
  const T* x;
  const T* weight;   // null: weight_fp32's, or 1
  const float* weight_fp32;
  const float* cos;  // null: no rotation
  const float* sin;
  T* out;
  RowIndex index;
  float eps, inv_head_dim;
  bool subtract_mean, split_halves;  // read by the kExtended kernels only
  const T* bias;                     // null: none (kExtended kernels only)
};

// The rotation of interleaved pairs (attention.h): (n_2i, n_2i+1) of one 8-element vector with their cos and
// sin values, each product and the sum rounded to fp32 (diffusers' apply_rotary_emb, use_real_unbind_dim=-1).
__device__ __forceinline__ void rotate_pairs8(float (&n)[kVecElems], const float (&c)[kVecElems],
                                              const float (&s)[kVecElems]) {
#pragma unroll
  for (int e = 0; e < kVecElems; e += 2) {
    const float even = __fadd_rn(__fmul_rn(n[e], c[e]), __fmul_rn(-n[e + 1], s[e]));
    const float odd = __fadd_rn(__fmul_rn(n[e + 1], c[e + 1]), __fmul_rn(n[e], s[e + 1]));
    n[e] = even;
    n[e + 1] = odd;
  }
}

// kLanes threads (head_dim / 8) a row. kNorm: the RMSNorm (else the row as it is). kRope: cos/sin
// given. kNarrow: 32-bit offsets (qk_rows.h). kExtended: the kernel also reads subtract_mean,
// split_halves and bias (attention.h), uniform branches that the other instantiations compile without
// (qk_norm_rope_extended.cu builds these, for head_dim 64 and 128 only).
template <typename T, int kLanes, bool kNorm, bool kRope, bool kNarrow, bool kExtended>
__global__ void __launch_bounds__(kThreads) qk_norm_rope_kernel(QKArgs<T> a) {
  quant::release_dependent_launch();
  quant::wait_for_previous_grid();
  constexpr int kRowsPerPass = kThreads / kLanes;
  const int lane = static_cast<int>(threadIdx.x) % kLanes;
  const int col = lane * kVecElems;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * (kRowsPerPass * kUnroll) + threadIdx.x / kLanes;
  bool live[kUnroll];
  int64_t out_at[kUnroll];
  uint4 xv[kUnroll];
  float4 cs[kUnroll][4];  // cos (two float4), then sin (two)
#pragma unroll
  for (int j = 0; j < kUnroll; ++j) {
    const int64_t r = first + j * kRowsPerPass;
    live[j] = r < a.index.rows;
    xv[j] = make_uint4(0, 0, 0, 0);
    out_at[j] = 0;
    if (!live[j]) continue;
    const RowAt at = row_at<kNarrow>(a.index, r);
    // x is read once: evict-first, so that it does not push the weight and the rotary rows out of L2.
    xv[j] = __ldcs(reinterpret_cast<const uint4*>(a.x + at.x + col));
    out_at[j] = at.out + col;
    if constexpr (kRope) {
      const int64_t rope_row = at.rope + col;
      const float4* c = reinterpret_cast<const float4*>(a.cos + rope_row);
      const float4* s = reinterpret_cast<const float4*>(a.sin + rope_row);
      cs[j][0] = __ldg(c);
      cs[j][1] = __ldg(c + 1);
      cs[j][2] = __ldg(s);
      cs[j][3] = __ldg(s + 1);
    }
  }
  float w[kVecElems];
  if (kNorm && a.weight) {
    quant::load8_cached(a.weight + col, w);
  } else if (kNorm && a.weight_fp32) {
    const float4 w0 = __ldg(reinterpret_cast<const float4*>(a.weight_fp32 + col));
    const float4 w1 = __ldg(reinterpret_cast<const float4*>(a.weight_fp32 + col) + 1);
    w[0] = w0.x, w[1] = w0.y, w[2] = w0.z, w[3] = w0.w, w[4] = w1.x, w[5] = w1.y, w[6] = w1.z, w[7] = w1.w;
  } else {
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) w[e] = 1.0f;
  }
  float bias[kVecElems];
  const bool has_bias = kExtended && kNorm && a.bias != nullptr;
  if (has_bias) quant::load8_cached(a.bias + col, bias);
#pragma unroll
  for (int j = 0; j < kUnroll; ++j) {
    float n[kVecElems];
    quant::unpack8<T>(xv[j], n);
    if constexpr (kNorm) {
      if (kExtended && a.subtract_mean) {
        // The header's order: this lane's 8 elements added from 0, the butterfly, times 1 / head_dim.
        float sum = 0.0f;
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) sum = __fadd_rn(sum, n[e]);
#pragma unroll
        for (int half = kLanes / 2; half >= 1; half /= 2) sum = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, half));
        const float mean = __fmul_rn(sum, a.inv_head_dim);
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) n[e] = __fsub_rn(n[e], mean);
      }
      // The header's order: this lane's 8 squares by fused multiply-adds from 0, then the butterfly.
      float ss = 0.0f;
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) ss = __fmaf_rn(n[e], n[e], ss);
      // (every lane of the warp takes part in the shuffles, rows past the end included)
#pragma unroll
      for (int half = kLanes / 2; half >= 1; half /= 2) ss = __fadd_rn(ss, __shfl_xor_sync(0xffffffffu, ss, half));
      // IEEE sqrt and division: once a row, and the reference computes the same bits.
      const float rstd = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fmul_rn(ss, a.inv_head_dim), a.eps)));
      if (has_bias) {
#pragma unroll
        for (int e = 0; e < kVecElems; ++e)
          n[e] = quant::to_float(quant::from_float<T>(__fadd_rn(__fmul_rn(__fmul_rn(n[e], rstd), w[e]), bias[e])));
      } else {
#pragma unroll
        for (int e = 0; e < kVecElems; ++e)
          n[e] = quant::to_float(quant::from_float<T>(__fmul_rn(__fmul_rn(n[e], rstd), w[e])));
      }
    }
    // The split-halves partner of each element: the lane kLanes / 2 away holds it (every lane of the
    // warp takes part in the shuffles, rows past the end included).
    float partner[kVecElems];
    const bool halves = kExtended && kRope && a.split_halves;
    if (halves) {
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) partner[e] = __shfl_xor_sync(0xffffffffu, n[e], kLanes / 2);
    }
    if (!live[j]) continue;
    if constexpr (!kNorm && !kRope) {
      *reinterpret_cast<uint4*>(a.out + out_at[j]) = xv[j];  // the join alone: the vector as it came
      continue;
    }
    if constexpr (kRope) {
      const float c[kVecElems] = {cs[j][0].x, cs[j][0].y, cs[j][0].z, cs[j][0].w,
                                  cs[j][1].x, cs[j][1].y, cs[j][1].z, cs[j][1].w};
      const float s[kVecElems] = {cs[j][2].x, cs[j][2].y, cs[j][2].z, cs[j][2].w,
                                  cs[j][3].x, cs[j][3].y, cs[j][3].z, cs[j][3].w};
      if (halves) {
        // The first half's lanes pair with -(the second half's), the second half's with the first's.
        const bool first_half = lane < kLanes / 2;
#pragma unroll
        for (int e = 0; e < kVecElems; ++e)
          n[e] = __fadd_rn(__fmul_rn(n[e], c[e]), __fmul_rn(first_half ? -partner[e] : partner[e], s[e]));
      } else {
        rotate_pairs8(n, c, s);
      }
    }
    quant::store8(a.out + out_at[j], n);
  }
}

template <typename T, int kLanes, bool kNorm, bool kRope, bool kNarrow, bool kExtended>
Status launch(const QKNormRopeParams& p, cudaStream_t stream) {
  static std::atomic<int> sm90[quant::kMaxDevices];
  const QKArgs<T> a{static_cast<const T*>(p.x), static_cast<const T*>(p.weight), p.weight_fp32, p.cos, p.sin,
                    static_cast<T*>(p.out), row_index(p), p.eps, 1.0f / static_cast<float>(p.head_dim),
                    p.subtract_mean, p.rope_split_halves, static_cast<const T*>(p.bias)};
  constexpr int64_t kRowsPerCta = (kThreads / kLanes) * kUnroll;
  const int64_t grid = (a.index.rows + kRowsPerCta - 1) / kRowsPerCta;
  if (grid > 2147483647)
    return Status(StatusCode::kInvalidArgument, "qk_norm_rope: " + std::to_string(a.index.rows) +
                                                    " rows are more than one call takes: split the batch over calls");
  quant::launch_row_kernel(qk_norm_rope_kernel<T, kLanes, kNorm, kRope, kNarrow, kExtended>, sm90, false, grid, kThreads, 0, stream, a);
  return detail::last_launch_status("qk_norm_rope");
}

// The kernel for p's head_dim; the extended kernels are built for 64 and 128 only (the caller checks).
template <typename T, bool kNorm, bool kRope, bool kNarrow, bool kExtended>
Status launch_for_head_dim(const QKNormRopeParams& p, cudaStream_t stream) {
  if constexpr (kExtended) {
    return p.head_dim == 64 ? launch<T, 8, kNorm, kRope, kNarrow, true>(p, stream)
                            : launch<T, 16, kNorm, kRope, kNarrow, true>(p, stream);
  } else {
    switch (p.head_dim) {
      case 16: return launch<T, 2, kNorm, kRope, kNarrow, false>(p, stream);
      case 32: return launch<T, 4, kNorm, kRope, kNarrow, false>(p, stream);
      case 64: return launch<T, 8, kNorm, kRope, kNarrow, false>(p, stream);
      case 128: return launch<T, 16, kNorm, kRope, kNarrow, false>(p, stream);
      default: return launch<T, 32, kNorm, kRope, kNarrow, false>(p, stream);  // 256 (validate() allows nothing else)
    }
  }
}

// An extended call has a norm, a rotation or both (validate(): subtract_mean needs the norm,
// rope_split_halves the tables), so its kernels without either are never built.
template <typename T, bool kNorm, bool kNarrow, bool kExtended>
Status launch_rope_or_not(const QKNormRopeParams& p, cudaStream_t stream) {
  if constexpr (kExtended && !kNorm) {
    return launch_for_head_dim<T, false, true, kNarrow, true>(p, stream);
  } else {
    return p.cos ? launch_for_head_dim<T, kNorm, true, kNarrow, kExtended>(p, stream)
                 : launch_for_head_dim<T, kNorm, false, kNarrow, kExtended>(p, stream);
  }
}

// NOTE: the 64-bit kernels are built for head_dim 128 and the rest alike (calls of over 2^31 elements:
// video models at long clips), all without being measured.
template <typename T, bool kExtended>
Status launch_typed(const QKNormRopeParams& p, cudaStream_t stream) {
  const bool narrow = offsets_fit_31_bits(p);
  if (p.normalize)
    return narrow ? launch_rope_or_not<T, true, true, kExtended>(p, stream)
                  : launch_rope_or_not<T, true, false, kExtended>(p, stream);
  return narrow ? launch_rope_or_not<T, false, true, kExtended>(p, stream)
                : launch_rope_or_not<T, false, false, kExtended>(p, stream);
}

// The extended kernels (qk_norm_rope_extended.cu): a call with subtract_mean, rope_split_halves or a bias,
// head_dim 64 or 128, checked and laid out for the vector kernel.
Status launch_extended(const QKNormRopeParams& p, cudaStream_t stream);

// The norm across heads (qk_group_norm_rope.cu): a call with norm_heads > 1, checked and laid out for the
// vector kernel; kNotSupported for the sizes its kernel does not take.
Status launch_group_norm(const QKNormRopeParams& p, cudaStream_t stream);

}  // namespace int8dit::attention
