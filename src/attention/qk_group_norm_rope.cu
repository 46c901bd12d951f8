// qk_norm_rope with norm_heads > 1 (attention.h): the RMSNorm's statistics across a group of a token's
// heads (Wan's and LTX-Video's norm over heads x head_dim), then each head's rotation, in one pass where
// PyTorch runs the norm over the whole row as a kernel of its own before the rotation reads it back.
//
// One CTA a group: norm_heads * head_dim / 8 threads, each holding one 16-byte vector of one head's row.
// A head's lanes sum their squares as the per-head kernel does (fused multiply-adds from 0, then the
// butterfly across the head's lanes, all within one warp), the head's first lane publishes the sum, and
// after one barrier every thread adds the group's sums in head order: the reference's order, so the two
// agree bit for bit. The entry point (qk_norm_rope.cu) has validated the call, its layout and pointers.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <string>

#include "attention/qk_norm_rope_kernel.cuh"

namespace int8dit::attention {
namespace {

constexpr int kMaxGroupThreads = 1024;
constexpr int kMaxGroupHeads = kMaxGroupThreads / 8;  // head_dim >= 64: at least 8 lanes a head

template <typename T>
struct GroupArgs {
  const T* x;
  const T* weight;  // [norm_heads * head_dim]; null: weight_fp32's, or 1
  const float* weight_fp32;
  const float* cos;  // null: no rotation
  const float* sin;
  T* out;
  int64_t tokens, groups;  // groups = heads / norm_heads
  int64_t x_batch_stride, x_token_stride, x_head_stride;
  int64_t out_batch_stride, out_token_stride, out_head_stride;
  int64_t ld_rope, rope_offset, rope_head_stride;
  int norm_heads;
  float eps, inv_group;  // inv_group = 1 / (norm_heads * head_dim), rounded to fp32
};

template <typename T, int kLanes, bool kRope>
__global__ void __launch_bounds__(kMaxGroupThreads) qk_group_norm_rope_kernel(GroupArgs<T> a) {
  __shared__ __align__(16) float head_sums[kMaxGroupHeads];
  quant::release_dependent_launch();
  quant::wait_for_previous_grid();
  const int g = static_cast<int>(threadIdx.x) / kLanes;  // the head within the group
  const int lane = static_cast<int>(threadIdx.x) % kLanes;
  const int col = lane * kVecElems;
  const int64_t bt = div64(blockIdx.x, a.groups);
  const int64_t h = (static_cast<int64_t>(blockIdx.x) - bt * a.groups) * a.norm_heads + g;
  const int64_t b = div64(bt, a.tokens), t = bt - b * a.tokens;
  // x is read once: evict-first, so that it does not push the weight and the rotary rows out of L2.
  const uint4 xv =
      __ldcs(reinterpret_cast<const uint4*>(a.x + b * a.x_batch_stride + t * a.x_token_stride + h * a.x_head_stride + col));
  float c[kVecElems], s[kVecElems];
  if constexpr (kRope) {
    const int64_t at = (a.rope_offset + t) * a.ld_rope + h * a.rope_head_stride + col;
    const float4* cp = reinterpret_cast<const float4*>(a.cos + at);
    const float4* sp = reinterpret_cast<const float4*>(a.sin + at);
    const float4 c0 = __ldg(cp), c1 = __ldg(cp + 1), s0 = __ldg(sp), s1 = __ldg(sp + 1);
    c[0] = c0.x, c[1] = c0.y, c[2] = c0.z, c[3] = c0.w, c[4] = c1.x, c[5] = c1.y, c[6] = c1.z, c[7] = c1.w;
    s[0] = s0.x, s[1] = s0.y, s[2] = s0.z, s[3] = s0.w, s[4] = s1.x, s[5] = s1.y, s[6] = s1.z, s[7] = s1.w;
  }
  float w[kVecElems];
  const int w0 = g * kLanes * kVecElems + col;  // head g's part of the group's weight
  if (a.weight) {
    quant::load8_cached(a.weight + w0, w);
  } else if (a.weight_fp32) {
    quant::load8_cached(a.weight_fp32 + w0, w);
  } else {
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) w[e] = 1.0f;
  }
  float n[kVecElems];
  quant::unpack8<T>(xv, n);
  // The header's order: this lane's 8 squares by fused multiply-adds from 0, the butterfly across the
  // head's lanes, then the group's heads in order.
  float ss = 0.0f;
#pragma unroll
  for (int e = 0; e < kVecElems; ++e) ss = __fmaf_rn(n[e], n[e], ss);
#pragma unroll
  for (int half = kLanes / 2; half >= 1; half /= 2) ss = __fadd_rn(ss, __shfl_xor_sync(0xffffffffu, ss, half));
  if (lane == 0) head_sums[g] = ss;
  // The slots up to the next multiple of 4 hold +0, which leaves the sum's bits as they are (every sum is
  // >= +0 or NaN): the adds below read four sums a shared load, all loads ahead of the dependent adds, where
  // one load an add was a chain of ~30 cycles a head (Wan 2.2's 24 heads: the kernel at 0.44 of the copy).
  const int padded = (a.norm_heads + 3) & ~3;
  if (static_cast<int>(threadIdx.x) < padded - a.norm_heads) head_sums[a.norm_heads + threadIdx.x] = 0.0f;
  __syncthreads();
  const float4* sums4 = reinterpret_cast<const float4*>(head_sums);
  float total = 0.0f;  // (0 + ss_0 is ss_0: the reference's order)
#pragma unroll 4
  for (int i = 0; i < padded / 4; ++i) {
    const float4 v = sums4[i];
    total = __fadd_rn(__fadd_rn(__fadd_rn(__fadd_rn(total, v.x), v.y), v.z), v.w);
  }
  // IEEE sqrt and division: once a row, and the reference computes the same bits.
  const float rstd = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fmul_rn(total, a.inv_group), a.eps)));
