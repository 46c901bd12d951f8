// The grouped row kernel: one persistent CTA holds kGroups rows at once, each in its own group of
// kGroupThreads threads, and the groups share one copy of the op's per-channel values in shared
// memory (LayerNorm's 1 + scale and shift, RMSNorm's weight, SmoothQuant's divisor and its reciprocal).
//
// Why: the register kernel (row_kernels.cuh) holds one row a CTA, so its channel cache is paid once per
// row in flight: at 3072 columns LayerNorm's 24.6 KB a CTA fit 6 CTAs an SM (12 warps) in a 164 KB
// carveout, and the shared memory they take is L1 that the rows' loads in flight no longer have. Here
// the library's two CTAs an SM hold 8 rows, 16 warps, two caches, and leave the rest of the SM's 228 KB
// as L1 (row_shape.h: kGroupedCtaThreads). The rows' reductions synchronise
// only their own group (a named barrier, or none for one-warp groups), so the groups run as the CTAs
// of the register kernel do.
//
// A CTA's rows all share the channel values: with several batch elements (LayerNorm's modulation) the
// grid is split over them (GroupedRows), and each CTA fills its cache once, before its first row.
#pragma once

#include "quant/row_kernels.cuh"
#include "quant/row_shape.h"

// A hook at the kernel's milestones for bench/quant/grouped_timeline.cu, which defines it before including
// this file to stamp each warp's times (its op carries the buffer): 0 the CTA's start, 1 past
// griddepcontrol.wait, 2 the channel cache filled, -2 a row's vectors unpacked, 3 + i row i of the group
// done, -1 the end. Empty in the library (the same SASS as without it).
#ifndef INT8DIT_GROUPED_TIMELINE
#define INT8DIT_GROUPED_TIMELINE(op, point) ((void)0)
#endif

namespace int8dit::quant {

// Reductions over the kGroupThreads threads of one row inside a larger CTA: a butterfly in every warp,
// then the group's warps meet at their own named barrier (bar.sync id, kGroupThreads; id 0 is
// __syncthreads') and each thread adds the warps' partials in the same tree as RowReducer, so a row
// reduces to the same bits as in the register kernel of kGroupThreads threads. Two partial buffers used
// in turn, for RowReducer's reason: one barrier a reduction.
template <int kGroupThreads>
struct GroupReducer {
  static constexpr int kWarps = kGroupThreads / 32;
  static_assert(kGroupThreads % 32 == 0 && kWarps >= 1 && kWarps <= 4, "a group is 1 to 4 whole warps");
  float (*partials)[kWarps];  // this group's [2 buffers][kWarps] in shared memory
  int barrier_id;             // 1 + the group's index in the CTA
  int lane;                   // the thread's index in the group
  int parity = 0;

  __device__ float sum(float v) {
    v = warp_sum(v);
    if constexpr (kWarps == 1) {
      return v;
    } else {
      const float* p = publish(v);
      if constexpr (kWarps == 2) return p[0] + p[1];
      if constexpr (kWarps == 3) return (p[0] + p[1]) + p[2];
      if constexpr (kWarps == 4) return (p[0] + p[1]) + (p[2] + p[3]);
    }
  }
  // The max of values >= 0 or NaN.
  __device__ float max_nonneg(float v) {
    v = warp_max_nonneg(v);
    if constexpr (kWarps == 1) {
      return v;
    } else {
      const float* p = publish(v);
      float m = p[0];
#pragma unroll
      for (int w = 1; w < kWarps; ++w) m = max_nan(m, p[w]);
      return m;
    }
  }

 private:
  __device__ const float* publish(float warp_value) {
    float* p = partials[parity];
    parity ^= 1;
    if (lane % 32 == 0) p[lane / 32] = warp_value;
    asm volatile("bar.sync %0, %1;" ::"r"(barrier_id), "n"(kGroupThreads) : "memory");
    return p;
  }
};

// Which of a group lane's vector slots hold a vector of the row (present_vector_slots' form for a group of
// kGroupThreads lanes): the same for every row, the leading ones known (row_shape.h: full_vector_slots).
template <int kVecs, int kGroupThreads>
__device__ __forceinline__ void present_group_vector_slots(int lane, int nvec, bool (&has)[kVecs]) {
#pragma unroll
  for (int i = 0; i < kVecs; ++i) has[i] = i < full_vector_slots(kVecs) || lane + i * kGroupThreads < nvec;
}

// A transforming op's row in a group (the gated residual update): v, x's vectors, becomes r = x + gate * update
// from the update's vectors, and r is stored, every vector transformed before any is stored, for the register
// kernel's reason (row_kernels.cuh: r may alias the op's inputs as far as the compiler knows, so a store between
// two vectors would hold the next vector's gate loads behind it).
template <typename Op, int kVecs, int kGroupThreads>
__device__ __forceinline__ void transform_group_row(Op& op, int64_t row, int lane, float (&v)[kVecs][kVecElems],
                                                    const uint4 (&update)[kVecs], const bool (&has)[kVecs]) {
  op.begin_transform(row);
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    if (has[i]) op.transform8((lane + i * kGroupThreads) * kVecElems, v[i], update[i]);
  }
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    if (has[i]) op.store_transformed8((lane + i * kGroupThreads) * kVecElems, v[i]);
  }
}

