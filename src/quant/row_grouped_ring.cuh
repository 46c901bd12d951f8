// The grouped kernel's rows delivered by bulk copy (Hopper): one CTA an SM of kGroups groups, as in
// row_grouped.cuh (each group a row at a time, its own named barrier, one channel cache for the CTA), plus
// one producer warp whose lane 0 copies each group's next row into the group's own slot of shared memory
// (cp.async.bulk, the TMA's 1-D form, L2 evict-first) while the group works on the current one.
//
// Why: for SmoothQuant's rows (quantize_rows with a divisor, 2304..3072 columns) it measured 2-3% faster
// than the grouped kernel's two CTAs of 4 groups an SM holding the next row in registers, in one process on
// the H100, outputs the same byte for byte (bench/results/h100/quant_grouped_ring.txt, the 8-group ring at 8
// slots: 4096 x 3072 0.970-0.973, 6144 x 3072 0.980, 4096 x 2304 0.981). The library's kernel in the same 8
// groups a CTA without the ring read 0.992: most of the gain is the ring's (its groups hold no next row: 96
// registers a thread instead of 118), not the single cache. Deeper rings, more rows ahead a group, were
// slower in every op (the same file): this is one row ahead a group, the depth the register kernel has.
// LayerNorm's rows read 1.007 in it and keep the grouped kernel; 128 x 3 and 32 x 6 in it were slower for every op;
// RMSNorm's 64 x 6 rows read 0.981-0.983 and take it too (quant_ab_grouped_ring_all_ops.md, quant_ab_rmsnorm_ring.md).
//
// Each CTA takes the rows its groups take in row_quantize_grouped (row_shape.h grouped_rows_of), so the
// planning, grid and outputs are the grouped kernel's: group g's j-th row goes to slot g, whose full
// barrier completes phase j when the copy lands and whose empty barrier completes phase j once the group's
// kGroupThreads threads have read it into registers (each arrives; the producer then refills the slot).
// A slot is one group's, read in order, so no parity wait can be two phases early.
#pragma once

#include "quant/row_bulk_ring.cuh"
#include "quant/row_grouped.cuh"

namespace int8dit::quant {

// Dynamic shared memory: the op's channel cache as the grouped kernel's, then a row slot a group.
template <typename Op, int kVecs, int kGroupThreads, int kGroups>
constexpr size_t grouped_ring_smem_bytes() {
  return grouped_channel_cache_bytes<Op, kVecs, kGroupThreads>() + sizeof(uint4) * kVecs * kGroupThreads * kGroups;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
namespace bulk {
__device__ __forceinline__ void barrier_init_count(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_address(bar)), "r"(count) : "memory");
}
// Release semantics: this thread's reads of the slot happen before the wait that observes the phase.
__device__ __forceinline__ void barrier_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_address(bar)) : "memory");
}
}  // namespace bulk
#endif

