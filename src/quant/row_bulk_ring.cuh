// Hopper (sm_90+) form of the register-row kernel: whole rows arrive in shared memory by bulk copies
// (cp.async.bulk, the TMA's 1-D form) into a ring of `stages` row slots, so `stages - 1` rows of
// every CTA are in flight while it works on the current one.
//
// Why: the register kernel keeps at most one next row in flight a CTA (its registers), and at
// 4096 x 3072 ncu found it latency-bound (25% achieved occupancy, DRAM 24% busy,
// bench/results/h200/ncu_smooth_quant_1ed64b1.txt). A bulk copy is one instruction of one thread
// for a whole row, where the cp.async stage it replaces cost an instruction every 16 bytes (and
// measured slower than registers); here the row's bytes in flight cost neither registers nor
// instructions. Each thread then reads its vectors from the slot (16-byte shared loads, consecutive
// threads on consecutive vectors) and the row is worked on exactly as in row_kernels.cuh.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "quant/row_kernels.cuh"

namespace int8dit::quant {

// Ring slots a CTA may have: the full-barriers live in static shared memory.
constexpr int kMaxRingStages = 8;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
namespace bulk {

__device__ __forceinline__ void barrier_init(uint64_t* bar) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_address(bar)) : "memory");
}
// Makes the initialised barriers visible to the bulk copies (the async proxy).
__device__ __forceinline__ void fence_barrier_init() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
// Orders this CTA's earlier shared-memory reads (generic proxy) before a bulk copy's writes.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

// One arrival that also expects `bytes` to land on the barrier's current phase.
__device__ __forceinline__ void arrive_expecting(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_address(bar)), "r"(bytes) : "memory");
}
// A copy of `bytes` (a multiple of 16, both ends 16-byte aligned) whose landing counts on the barrier.
__device__ __forceinline__ void copy_bytes(void* dst, const void* src, uint32_t bytes, uint64_t* bar, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
          smem_address(dst)),
      "l"(src), "r"(bytes), "r"(smem_address(bar)), "l"(policy)
      : "memory");
}
// One arrival that also expects `bytes`, then the copy that delivers them; the barrier's phase
// completes when both have happened.
__device__ __forceinline__ void copy_row(void* dst, const void* src, uint32_t bytes, uint64_t* bar, uint64_t policy) {
  arrive_expecting(bar, bytes);
  copy_bytes(dst, src, bytes, bar, policy);
}

__device__ __forceinline__ void wait_phase(uint64_t* bar, uint32_t parity) {
  const uint32_t b = smem_address(bar);
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done)
        : "r"(b), "r"(parity)
        : "memory");
  } while (!done);
}

}  // namespace bulk
#endif

// Shared memory a thread of the ring kernel takes: the op's channel cache or the SmoothQuant
// reciprocals (as the register kernel), then its share of the ring (each slot holds a row of up to
// threads x kVecs vectors).
template <typename Op, int kVecs, bool kCacheChannels, bool kRecips>
constexpr size_t ring_smem_bytes_per_thread(int stages) {
  return (kCacheChannels ? channel_cache_bytes_per_thread<Op, kVecs>() : 0) +
         (kRecips ? static_cast<size_t>(smooth_reciprocal_bytes_per_thread(kVecs)) : 0) +
         static_cast<size_t>(stages) * kVecs * sizeof(uint4);
}

// kMinCtas: __launch_bounds__' CTAs an SM, which caps the registers a thread (0: no minimum stated,
// as for the register kernel, row_kernels.cuh says why 1 is not the same).
// Persistent CTAs striding over the rows; needs cols % 8 == 0 and 16-byte aligned rows (as the
// register kernel) and 1 < stages <= kMaxRingStages. Dynamic shared memory:
// ring_smem_bytes_per_thread() x blockDim.x. On GPUs before sm_90 the body is empty: the launcher
// (row_launch.cuh) runs it only where the loaded binary was built for sm_90 or newer.
// kMaxThreads: kMaxRowThreads, or kWideRowThreads for the wide kernel (launch bounds and reducer).
template <typename T, typename Op, int kVecs, bool kCacheChannels, bool kRecips, int kMinCtas = 0,
          int kMaxThreads = kMaxRowThreads>