// The op's channel values for this CTA, [kVecs][kChannelVec4s][kGroupThreads] float4s.
// Filled by the CTA's threads, each from `first` in steps of `stride`, a vector's values at a time; the caller's
// barrier then publishes them. (row_grouped_ring.cuh keeps its own loop, which leaves its producer warp out: as
// this helper's call behind a test, ptxas compiled that kernel differently.)
template <typename Op, int kVecs, int kGroupThreads>
__device__ __forceinline__ void fill_group_channel_cache(const Op& op, float4* cache, int first, int stride, int nvec) {
  constexpr int kChanStep = Op::kChannelVec4s * kGroupThreads;
  for (int s = first; s < kVecs * kGroupThreads; s += stride) {
    const int i = s / kGroupThreads, l = s % kGroupThreads;
    if (l + i * kGroupThreads < nvec) op.fill8((l + i * kGroupThreads) * kVecElems, cache + i * kChanStep + l, kGroupThreads);
  }
}
template <typename Op, int kVecs, int kGroupThreads>
constexpr size_t grouped_channel_cache_bytes() {
  return sizeof(float4) * kVecs * Op::kChannelVec4s * kGroupThreads;
}

// Whether an op's 64 x 6 grouped rows may take the kernel's bulk-copy form (row_grouped_ring.cuh; row_shape.h:
// kGroupedRing64x6): SmoothDivisionOp and RmsNormOp, where it measured faster (LayerNorm's did not; 128 x 3
// and 32 x 6 by bulk copy measured slower for every op: bench/results/h100/quant_ab_grouped_ring_all_ops.md).
template <typename Op, typename = void>
struct TakesGroupedRing : std::false_type {};
template <typename Op>
struct TakesGroupedRing<Op, std::void_t<decltype(Op::kGroupedRing)>> : std::bool_constant<Op::kGroupedRing> {};

// Whether an op runs in the grouped kernel: one whose channel values it caches, that reads one input
// row (a transforming op's second row input, the residual update, is fetched with it) and whose rows
// the launcher may stride.
template <typename Op>
constexpr bool takes_grouped_rows() {
  return caches_channels<Op, kGroupedVecsPerThread>() && !ReadsSecondInput<Op>::value && !TakesRowBlocks<Op>::value;
}

// The staged grouped kernel's copy of one 16-byte vector of the next row into this thread's own slot
// of shared memory (cp.async.cg: L1 bypassed; L2 evict_first_policy(), as the register kernels'
// __ldcs), and the wait for this thread's copies: each thread reads back only the slots it filled, so
// no barrier.
__device__ __forceinline__ void stage_vector(uint4* slot, const uint4* src, uint64_t policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;" ::"r"(smem_address(slot)), "l"(src),
               "l"(policy)
               : "memory");
}
__device__ __forceinline__ void commit_staged_vectors() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void wait_for_staged_vectors() { asm volatile("cp.async.wait_group 0;" ::: "memory"); }

