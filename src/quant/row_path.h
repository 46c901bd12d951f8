// Which kernel runs the vectorizable activation-quantization rows, from the environment (read once a
// process): the register-row kernel (row_kernels.cuh, every GPU) or the sm_90 bulk-copy ring
// (row_bulk_ring.cuh, where the GPU and the build have sm_90 code). The default takes the ring, or
// for SmoothQuant's quantize_rows the wide register kernel, only where it measured faster
// (takes_bulk_ring, takes_wide_reciprocals, below); the other two force one kernel everywhere
// it can run, to measure and to test both.
#pragma once

#include <cstdint>
#include <string>

namespace int8dit::quant {

enum class RowPath { kAuto, kBulkRing, kRegisters };

// How the grouped kernel's CTAs get the gated residual LayerNorm's next row (its x and update rows): bulk-copied
// by each group's lane 0 into the group's slot (row_grouped_own_copies.cuh), copied vector by vector by each
// thread into its own stage (row_grouped.cuh: kStaged), or held in registers.
enum class GroupedTransformRows { kBulk, kStaged, kRegisters };

// How many threads a row the grouped kernel gives the one-input ops' rows (LayerNorm, RMSNorm, SmoothQuant's division):
// the library's layouts, or twice the threads in two 512-thread CTAs an SM (row_shape.h: kGroupedDoubled128x3 and 64x3),
// not yet measured and taken only when asked, to time one against the other in one library.
enum class GroupThreads { kAuto, kDouble };

struct RowPathConfig {
  RowPath path = RowPath::kAuto;
  int ring_stages = 2;  // row slots a CTA of the ring kernel
  GroupedTransformRows grouped_transform = GroupedTransformRows::kBulk;
  GroupThreads group_threads = GroupThreads::kAuto;
  std::string error;  // non-empty: an environment variable held a value we do not take
};

// INT8DIT_QUANT_ROWS = auto (default) | bulk | registers; INT8DIT_QUANT_RING_STAGES = 2..4 (default 2);
// INT8DIT_QUANT_GROUPED = bulk (default) | staged | registers: where the grouped kernel takes the gated residual
// LayerNorm's rows (Hopper, under auto), whether the SM runs 8 groups whose next x and update rows each group's
// lane 0 bulk-copies into the group's slot (row_shape.h: kGroupedOwnCopiesTransform64x6), 8 groups whose threads
// copy them vector by vector into two stages a group (kStagedTransform64x6), or 6 groups holding that row in
// registers. In one library (bench/results/h{100,200}/quant_ab_gated_own_copies.md), bulk against staged at 4096 x
// 3072: 37.12 -> 35.59 us on the H100, 30.64 -> 27.97 on the H200; staged had measured 0.9-2.2%
// faster than registers on the H100 (bench/results/h100/quant_ab_staged_gated_3e8c286.md). The other ops' grouped
// rows take the producer-warp ring or registers by their own rule (row_launch.cuh).
// INT8DIT_QUANT_GROUP_THREADS = auto (default) | double: whether the one-input ops' grouped rows take the doubled
// layouts wherever they fit (row_launch.cuh: launch_grouped_rows).
const RowPathConfig& row_path_config();

// Whether a vectorized row runs on the bulk-copy ring (where the build and the GPU have it). auto: the
// 8-vector rows (15360 columns, whose register kernel cannot be persistent) of the fused ops with a
// SmoothQuant divisor, where the ring measured faster on the H200 (bench/results/h200/quant_paths_030edec.txt;
// quantize_rows itself with a divisor takes the wide kernel instead, takes_wide_reciprocals below). The
// norms without a divisor took the ring there too until the H100 timed both kernels in one library
// (bench/results/h100/quant_ab_wide_paths_a09e4b8.md, 3 rounds, and quant_ab_wide_registers_a09e4b8.md):
// one CTA a row in registers is faster, LayerNorm 4608 x 15360 90.7 -> 87.5 us (0.775 -> 0.803 of the
// copy), + y 131.8 -> 124.4, RMSNorm 84.5 -> 78.1, and the same behind a gated_add that writes their input
// (after_producer_wide_a09e4b8.txt). On the H200 the last timing of both (quant_paths_800f999.txt, older
// kernels) read the ring 1.5-2% ahead for LayerNorm and RMSNorm and 4.6% behind for LayerNorm + y; the
// H200 has not timed them since. Elsewhere (3072 and 12288 columns) the register kernel was as fast or
// faster (quant_paths_ring_first.txt, quant_layout_*_ring.txt; on the H100 the ring 3-9% slower at 12288): the
// ring's shared memory leaves fewer CTAs an SM, and those rows are not short of loads in flight.
constexpr bool takes_bulk_ring(RowPath path, int vecs_per_thread, bool smooth) {
  if (path == RowPath::kAuto) return vecs_per_thread == 8 && smooth;
  return path == RowPath::kBulkRing;
}

// Whether a vectorized row runs the wide register kernel with SmoothQuant's reciprocals
// (row_quantize_registers at kWideRowThreads, kWideVecsPerThread vectors a thread, persistent; where
// the GPU and the build have sm_90 code, as the ring it replaces). auto only, and only for
// quantize_rows itself (`plain_rows`: no op before the quantization) with a divisor, on the rows
// that take 8 vectors a thread (12296..16384 columns): at 4608 x 15360 on the H200 it measured
// 80.3 us against the ring's 88.5 (bench/results/h200/quant_layout_4608x15360_wide.txt, 480 x 4, one
// CTA an SM). The fused ops with a divisor keep the ring: the probe timed their wide kernels without
// a divisor only (LayerNorm and GELU slower than the library's kernels, RMSNorm within a few percent).
// `registers` keeps the 256-thread 8-vector kernel (with the division) and `bulk` the ring, so the
// three settings run three different kernels on these rows.
constexpr bool takes_wide_reciprocals(RowPath path, int vecs_per_thread, bool plain_rows, bool smooth) {
  return path == RowPath::kAuto && vecs_per_thread == 8 && plain_rows && smooth;
}

// The largest shared-memory carveout the register kernels with the op's channel cache take on Hopper:
// 164 KB of the 228, leaving 92 KB of the SM's 256 to L1. Left to the driver, LayerNorm at 64 x 6
// (3072 columns; 128 registers since c1ed37e, 25.6 KB a CTA) runs 8 CTAs an SM in a 228 KB carveout
// with 28 KB of L1, 12% slower than 6 CTAs at 164 KB (19.36 vs 17.32 us at 4096 x 3072; 7 CTAs at
// 196 KB 19.28, 5 at 132 KB 18.08: bench/results/h200/quant_layout_4096x3072_carveout.txt). The half
// cache at 8 CTAs an SM said the same: 19.83 / 18.23 / 17.73 us with 60 / 92 / 124 KB of L1. The rows'
// loads in flight and the per-channel vectors read through L1 need the room.
constexpr int kKeptL1CarveoutKb = 164;
constexpr int kHopperMaxCarveoutKb = 228;

// Whether the launcher asks for the kKeptL1CarveoutKb carveout (row_launch.cuh: resident_ctas): on
// Hopper (compute capability 9.x), where the CTAs an SM that the kernel fits with the driver's own
// carveout would take more shared memory than that (each CTA's dynamic shared memory and the
// driver's reserve). Elsewhere it was not measured, and the driver's choice stands.
constexpr bool caps_carveout_for_l1(int cc_major, int ctas_per_sm, int64_t smem_per_cta, int64_t reserved_per_cta) {
  return cc_major == 9 && ctas_per_sm * (smem_per_cta + reserved_per_cta) > int64_t{kKeptL1CarveoutKb} * 1024;
}

// The carveout hint, in percent of the maximum as cudaFuncAttributePreferredSharedMemoryCarveout takes
// it: rounded down, since the driver rounds a hint up to the next carveout it has (71% = 161.9 KB -> 164).
constexpr int kept_l1_carveout_percent() { return kKeptL1CarveoutKb * 100 / kHopperMaxCarveoutKb; }

// Whether a row kernel is launched with programmatic stream serialization (on Hopper, INT8DIT_PDL not
// 0; row_launch.cuh: launch_row_kernel). Every row kernel, except a persistent grid of one-warp CTAs
// whose CTAs an SM shared memory sets (resident_ctas' smem_limited: LayerNorm's cached 32 x 6 kernel
// at 1152 and 1536 columns, 12 KB a CTA, 12 an SM at the L1-keeping carveout where registers allow 16).
// Such a grid splits its rows evenly over its CTAs; launched programmatically, they land as the
// previous grid's leave, 3 an SM beside that grid's and the rest wherever room opens first: 2-7 on
// the emptiest SM and 15, more than the 12 the grid is sized for, on the fullest
// (bench/results/h200/pdl_placement_800f999.txt), and the grid waits for its most crowded SM.
// Measured on the H200: LayerNorm 8192 x 1536 16.0 us in stream order against 17.6 programmatic
// (quant_pdl_placement_9f1f05d.md, quant_c5ccc31.md). Where registers set the count instead (the gated
// residual norm's one-warp kernels: 178 registers and 11 an SM for several batch elements, 165 and 12
// for one) programmatic was 7% faster (24.9 against 26.6 us at 8192 x 1152 with 8); so were the 64-thread kernels (~1 us at 3072 columns; the probe at 64
// threads and 24 KB, 6 an SM by shared memory, kept 6 on every SM). The kernel still releases the one
// after it early either way.
constexpr bool launches_programmatically(int threads_per_cta, bool smem_sized_grid) {
  return !(smem_sized_grid && threads_per_cta <= 32);
}

// The same parse, for tests: null means unset.
RowPathConfig parse_row_path(const char* rows, const char* stages, const char* grouped = nullptr,
                             const char* group_threads = nullptr);

}  // namespace int8dit::quant
