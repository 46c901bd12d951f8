// The grouped kernel's rows by bulk copy, each group copying its own (Hopper): the grouped kernel's groups
// (row_grouped.cuh: each group a row at a time, its own named barrier, one channel cache for the CTA), each
// group's next row copied into the group's one slot of shared memory by a `cp.async.bulk` (the TMA's 1-D form,
// L2 evict-first) that the group's lane 0 issues as soon as the group has read the slot. A transforming op's
// slot holds its next x row and next update row, two copies under one mbarrier; the group then forms r = x +
// gate * update, stores it and normalizes it as the grouped kernel does. The library runs the gated residual
// LayerNorm's rows in it (row_shape.h: kGroupedOwnCopiesTransform64x6); the one-input ops' are the probe's
// (bench/quant/grouped_ring_probe.cu).
//
// Why this form: row_grouped_ring.cuh's producer warp makes a CTA of 8 groups 17 warps, and a register file in
// four partitions of 16K gives 17 warps at most 96 registers a thread (5 warps on one partition), where this op
// needs ~128 (ptxas: 28-116 bytes of spills at 96). Without the producer the 8 groups are 16 warps, 128
// registers. The staged form it replaces as the default (row_grouped.cuh: kStaged, 8 groups too) has every
// thread copy its own 16-byte vectors of both rows (12 cp.async a thread a row) into two slots a group, 221 KB
// of shared memory with the channel cache at 3072 columns; here one thread issues two copies a row into one
// slot, 121 KB, and the rest of the SM's 228 KB is L1 (the gate's values are read through it every row).
//
// Each CTA takes the rows its groups take in row_quantize_grouped (row_shape.h grouped_rows_of), so the planning,
// grid and outputs are the grouped kernel's. Slot g is group g's only: its barrier completes phase j when both
// copies of the group's j-th row have landed, and the group's lane 0 issues the (j + 1)-th row's copies only
// after every thread of the group has read the j-th from the slot (the group's barrier), so no thread can find
// a phase two ahead of the one it waits for.
#pragma once

#include "quant/row_bulk_ring.cuh"
#include "quant/row_grouped.cuh"