// Each group takes its rows of a part (row_shape.h: grouped_rows_of). Dynamic shared memory:
// grouped_channel_cache_bytes(). Needs cols % 8 == 0, 16-byte aligned rows, and cols / 8 <= kVecs *
// kGroupThreads with the leading full_vector_slots(kVecs) slots of every thread in the row.
// NOTE: launch bounds state no minimum of CTAs an SM: with one, ptxas gave LayerNorm's 64 x 6 groups 167
// registers where the register kernel takes 128 (one CTA of 4 groups an SM instead of two). Capping the
// registers for more CTAs an SM (__maxnreg__) measured slower (docs/quantization.md).
// kStaged (the gated residual LayerNorm's rows with INT8DIT_QUANT_GROUPED=staged, row_path.h,
// and the layout probe; sm_90 code only, as the launcher takes the grouped kernel on Hopper only): the next row is copied
// to shared memory (cp.async; [2 slots][kGroups][inputs][kVecs][kGroupThreads] uint4s of dynamic shared
// memory after the channel cache, rows alternating between the slots; a transforming op's second row
// input, read from op.second_input8_address, is staged with x) instead of registers, so its 4 x kVecs
// registers an input are not held across the current row: fewer registers a thread, for more groups an
// SM. Only the gated residual LayerNorm's rows are staged, and only when asked (1-2% faster than registers;
// row_grouped_own_copies.cuh's bulk copies have since been faster still): the one-input ops'
// staged layouts measured 15-24% slower on the H100 (docs/quantization.md) and are the probe's. Their staged
// CTAs of up to 512 threads ask for two an SM in their launch bounds (kStagedMinCtas), since more groups
// an SM is all they are for: LayerNorm's 5 groups of 64 x 6 took 99 registers without it, 3 over what
// two allow; a transforming op's (its stage is twice the size) ask for one.
template <int kThreads, bool kStaged, bool kTransforms>
constexpr int kStagedMinCtas = !kStaged ? 0 : kThreads <= 512 && !kTransforms ? 2 : 1;
// The staged kernel's shared memory a CTA after the channel cache: two slots of every group's inputs.
template <typename Op, int kVecs, int kGroupThreads, int kGroups>
constexpr size_t grouped_stage_bytes() {
  return 2 * sizeof(uint4) * (TransformsInput<Op>::value ? 2 : 1) * kVecs * kGroupThreads * kGroups;
}
// The kernel's body (row_quantize_grouped, below), on the kernel's own copies of its arguments.
template <typename T, typename Op, int kVecs, int kGroupThreads, int kGroups, bool kStaged>
__device__ __forceinline__ void quantize_grouped_rows(RowArgs<T>& a, Op& op, const GroupedRows& parts) {
  static_assert(takes_grouped_rows<Op>(), "the grouped kernel shares the op's channel cache over strided rows");
  static_assert(kGroupThreads == 32 || kGroups <= 15, "a named barrier a group: ids 1..15");
  INT8DIT_GROUPED_TIMELINE(op, 0);
  release_dependent_launch();
  wait_for_previous_grid();
  INT8DIT_GROUPED_TIMELINE(op, 1);
  // Its ops divide themselves (SmoothDivisionOp) or never see a divisor (the launcher's rule): the held
  // row's own division (quantize_held_row at 1-3 vectors a thread) must not run again.
  a.smooth = nullptr;
  extern __shared__ float4 channel_cache[];
  __shared__ float partials[kGroups][2][kGroupThreads / 32];
  const int group = static_cast<int>(threadIdx.x) / kGroupThreads;
  const GroupLanes<kGroupThreads> lanes{static_cast<int>(threadIdx.x) % kGroupThreads};
  GroupReducer<kGroupThreads> reduce{partials[group], 1 + group, lanes.lane()};
  const int nvec = static_cast<int>(a.cols / kVecElems);
  bool has[kVecs];
  present_group_vector_slots<kVecs, kGroupThreads>(lanes.lane(), nvec, has);

  const GroupedRowRange rows = grouped_rows_of(static_cast<int>(blockIdx.x), group, kGroups, a.rows, parts);
  uint4 raw[kVecs];  // the next row's vectors, as loaded (staged: as read back from `stage`, at the row's start)
  // This thread's stage (kStaged): vector i of the row's x in slot s at stage[s * kStageSlot + i *
  // kGroupThreads], of its second input (a transforming op's) kVecs * kGroupThreads further. Two slots, so
  // that a row's copies never write where this thread's loads of the previous row read: PTX does not
  // order a cp.async's shared write after the thread's earlier shared loads.
  constexpr int kInputs = TransformsInput<Op>::value ? 2 : 1;
  constexpr int kStageSlot = kGroups * kInputs * kVecs * kGroupThreads;
  constexpr int kSecondInput = kVecs * kGroupThreads;
  static_assert(2 * kStageSlot * sizeof(uint4) == grouped_stage_bytes<Op, kVecs, kGroupThreads, kGroups>(),
                "the launchers size the stage by grouped_stage_bytes: two slots of this layout");
  uint4* const stage = reinterpret_cast<uint4*>(channel_cache + grouped_channel_cache_bytes<Op, kVecs, kGroupThreads>() / sizeof(float4)) +
                       group * kInputs * kVecs * kGroupThreads + lanes.lane();
  int slot = 0;  // the slot the current row's copies went to; the next row's go to the other
  const uint64_t policy = kStaged ? evict_first_policy() : 0;
  // A transforming op's second row input, a row ahead as x's (row_kernels.cuh: row_quantize_registers).
  uint4 raw_in[TransformsInput<Op>::value ? kVecs : 1];
  auto fetch = [&](int64_t row, int to_slot) {
    if constexpr (TransformsInput<Op>::value && kStaged) {
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        const int64_t k = static_cast<int64_t>(lanes.lane() + i * kGroupThreads) * kVecElems;
        if (has[i]) stage_vector(stage + to_slot * kStageSlot + kSecondInput + i * kGroupThreads, op.second_input8_address(row, k), policy);
      }
    } else if constexpr (TransformsInput<Op>::value) {
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) raw_in[i] = op.fetch8(row, static_cast<int64_t>(lanes.lane() + i * kGroupThreads) * kVecElems);
      }
    }
    const uint4* xr = reinterpret_cast<const uint4*>(a.x + row * a.ldx) + lanes.lane();
    if constexpr (kStaged) {
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) stage_vector(stage + to_slot * kStageSlot + i * kGroupThreads, xr + i * kGroupThreads, policy);
      }
      commit_staged_vectors();
    } else {
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) raw[i] = __ldcs(xr + i * kGroupThreads);
      }
    }
  };
  if (rows.first < rows.end) fetch(rows.first, slot);  // in flight while the cache fills

  // Every thread fills a share of the cache with the part's channel values, then one barrier; the
  // rows' own begin_row then finds their batch element cached.
  op.begin_row(rows.part_first);
  fill_group_channel_cache<Op, kVecs, kGroupThreads>(op, channel_cache, static_cast<int>(threadIdx.x), kGroups * kGroupThreads, nvec);
  __syncthreads();
  INT8DIT_GROUPED_TIMELINE(op, 2);

  float4* const channels = channel_cache + lanes.lane();
  [[maybe_unused]] int timeline_point = 3;
  for (int64_t row = rows.first; row < rows.end; row += rows.step) {
    float v[kVecs][kVecElems];  // slots without a vector stay unset: every use tests has[i]
    if constexpr (kStaged) {
      wait_for_staged_vectors();
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (has[i]) raw[i] = stage[slot * kStageSlot + i * kGroupThreads];
      }
      if constexpr (TransformsInput<Op>::value) {
#pragma unroll
        for (int i = 0; i < kVecs; ++i) {
          if (has[i]) raw_in[i] = stage[slot * kStageSlot + kSecondInput + i * kGroupThreads];
        }
      }
    }
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) unpack8<T>(raw[i], v[i]);
    }
    INT8DIT_GROUPED_TIMELINE(op, -2);  // the row's vectors are in (the timeline keeps the first row's)
    if constexpr (TransformsInput<Op>::value) transform_group_row<Op, kVecs, kGroupThreads>(op, row, lanes.lane(), v, raw_in, has);
    if (row + rows.step < rows.end) fetch(row + rows.step, slot ^ 1);
    slot ^= 1;
    quantize_held_row<T, Op, kVecs, true, false>(a, op, row, v, has, reduce, channels, nullptr, lanes);
    INT8DIT_GROUPED_TIMELINE(op, timeline_point++);
  }
  INT8DIT_GROUPED_TIMELINE(op, -1);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