#pragma unroll
  for (int e = 0; e < kVecElems; ++e) n[e] = quant::to_float(quant::from_float<T>(__fmul_rn(__fmul_rn(n[e], rstd), w[e])));
  if constexpr (kRope) rotate_pairs8(n, c, s);
  quant::store8(a.out + b * a.out_batch_stride + t * a.out_token_stride + h * a.out_head_stride + col, n);
}

template <typename T, int kLanes, bool kRope>
Status launch(const QKNormRopeParams& p, const GroupArgs<T>& a, int64_t grid, cudaStream_t stream) {
  static std::atomic<int> sm90[quant::kMaxDevices];
  const int threads = static_cast<int>(p.norm_heads) * kLanes;
  quant::launch_row_kernel(qk_group_norm_rope_kernel<T, kLanes, kRope>, sm90, false, grid, threads, 0, stream, a);
  return detail::last_launch_status("qk_norm_rope (norm across heads)");
}

template <typename T>
Status launch_typed(const QKNormRopeParams& p, cudaStream_t stream) {
  const GroupArgs<T> a{static_cast<const T*>(p.x), static_cast<const T*>(p.weight), p.weight_fp32, p.cos, p.sin,
                       static_cast<T*>(p.out), p.tokens, p.heads / p.norm_heads,
                       p.x_batch_stride, p.x_token_stride, p.x_head_stride,
                       p.out_batch_stride, p.out_token_stride, p.out_head_stride,
                       p.cos ? p.ld_rope : 0, p.rope_offset, p.cos ? p.rope_head_stride : 0,
                       static_cast<int>(p.norm_heads), p.eps,
                       1.0f / static_cast<float>(p.norm_heads * p.head_dim)};
  const int64_t grid = p.batches * p.tokens * a.groups;
  if (grid > 2147483647)
    return Status(StatusCode::kInvalidArgument, "qk_norm_rope: " + std::to_string(grid) +
                                                    " head groups are more than one call takes: split the batch over calls");
  if (p.head_dim == 64) return p.cos ? launch<T, 8, true>(p, a, grid, stream) : launch<T, 8, false>(p, a, grid, stream);
  return p.cos ? launch<T, 16, true>(p, a, grid, stream) : launch<T, 16, false>(p, a, grid, stream);
}

}  // namespace

Status launch_group_norm(const QKNormRopeParams& p, cudaStream_t stream) {
  const int64_t threads = p.norm_heads * p.head_dim / kVecElems;
  if ((p.head_dim != 64 && p.head_dim != 128) || threads % 32 != 0 || threads > kMaxGroupThreads)
    return Status(StatusCode::kNotSupported,
                  "qk_norm_rope: the norm across heads runs on the GPU for head_dim 64 and 128 with norm_heads * "
                  "head_dim / 8 threads a group a multiple of 32 and at most 1024; head_dim = " +
                      std::to_string(p.head_dim) + ", norm_heads = " + std::to_string(p.norm_heads) +
                      " give " + std::to_string(threads) + " (the CPU reference takes every size)");
  return p.type == DType::kBF16 ? launch_typed<__nv_bfloat16>(p, stream) : launch_typed<__half>(p, stream);
}

}  // namespace int8dit::attention