__global__ void __launch_bounds__(kMaxThreads, kMinCtas) row_quantize_bulk_ring(RowArgs<T> a, Op op, int stages) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  static_assert(!(kCacheChannels && kRecips), "one per-thread cache: the op's channels or the reciprocals");
  release_dependent_launch();
  wait_for_previous_grid();
  extern __shared__ float4 dynamic_smem[];  // [per-thread cache][blockDim.x] then [stages][threads * kVecs] uint4
  using Reducer = RowReducerFor<kMaxThreads>;
  __shared__ float4 partials[2][Reducer::kVec4s];
  __shared__ uint64_t full[kMaxRingStages];
  const int threads = blockDim.x;
  const size_t cache_vec4s = ((kCacheChannels ? channel_cache_bytes_per_thread<Op, kVecs>() : 0) +
                              (kRecips ? smooth_reciprocal_bytes_per_thread(kVecs) : 0)) /
                             sizeof(float4);
  uint4* const ring = reinterpret_cast<uint4*>(dynamic_smem + cache_vec4s * threads);
  const int slot_vecs = threads * kVecs;
  const uint32_t row_bytes = static_cast<uint32_t>(a.cols * sizeof(T));
  // NOTE: rows strided over the grid, also where LayerNorm's channel values vary by row (several batch
  // elements): the register kernel's contiguous blocks (row_kernels.cuh: WithRowBlocks) are not
  // here, since the ring caches channels only on rows of fewer than 8 vectors a thread, which `auto`
  // never sends it (INT8DIT_QUANT_ROWS=bulk does).
  const int64_t stride = gridDim.x;

  uint64_t policy = 0;
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) bulk::barrier_init(&full[s]);
    bulk::fence_barrier_init();
    policy = evict_first_policy();
    for (int s = 0; s < stages; ++s) {
      const int64_t row = blockIdx.x + s * stride;
      if (row < a.rows) bulk::copy_row(ring + s * slot_vecs, a.x + row * a.ldx, row_bytes, &full[s], policy);
    }
  }
  Reducer reduce{partials};
  reduce.init();  // its barrier also publishes the initialised ring barriers to every thread

  bool has[kVecs];
  present_vector_slots(a, has);
  float4* const channels = kCacheChannels ? dynamic_smem + threadIdx.x : nullptr;
  const float4* recips = nullptr;
  if constexpr (kRecips) recips = smooth_reciprocals_for_thread(a, has, dynamic_smem + threadIdx.x);

  int stage = 0;
  uint32_t parity = 0;
  for (int64_t row = blockIdx.x; row < a.rows; row += stride) {
    bulk::wait_phase(&full[stage], parity);
    const uint4* slot = ring + stage * slot_vecs + threadIdx.x;
    float v[kVecs][kVecElems];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) unpack8<T>(slot[i * threads], v[i]);
    }
    quantize_held_row<T, Op, kVecs, kCacheChannels, kRecips>(a, op, row, v, has, reduce, channels, recips);
    // Every thread has read the slot: its values fed the row max, whose reduction is a CTA barrier
    // (a warp's shuffles where the CTA is one warp, hence the __syncwarp). The slot takes the row
    // `stages` strides ahead.
    if (threads == 32) __syncwarp();
    const int64_t next = row + stages * stride;
    if (threadIdx.x == 0 && next < a.rows) {
      bulk::fence_proxy_async();
      bulk::copy_row(ring + stage * slot_vecs, a.x + next * a.ldx, row_bytes, &full[stage], policy);
    }
    if (++stage == stages) stage = 0, parity ^= 1;
  }
#endif
}

}  // namespace int8dit::quant