namespace int8dit::quant {

// Row inputs a slot holds: x's row, and a transforming op's update row.
template <typename Op>
constexpr int kOwnCopiesInputs = TransformsInput<Op>::value ? 2 : 1;
// Dynamic shared memory: the op's channel cache as the grouped kernel's, then a slot a group of its row inputs.
template <typename Op, int kVecs, int kGroupThreads, int kGroups>
constexpr size_t grouped_own_copies_smem_bytes() {
  return grouped_channel_cache_bytes<Op, kVecs, kGroupThreads>() + sizeof(uint4) * kOwnCopiesInputs<Op> * kVecs * kGroupThreads * kGroups;
}

// kGroups x kGroupThreads threads, one CTA an SM. Needs what row_quantize_grouped needs (cols % 8 == 0, 16-byte
// aligned rows of x and of a transforming op's update, the layout's slots) and sm_90: the body is empty before
// it, where the launcher never takes it (runs_sm90_code).
template <typename T, typename Op, int kVecs, int kGroupThreads, int kGroups>
__global__ void __launch_bounds__(kGroupThreads* kGroups, 1)
    row_quantize_grouped_own_copies(RowArgs<T> a, Op op, GroupedRows parts) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  static_assert(takes_grouped_rows<Op>(), "the grouped kernel's ops");
  constexpr bool kTransforms = TransformsInput<Op>::value;
  static_assert(kGroupThreads == 32 || kGroups <= 15, "a named barrier a group: ids 1..15 (one-warp groups need none)");
  constexpr int kRowVecs = kVecs * kGroupThreads;  // one input row; a slot holds x's, then a transforming op's update's
  release_dependent_launch();
  wait_for_previous_grid();
  a.smooth = nullptr;  // as in row_quantize_grouped: the launcher sends it no divisor
  extern __shared__ float4 channel_cache[];
  __shared__ float partials[kGroups][2][kGroupThreads / 32];
  __shared__ uint64_t full[kGroups];
  const int group = static_cast<int>(threadIdx.x) / kGroupThreads;
  const GroupLanes<kGroupThreads> lanes{static_cast<int>(threadIdx.x) % kGroupThreads};
  const GroupedRowRange rows = grouped_rows_of(static_cast<int>(blockIdx.x), group, kGroups, a.rows, parts);
  uint4* const slot = reinterpret_cast<uint4*>(channel_cache + grouped_channel_cache_bytes<Op, kVecs, kGroupThreads>() / sizeof(float4)) +
                      group * kOwnCopiesInputs<Op> * kRowVecs;
  const uint32_t row_bytes = static_cast<uint32_t>(a.cols * sizeof(T));
  const int nvec = static_cast<int>(a.cols / kVecElems);
  uint64_t policy = 0;
  // Lane 0 of the group: the rows of `row` into the slot, one barrier phase for both of a transforming op's.
  auto copy_rows = [&](int64_t row) {
    bulk::arrive_expecting(&full[group], kOwnCopiesInputs<Op> * row_bytes);
    bulk::copy_bytes(slot, a.x + row * a.ldx, row_bytes, &full[group], policy);
    if constexpr (kTransforms) bulk::copy_bytes(slot + kRowVecs, op.second_input8_address(row, 0), row_bytes, &full[group], policy);
  };
  if (lanes.lane() == 0) {  // the group's barrier, then its first rows, in flight while the cache fills
    bulk::barrier_init(&full[group]);
    bulk::fence_barrier_init();
    policy = evict_first_policy();
    if (rows.first < rows.end) copy_rows(rows.first);
  }
  // The cache, filled by every thread as in row_quantize_grouped; the barrier also publishes the groups'
  // initialised barriers.
  op.begin_row(rows.part_first);
  fill_group_channel_cache<Op, kVecs, kGroupThreads>(op, channel_cache, static_cast<int>(threadIdx.x), kGroups * kGroupThreads, nvec);
  __syncthreads();

  GroupReducer<kGroupThreads> reduce{partials[group], 1 + group, lanes.lane()};
  bool has[kVecs];
  present_group_vector_slots<kVecs, kGroupThreads>(lanes.lane(), nvec, has);
  const uint4* const mine = slot + lanes.lane();
  float4* const channels = channel_cache + lanes.lane();
  uint32_t parity = 0;
  for (int64_t row = rows.first; row < rows.end; row += rows.step, parity ^= 1) {
    bulk::wait_phase(&full[group], parity);
    uint4 raw[kVecs], raw_update[kTransforms ? kVecs : 1];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) raw[i] = mine[i * kGroupThreads];
      if constexpr (kTransforms) {
        if (has[i]) raw_update[i] = mine[kRowVecs + i * kGroupThreads];
      }
    }
    // Every thread of the group has its vectors: the slot is free for the group's next rows.
    if constexpr (kGroupThreads == 32) {
      __syncwarp();
    } else {
      asm volatile("bar.sync %0, %1;" ::"r"(1 + group), "n"(kGroupThreads) : "memory");
    }
    if (lanes.lane() == 0 && row + rows.step < rows.end) {
      bulk::fence_proxy_async();  // the group's reads of the slot before the copies' writes
      copy_rows(row + rows.step);
    }
    float v[kVecs][kVecElems];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) unpack8<T>(raw[i], v[i]);
    }
    if constexpr (kTransforms) transform_group_row<Op, kVecs, kGroupThreads>(op, row, lanes.lane(), v, raw_update, has);
    quantize_held_row<T, Op, kVecs, true, false>(a, op, row, v, has, reduce, channels, nullptr, lanes);
  }
#endif
}

}  // namespace int8dit::quant