// kGroups x kGroupThreads consumer threads and one producer warp a CTA, one CTA an SM. The launch bounds cap a
// thread at 96 registers for 8 groups of 64: 17 warps, five of them on one of the register file's four 16K
// partitions (RMSNorm takes 95-96, SmoothQuant 96 and a 16-byte stack; the gated residual LayerNorm, which needs
// ~128, takes row_grouped_own_copies.cuh's 16 warps instead). Needs what row_quantize_grouped needs (cols % 8 == 0,
// 16-byte aligned rows, the layout's slots) and sm_90: the body is empty before it, where the launcher never
// takes it (runs_sm90_code).
template <typename T, typename Op, int kVecs, int kGroupThreads, int kGroups>
__global__ void __launch_bounds__(kGroupThreads* kGroups + 32, 1)
    row_quantize_grouped_ring(RowArgs<T> a, Op op, GroupedRows parts) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  static_assert(takes_grouped_rows<Op>() && !TransformsInput<Op>::value, "one input row, the grouped kernel's ops");
  static_assert(kGroups <= 15, "a named barrier a group: ids 1..15");
  constexpr int kConsumers = kGroupThreads * kGroups;
  constexpr int kSlotVecs = kVecs * kGroupThreads;
  release_dependent_launch();
  wait_for_previous_grid();
  a.smooth = nullptr;  // as in row_quantize_grouped: its ops divide themselves
  extern __shared__ float4 channel_cache[];
  __shared__ float partials[kGroups][2][kGroupThreads / 32];
  __shared__ uint64_t full[kGroups], empty[kGroups];
  uint4* const slots = reinterpret_cast<uint4*>(channel_cache + grouped_channel_cache_bytes<Op, kVecs, kGroupThreads>() / sizeof(float4));
  const int tid = static_cast<int>(threadIdx.x);
  const uint32_t row_bytes = static_cast<uint32_t>(a.cols * sizeof(T));
  const int nvec = static_cast<int>(a.cols / kVecElems);

  if (tid == kConsumers) {  // the producer: barriers, then every group's first row, in flight while the cache fills
    for (int g = 0; g < kGroups; ++g) bulk::barrier_init_count(&full[g], 1), bulk::barrier_init_count(&empty[g], kGroupThreads);
    bulk::fence_barrier_init();
    const uint64_t policy = evict_first_policy();
    for (int g = 0; g < kGroups; ++g) {
      const GroupedRowRange rows = grouped_rows_of(static_cast<int>(blockIdx.x), g, kGroups, a.rows, parts);
      if (rows.first < rows.end) bulk::copy_row(slots + g * kSlotVecs, a.x + rows.first * a.ldx, row_bytes, &full[g], policy);
    }
  }
  // The cache, filled by the consumer threads as in row_quantize_grouped.
  constexpr int kChanStep = Op::kChannelVec4s * kGroupThreads;
  op.begin_row(grouped_rows_of(static_cast<int>(blockIdx.x), 0, kGroups, a.rows, parts).part_first);
  for (int s = tid; s < kVecs * kGroupThreads && tid < kConsumers; s += kConsumers) {
    const int i = s / kGroupThreads, l = s % kGroupThreads;
    if (l + i * kGroupThreads < nvec) op.fill8((l + i * kGroupThreads) * kVecElems, channel_cache + i * kChanStep + l, kGroupThreads);
  }
  __syncthreads();  // the cache filled, and the barriers initialised, for every thread

  if (tid >= kConsumers) {
    if (tid == kConsumers) {  // each group's next row into its slot once the group has read the slot
      const uint64_t policy = evict_first_policy();
      // Rows in the order the groups reach them: round j's rows of groups 0, 1, ..., then round j + 1's.
      for (int j = 1;; ++j) {
        bool any = false;
        for (int g = 0; g < kGroups; ++g) {
          const GroupedRowRange rows = grouped_rows_of(static_cast<int>(blockIdx.x), g, kGroups, a.rows, parts);
          const int64_t row = rows.first + j * rows.step;
          if (row >= rows.end) continue;
          any = true;
          bulk::wait_phase(&empty[g], static_cast<uint32_t>((j - 1) & 1));
          bulk::fence_proxy_async();
          bulk::copy_row(slots + g * kSlotVecs, a.x + row * a.ldx, row_bytes, &full[g], policy);
        }
        if (!any) break;
      }
    }
    return;
  }

  const int group = tid / kGroupThreads;
  const GroupLanes<kGroupThreads> lanes{tid % kGroupThreads};
  GroupReducer<kGroupThreads> reduce{partials[group], 1 + group, lanes.lane()};
  bool has[kVecs];
  present_group_vector_slots<kVecs, kGroupThreads>(lanes.lane(), nvec, has);
  const GroupedRowRange rows = grouped_rows_of(static_cast<int>(blockIdx.x), group, kGroups, a.rows, parts);
  const uint4* const slot = slots + group * kSlotVecs + lanes.lane();
  float4* const channels = channel_cache + lanes.lane();
  uint32_t parity = 0;
  for (int64_t row = rows.first; row < rows.end; row += rows.step, parity ^= 1) {
    bulk::wait_phase(&full[group], parity);
    uint4 raw[kVecs];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) raw[i] = slot[i * kGroupThreads];
    }
    bulk::barrier_arrive(&empty[group]);
    float v[kVecs][kVecElems];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) unpack8<T>(raw[i], v[i]);
    }
    quantize_held_row<T, Op, kVecs, true, false>(a, op, row, v, has, reduce, channels, nullptr, lanes);
  }
#endif
}

}  // namespace int8dit::quant
