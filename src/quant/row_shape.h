// How the register-row quantization kernel lays a row over a CTA: pure host arithmetic, tested on the CPU
// (tests/cpp/test_quant_row_shape.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>

namespace int8dit::quant {

// Eight 16-bit elements travel as one 16-byte vector.
constexpr int kVecElems = 8;
// The register-row kernel holds a row in at most 256 threads x 8 vectors x 8 elements.
constexpr int kMaxRowThreads = 256;
// The wide kernels (a template argument of the row kernels) take up to 512 threads a row, with
// registers capped at 128 a thread by their launch bounds: for long rows, twice the warps an SM.
// They measured slower than the 256-thread kernels on the H200 but for SmoothQuant at 15360 columns
// (docs/quantization.md), so the library runs one of them only there (wide_row_threads(), below;
// row_path.h: takes_wide_reciprocals); the layout probe (bench/quant/layout_probe.cu) times the rest.
// row_launch_shape() never gives more than kMaxRowThreads.
constexpr int kWideRowThreads = 512;
// Vectors a thread of the wide SmoothQuant kernel: 480 threads x 4 at 15360 columns measured 80.3 us
// at 4608 x 15360 against 84.4 for 320 x 6 (bench/results/h200/quant_layout_4608x15360_wide.txt).
constexpr int kWideVecsPerThread = 4;
constexpr int kMaxVecsPerThread = 8;
constexpr int kStreamThreads = 256;
// Vectors a thread holds when the row allows: every row costs each thread a fixed ~150 instructions
// (the reductions, the row's scale, addressing), so more elements a thread is fewer instructions an
// element, and more of the row's loads in flight at once. 6 (48 elements) measured best on the H200
// for the Flux rows (bench/results/h200/quant_layout_*.txt: LayerNorm at 4096 x 3072 17.0 us with
// 64 threads x 6, 17.9 with 96 x 4; 4096 x 12288: 53.3 us with 256 x 6) and fits the DiT hidden sizes
// (1536, 3072, 4608, 6144 and 12288 columns are whole warps of 6).
constexpr int kPreferredVecsPerThread = 6;

// Vector slots [0, full_vector_slots(vecs)) of every thread hold a vector of the row for every row length
// that row_launch_shape() gives `vecs` vectors a thread (a CPU test walks them all), so the kernel tests
// for presence only in the remaining slots: the tests and their branches cost ~2 instructions an element.
constexpr int full_vector_slots(int vecs) { return vecs == 8 ? 6 : vecs == 6 ? 4 : vecs - 1; }

struct RowLaunchShape {
  int vecs_per_thread = 0;  // 0: the streaming kernel
  int threads_per_row = 0;  // = threads per CTA, a multiple of 32
};

// The share of a CTA's vector slots that hold a vector of the row.
inline double row_shape_use(int64_t nvec, int vecs, int threads) {
  return static_cast<double>(nvec) / (static_cast<double>(vecs) * threads);
}

// The most vectors a thread of {6, 4, 2, 1}, at most `preferred_vecs`, that still fill at least 3/4
// of the CTA's slots: a 1152-wide row (144 vectors) gets 32 threads x 6 (3/4 used) rather than 64 x 4
// with 112 of 256 slots empty. Rows longer than 256 threads x preferred_vecs get 6 (up to 1536
// vectors) or 8. A preference of 4 is for SmoothQuant's division, whose per-element latency wants
// more threads (H200, 4096 x 3072: 17.7 us with 96 threads x 4 against 20.5 with 64 x 6).
inline RowLaunchShape row_launch_shape(int64_t cols, bool vector_ok, int preferred_vecs = kPreferredVecsPerThread) {
  RowLaunchShape s;
  const int64_t nvec = cols / kVecElems;
  if (!vector_ok || nvec > static_cast<int64_t>(kMaxRowThreads) * kMaxVecsPerThread) {
    s.threads_per_row = kStreamThreads;
    return s;
  }
  const auto threads_for = [&](int vecs) { return static_cast<int>((nvec + vecs - 1) / vecs + 31) / 32 * 32; };
  if (nvec > static_cast<int64_t>(kMaxRowThreads) * preferred_vecs) {
    s.vecs_per_thread = nvec > static_cast<int64_t>(kMaxRowThreads) * 6 ? kMaxVecsPerThread : 6;
    s.threads_per_row = threads_for(s.vecs_per_thread);
    return s;
  }
  int best = 1;
  double best_use = 0.0;
  for (const int vecs : {6, 4, 2, 1}) {
    if (vecs > preferred_vecs) continue;
    const double use = row_shape_use(nvec, vecs, threads_for(vecs));
    if (use >= 0.75) {
      best = vecs;
      break;
    }
    if (use > best_use) best = vecs, best_use = use;
  }
  s.vecs_per_thread = best;
  s.threads_per_row = threads_for(best);
  return s;
}

// LayerNorm's rows on Hopper with programmatic launch on (no divisor; the ops with kOneWarpRowsInStreamOrder,
// row_ops.cuh; row_launch.cuh decides): row_launch_shape(),
// except that a row the 6-vector shape lays over one warp takes two warps of 4 vectors where those fill
// at least 3/4 of the slots, which of the one-warp rows (145-192 vectors) only 1536 columns do: 64 x 4
// instead of 32 x 6 (1152 keeps 32 x 6, where 4 vectors would fill 9/16).
// On the H100 LayerNorm's one-warp persistent grid is one that shared memory sizes, which launches in
// plain stream order (row_path.h: launches_programmatically); 64 x 4 runs persistent with the channel
// cache, programmatically: LayerNorm 8192 x 1536 18.38 us against 19.23 in the layout probe
// (quant_layouts_all_ops_7fa79a3.txt); in the library's benchmark, A/B in one call, 18.07 against 19.08
// (bench/results/h100/quant_ab_stats_rows_1536.md). Not RMSNorm: registers size its one-warp grid,
// which launches programmatically as it is (16.09 us at 8192 x 1536 against 16.59 as two warps,
// quant_layout_8192x1536_stats_rows.txt); nor the gated residual norm (178 registers, the same).
inline RowLaunchShape two_warp_row_launch_shape(int64_t cols, bool vector_ok) {
  const RowLaunchShape s = row_launch_shape(cols, vector_ok);
  if (s.vecs_per_thread != kPreferredVecsPerThread || s.threads_per_row != 32) return s;
  const RowLaunchShape two_warps = row_launch_shape(cols, vector_ok, 4);
  return two_warps.vecs_per_thread == 4 ? two_warps : s;
}

// SmoothQuant's plain rows (quantize_rows with a divisor, no op before it) of up to 256 threads x 3
// vectors (6144 columns): one CTA a row with 2 or 3 vectors a thread, whichever puts the CTA nearer
// kSmoothRowThreads, and the IEEE division. The division's latency an element wants more threads a row
// than the other ops do; against the layout row_launch_shape(cols, true, 4) gives (3072: the persistent
// 96 x 4 kernel with the divisors' reciprocals), on the H100 in one process, both launched
// programmatically (bench/results/h100/quant_smooth_layouts_6c1515a.md): 4096 x 3072 19.76 -> 17.95 us
// (128 x 3), 4608 x 3072 21.49 -> 19.90, 8192 x 1536 19.04 -> 17.64 (96 x 2), 4096 x 4608 26.20 ->
// 25.88 (192 x 3), 4096 x 6144 34.25 -> 32.83 (256 x 3), 512 x 3072 6.81 -> 5.89, 333 x 1536 4.11 ->
// 3.19; 8192 x 1152 15.64 -> 15.60 (96 x 2; 64 x 3 read 16.01, hence the thread target).
// Returns vecs_per_thread 0 where neither count fits: more than 256 threads, or a trailing thread
// whose leading slots (full_vector_slots) would not all hold a vector.
constexpr int kSmoothRowThreads = 128;
inline RowLaunchShape smooth_row_shape(int64_t cols) {
  RowLaunchShape s;
  const int64_t nvec = cols / kVecElems;
  if (cols % kVecElems != 0 || nvec <= 0) return s;
  int64_t best_distance = -1;
  for (const int vecs : {3, 2}) {
    const int64_t threads = ((nvec + vecs - 1) / vecs + 31) / 32 * 32;
    if (threads > kMaxRowThreads || threads * full_vector_slots(vecs) > nvec) continue;
    const int64_t distance = threads > kSmoothRowThreads ? threads - kSmoothRowThreads : kSmoothRowThreads - threads;
    if (best_distance < 0 || distance < best_distance) {
      best_distance = distance;
      s.vecs_per_thread = vecs;
      s.threads_per_row = static_cast<int>(threads);
    }
  }
  return s;
}

// Persistent CTAs on contiguous blocks of rows (row_kernels.cuh: WithRowBlocks, where the op's
// channel values change between rows): `ctas` CTAs share `rows` rows, CTA b taking rows_per_cta rows,
// one more where b < extra_rows, from contiguous_block_first(b). Blocks tile [0, rows) in order
// (a CPU test walks them).
struct ContiguousRows {
  int64_t rows_per_cta = 0;
  int64_t extra_rows = 0;
};
constexpr ContiguousRows contiguous_rows(int64_t rows, int64_t ctas) { return {rows / ctas, rows % ctas}; }
constexpr int64_t contiguous_block_first(int64_t b, const ContiguousRows& c) {
  return b * c.rows_per_cta + (b < c.extra_rows ? b : c.extra_rows);
}
constexpr int64_t contiguous_block_rows(int64_t b, const ContiguousRows& c) {
  return c.rows_per_cta + (b < c.extra_rows ? 1 : 0);
}

// Threads a row of the wide SmoothQuant kernel (kWideVecsPerThread vectors a thread): the fewest
// whole warps that hold the row, as the layout probe lays it out; 0 where that does not fit
// kWideRowThreads or would leave one of the thread's leading full_vector_slots() empty (the kernel
// tests only the trailing slot for presence). Every row that row_launch_shape() gives 8 vectors a
// thread (12296..16384 columns: 416..512 threads) fits; a CPU test walks them.
inline int wide_row_threads(int64_t cols) {
  const int64_t nvec = cols / kVecElems;
  if (cols % kVecElems != 0 || nvec <= 0) return 0;
  const int64_t threads = ((nvec + kWideVecsPerThread - 1) / kWideVecsPerThread + 31) / 32 * 32;
  if (threads > kWideRowThreads || threads * full_vector_slots(kWideVecsPerThread) > nvec) return 0;
  return static_cast<int>(threads);
}

// The wide kernel for transforming ops that ask for it (row_kernels.cuh: TakesWideRows; swiglu_quantize):
// rows longer than the 256-thread kernels hold (over 16384 columns), kWideTransformVecsPerThread
// vectors a thread, one CTA a row, up to kWideRowThreads x 6 x 8 = 24576 columns. FLUX.2-dev's gated
// MLP (18432 wide) is exactly 384 threads x 6. Returns the fewest whole warps that hold the row, or 0
// where it is not whole vectors, fits the 256-thread kernels, or does not fit this one. Every row it
// takes keeps the thread's leading full_vector_slots() full (a CPU test walks them).
constexpr int kWideTransformVecsPerThread = 6;
inline int wide_transform_row_threads(int64_t cols) {
  const int64_t nvec = cols / kVecElems;
  if (cols % kVecElems != 0 || nvec <= static_cast<int64_t>(kMaxRowThreads) * kMaxVecsPerThread) return 0;
  const int64_t threads = ((nvec + kWideTransformVecsPerThread - 1) / kWideTransformVecsPerThread + 31) / 32 * 32;
  if (threads > kWideRowThreads || threads * full_vector_slots(kWideTransformVecsPerThread) > nvec) return 0;
  return static_cast<int>(threads);
}

// The grouped kernel (row_grouped.cuh): kGroupedCtaThreads threads a CTA in groups of one row each, the
// groups sharing one copy of the op's channel values. It takes the rows row_launch_shape() lays over
// 32 or 64 threads x 6 vectors (1152..1536 and 2304..3072 columns): 8 or 4 rows a CTA. Measured on the
// H100 against the one-row CTAs they replace, both launched programmatically
// (bench/results/h100/quant_grouped_probe_34e96a7.txt): LayerNorm 4096 x 3072 18.53 -> 16.15 us (64 x 6
// in 4 groups; 6 or 8 groups a CTA, one CTA an SM, read 17.65 and 16.45), 8192 x 1536 18.13 -> 15.82
// (32 x 6 in 8 groups; 16 groups 16.40), RMSNorm 1-3% faster in the same layouts.
constexpr int kGroupedCtaThreads = 256;
constexpr int kGroupedVecsPerThread = 6;
// A transforming op's rows (the gated residual LayerNorm, whose second input and its update take ~165
// registers a thread where LayerNorm takes 128): one CTA an SM of 384 threads, the most those registers
// allow (65536 / 384 = 170), in 12 groups of 32 x 6 or 6 of 64 x 6. Its register kernel holds 6 one-row
// CTAs an SM at 3072 columns, each with its own 24.6 KB of channel values; these 6 rows share one copy,
// and the SM's L1 gets the ~120 KB back. Measured on the H100 against the register kernel
// (quant_ab_gated_grouped_09c0f18.md): 4096 x 3072 40.72 -> 37.71 us, 8192 x 1152 with 8 batch elements
// 30.34 -> 29.59. 8 groups in 512 threads cap the registers at 128 (an 80-byte stack): 5% slower than 6.
constexpr int kGroupedTransformCtaThreads = 384;

// The threads of one row of the grouped kernel (32 or 64), or 0 where it does not take the row.
inline int grouped_row_threads(int64_t cols, bool vector_ok) {
  const RowLaunchShape s = row_launch_shape(cols, vector_ok);
  if (s.vecs_per_thread != kGroupedVecsPerThread || (s.threads_per_row != 32 && s.threads_per_row != 64)) return 0;
  return s.threads_per_row;
}

// How the grouped kernel's grid covers the rows: parts of rows_per_part consecutive rows that share the
// op's channel values, ctas_per_part CTAs each (grouped_ctas_per_part).
struct GroupedRows {
  int64_t rows_per_part;
  int ctas_per_part;  // at most the resident CTAs
};

// The rows group g of CTA b takes: first, first + step, ... < end, of the part that starts at part_first
// (whose channel values the CTA caches). CTA b serves part b / ctas_per_part;
// its group g takes that part's rows j * groups + g, then the part's CTAs' groups further on, where
// j = b % ctas_per_part. (The kernel's own arithmetic, here so that a CPU test can walk it.)
struct GroupedRowRange {
  int64_t part_first, first, end, step;
};
constexpr GroupedRowRange grouped_rows_of(int cta, int group, int groups, int64_t rows, const GroupedRows& p) {
  const int64_t part = cta / p.ctas_per_part, cta_in_part = cta % p.ctas_per_part;
  const int64_t part_first = part * p.rows_per_part;
  const int64_t part_end = part_first + p.rows_per_part < rows ? part_first + p.rows_per_part : rows;
  return {part_first, part_first + cta_in_part * groups + group, part_end, static_cast<int64_t>(p.ctas_per_part) * groups};
}

// The grouped kernel's CTAs for each part of the rows (rows_per_part consecutive rows that share the
// op's channel values: one batch element of LayerNorm's modulation, or every row), given the CTAs of it
// resident on the GPU at once and `groups` rows a CTA: the grid is parts x that, each CTA's groups
// taking rows of its part only, strided, as many rows each as the others or one fewer. 0 where the
// kernel does not take the call: more parts than resident CTAs, or a split of the resident CTAs over
// the parts that leaves more than a tenth of them idle (the register kernel's contiguous row blocks
// then use every CTA).
inline int64_t grouped_ctas_per_part(int64_t rows, int64_t rows_per_part, int64_t resident_ctas, int groups) {
  if (rows <= 0 || rows_per_part <= 0 || resident_ctas <= 0 || groups <= 0) return 0;
  const int64_t parts = (rows + rows_per_part - 1) / rows_per_part;
  if (parts > resident_ctas) return 0;
  const int64_t even = resident_ctas / parts;
  if (parts > 1 && even * parts * 10 < resident_ctas * 9) return 0;
  const int64_t part_rows = std::min(rows_per_part, rows);
  const int64_t most = std::min<int64_t>(even, (part_rows + groups - 1) / groups);
  // Balanced: as few CTAs as keep the rounds of rows (rows a group) that `most` CTAs need, so that the
  // last round is not a partial one. Measured 0.2-1.7% faster in every grouped case on the H100
  // (quant_grouped_probe_22aa407.txt: LayerNorm 4608 x 3072 18.91 -> 18.58 us, 4.36 -> 4.99 rows a group).
  const int64_t rounds = (part_rows + most * groups - 1) / (most * groups);
  return (part_rows + rounds * groups - 1) / (rounds * groups);
}

// A layout of the grouped kernel: `groups` rows a CTA, each over group_threads threads x vecs vectors.
struct GroupedLayout {
  int group_threads, vecs, groups;
};
// The library's rows of 2304..3072 columns: 4 groups of 64 x 6 (two CTAs an SM, 8 rows), and, where it
// leaves the busiest SM fewer rows (grouped_busiest_sm_rows) with a CTA on every SM
// (prefers_second_grouped_layout), 7 groups of 128 x 3 (one CTA an SM, 7 rows: 72 registers a thread).
// Measured on the H100 on balanced grids (quant_grouped_probe_e1f3ae5.txt): at 4608 x 3072 SmoothQuant
// 19.61 -> 18.79 us, RMSNorm 18.00 -> 17.77, LayerNorm 18.60 -> 18.54; at 4096 and 6144 rows 128 x 3 was
// 1-5% slower, and there its busiest SM has more rows (35 vs 32, 49 vs 48). In the library against 64 x 6
// alone (quant_ab_second_layout_bc3e1ed.md): SmoothQuant 4608 x 3072 19.76 -> 18.80 us, + y 28.84 -> 27.41.
constexpr GroupedLayout kGrouped64x6{64, 6, 4};
constexpr GroupedLayout kGrouped128x3{128, 3, 7};
// The one-input ops' grouped rows (LayerNorm, RMSNorm, SmoothQuant's division) over twice the threads a row
// (INT8DIT_QUANT_GROUP_THREADS=double, row_path.h; not the default, and not yet measured): 3072 columns as 128 x 3
// in 4 groups, 1536 as 64 x 3 in 8, each in two 512-thread CTAs an SM held to 64 registers by the kernel's launch
// bounds (kGroupedDoubledMinCtas). The same rows an SM as 64 x 6 and 32 x 6 (8 and 16), each over twice the
// threads, so that a row's own chain of work (the statistics' passes, the reductions, the stores), what an SM's last
// rows run with DRAM idle at a call's end (docs/quantization.md: Where a call's time goes), is shorter: LayerNorm's
// row loop 966 -> 580 instructions a warp, at ~20% more a row in all (docs/quantization_history.md, stop 60). The
// idea of the layout probe's "128x3 grouped x4 2/SM", which read RMSNorm 15.64 us against the ring's 15.74 at 4096 x
// 3072 on the H100 (quant_layouts_4096x3072_stop55.txt) and was not timed for LayerNorm, whose 72 registers at
// 128 x 3 fit one such CTA an SM only.
constexpr GroupedLayout kGroupedDoubled128x3{128, 3, 4};
constexpr GroupedLayout kGroupedDoubled64x3{64, 3, 8};
constexpr int kGroupedDoubledMinCtas = 2;
constexpr bool is_doubled_grouped_layout(int group_threads, int vecs, int groups) {
  auto is = [&](GroupedLayout l) { return l.group_threads == group_threads && l.vecs == vecs && l.groups == groups; };
  return is(kGroupedDoubled128x3) || is(kGroupedDoubled64x3);
}
// SmoothQuant's and RMSNorm's rows of those lengths where 64 x 6 takes them: the grouped kernel's bulk-copy
// form (row_grouped_ring.cuh), 8 groups of 64 x 6 and a producer warp in one 544-thread CTA an SM (92-96
// registers a thread). Measured on the H100 against 4 groups a CTA (bench/results/h100/quant_grouped_ring.txt,
// SmoothQuant 4096 x 3072 0.970-0.973, 6144 x 3072 0.980, 4096 x 2304 0.981; in the library
// quant_ab_grouped_ring.md and quant_ab_grouped_ring_all_ops.md, RMSNorm 4096 x 3072 0.981); it comes before
// 128 x 3 for those ops (choose_grouped_layout, below), which the other ops keep at 4608 rows.
constexpr GroupedLayout kGroupedRing64x6{64, 6, 8};
// The gated residual LayerNorm's rows with the next row staged in shared memory (INT8DIT_QUANT_GROUPED=staged;
// the default until each group's own bulk copies, below, measured faster; row_path.h; row_grouped.cuh: kStaged): both its next-row inputs in shared memory free 34 of its 162 registers (sm_90a, bf16, from
// ptxas: 127-128), one 512-thread CTA an SM in 8 groups of 64 x 6 (221 KB of shared memory with its
// channel cache) or 16 of 32 x 6. Measured on the H100 in the library against its register layouts
// (bench/results/h100/quant_ab_staged_3e8c286.md, quant_ab_staged_gated_3e8c286.md): 4096 x 3072 37.39 ->
// 37.06 us, 8192 x 1152 with 8 batch elements 29.64 -> 29.19, with y 35.75 -> 34.97; in the layout probe
// 8192 x 1536 37.57 -> 36.57 (quant_grouped_probe_staged_3e8c286.txt). The one-input ops' staged layouts
// (5 groups of 64 x 6 or 10 of 32 x 6 at 96 registers, 20 warps an SM) measured 15-24% slower than their
// register layouts there and are the probe's only.
constexpr GroupedLayout kStagedTransform64x6{64, 6, 8};
constexpr GroupedLayout kStagedTransform32x6{32, 6, 16};
// The gated residual LayerNorm's rows by bulk copy (row_grouped_own_copies.cuh; the default, INT8DIT_QUANT_GROUPED=bulk):
// the staged form's groups, one 512-thread CTA an SM, each group's one slot holding its next x and update rows
// (96 KB, 121 KB with the channel cache at 3072 columns, where the staged form's two slots a group take 221 KB),
// 122-128 registers. Against the staged form in one library (quant_ab_gated_own_copies.md): on the H200 4096 x 3072
// 30.64 -> 27.97 us, 8192 x 1152 with 8 batch elements 23.64 -> 22.25; on the H100 37.12 -> 35.59 and 29.12 -> 28.28.
constexpr GroupedLayout kGroupedOwnCopiesTransform64x6{64, 6, 8};
constexpr GroupedLayout kGroupedOwnCopiesTransform32x6{32, 6, 16};

// Whether a row of `cols` columns fits the layout: every slot of the leading full_vector_slots(vecs) of
// every thread holds a vector, and no warp is left without one.
constexpr bool grouped_layout_fits(int64_t cols, GroupedLayout l) {
  const int64_t nvec = cols / kVecElems;
  return cols % kVecElems == 0 && nvec <= int64_t(l.group_threads) * l.vecs &&
         nvec > int64_t(l.group_threads - 32) * l.vecs && int64_t(l.group_threads) * full_vector_slots(l.vecs) <= nvec;
}

// The rows the busiest SM takes in the grouped kernel's (balanced) grid for `groups` rows a CTA, given
// the CTAs resident at once and the SMs (the CTAs spread evenly over the SMs): rounds of rows a group
// x groups x the most CTAs on one SM; 0 where the kernel does not take the call (grouped_ctas_per_part).
// The kernels are latency-bound, each group's rows in turn, so the busiest SM's rows set the time.
inline int64_t grouped_busiest_sm_rows(int64_t rows, int64_t rows_per_part, int64_t resident_ctas, int64_t sms, int groups) {
  const int64_t per_part = grouped_ctas_per_part(rows, rows_per_part, resident_ctas, groups);
  if (per_part == 0 || sms <= 0) return 0;
  const int64_t part_rows = std::min(rows_per_part, rows);
  const int64_t rounds = (part_rows + per_part * groups - 1) / (per_part * groups);
  const int64_t ctas = (rows + rows_per_part - 1) / rows_per_part * per_part;
  return rounds * groups * ((ctas + sms - 1) / sms);
}

// Whether the second layout's grid (`second_grid` CTAs) takes the call rather than the first: it leaves
// the busiest SM fewer rows, and it puts a CTA on every SM. (With few rows, 7 groups an SM would leave
// SMs idle where 4 groups a CTA spread over all of them; that regime is unmeasured, so it keeps 64 x 6.)
constexpr bool prefers_second_grouped_layout(int64_t first_busiest, int64_t second_busiest, int64_t second_grid, int64_t sms) {
  return second_busiest > 0 && second_grid >= sms && (first_busiest == 0 || second_busiest < first_busiest);
}

// Whether SmoothQuant's and RMSNorm's rows take the ring's 8 groups a CTA (kGroupedRing64x6) rather than 64 x 6's 4: where
// its busiest SM has no more rows than 4 groups' (equal at 4096, 4608 and 6144 rows of 3072 on 132 SMs, where it
// was measured; with few rows 8 groups a CTA would leave SMs idle, and there 64 x 6 keeps them).
constexpr bool prefers_grouped_ring(int64_t four_groups_busiest, int64_t ring_busiest) {
  return ring_busiest > 0 && four_groups_busiest > 0 && ring_busiest <= four_groups_busiest;
}

// The layout a one-input op's 64 x 6 grouped rows take, from each layout's busiest SM's rows (0: the layout does
// not take the call; ring_busiest 0 for the ops without the bulk-copy form) and 128 x 3's grid. The ring first:
// at 4608 rows of 3072, where 128 x 3 leaves the busiest SM fewer rows (35 against 40), the ring still measured
// faster on the H100 (bench/results/h100/quant_grouped_ring.txt, stop 55: SmoothQuant 18.06 against 18.22 us,
// RMSNorm 17.74 against 17.88; in the library 0.996 and 0.995, quant_ab_ring_at_4608.md), as at 4096 rows (15.88
// against 16.84).
enum class GroupedLayoutChoice { kNone, k64x6, k128x3, kRing64x6 };
constexpr GroupedLayoutChoice choose_grouped_layout(int64_t busiest_64x6, int64_t busiest_128x3, int64_t grid_128x3,
                                                    int64_t busiest_ring, int64_t sms) {
  if (prefers_grouped_ring(busiest_64x6, busiest_ring)) return GroupedLayoutChoice::kRing64x6;
  if (prefers_second_grouped_layout(busiest_64x6, busiest_128x3, grid_128x3, sms)) return GroupedLayoutChoice::k128x3;
  return busiest_64x6 > 0 ? GroupedLayoutChoice::k64x6 : GroupedLayoutChoice::kNone;
}

}  // namespace int8dit::quant