constexpr bool kBeforeSm90Code = true;
#else
constexpr bool kBeforeSm90Code = false;
#endif

// The CTAs an SM a layout asks of its launch bounds: the staged forms' (above), and the doubled layouts' two
// (row_shape.h: kGroupedDoubled128x3 and 64x3, 64 registers); 0 (no ask) for the rest.
template <int kVecs, int kGroupThreads, int kGroups, bool kStaged, bool kTransforms>
constexpr int kGroupedMinCtas = !kStaged && is_doubled_grouped_layout(kGroupThreads, kVecs, kGroups)
                                    ? kGroupedDoubledMinCtas
                                    : kStagedMinCtas<kGroupThreads * kGroups, kStaged, kTransforms>;
template <typename T, typename Op, int kVecs, int kGroupThreads, int kGroups, bool kStaged = false>
__global__ void __launch_bounds__(kGroupThreads* kGroups,
                                  (kGroupedMinCtas<kVecs, kGroupThreads, kGroups, kStaged, TransformsInput<Op>::value>))
    row_quantize_grouped(RowArgs<T> a, Op op, GroupedRows parts) {
  // The staged form compiles to nothing before sm_90, where no launcher takes it (runs_sm90_code).
  if constexpr (!(kStaged && kBeforeSm90Code))
    quantize_grouped_rows<T, Op, kVecs, kGroupThreads, kGroups, kStaged>(a, op, parts);
}

}  // namespace int8dit::quant
