// The register-row quantization kernel's layout of a row over a CTA, for the DiT hidden sizes and the edges.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "quant/row_shape.h"

namespace int8dit::quant {
namespace {

struct Expect {
  int64_t cols;
  int vecs, threads;
};

TEST(QuantRowShape, DiTHiddenSizesGetSixVectorsAThreadWhereTheRowFillsTheCta) {
  const Expect cases[] = {
      {3072, 6, 64},    // Flux: 384 vectors, every slot used
      {1536, 6, 32},    // SD3-medium: one warp
      {1152, 6, 32},    // PixArt, DiT-XL/2: 144 vectors, 3/4 of one warp's slots
      {4608, 6, 96},    // 576 vectors
      {6144, 6, 128},
      {12288, 6, 256},  // Flux's MLP: 1536 vectors, exactly 256 x 6
      {15360, 8, 256},  // Flux's single-stream linear2 input: 1920 vectors, too long for 256 x 6
      {2048, 4, 64},    // 6 would leave 128 of 384 slots empty
      {8, 1, 32},       // one vector
      {16384, 8, 256},  // the longest row the register kernel holds
  };
  for (const Expect& e : cases) {
    const RowLaunchShape s = row_launch_shape(e.cols, true);
    EXPECT_EQ(s.vecs_per_thread, e.vecs) << "cols " << e.cols;
    EXPECT_EQ(s.threads_per_row, e.threads) << "cols " << e.cols;
  }
}

TEST(QuantRowShape, SmoothQuantsPreferenceOfFourVectorsKeepsSixAndEightForLongRows) {
  EXPECT_EQ(row_launch_shape(3072, true, 4).vecs_per_thread, 4);
  EXPECT_EQ(row_launch_shape(3072, true, 4).threads_per_row, 96);
  EXPECT_EQ(row_launch_shape(12288, true, 4).vecs_per_thread, 6);  // 1536 vectors: 256 x 4 cannot hold them
  EXPECT_EQ(row_launch_shape(15360, true, 4).vecs_per_thread, 8);
  EXPECT_EQ(row_launch_shape(1152, true, 4).vecs_per_thread, 2);  // 96 x 2 fills 3/4; 64 x 4 would leave 112 of 256 empty
}

TEST(QuantRowShape, OneWarpRowsTakeTwoWarpsOfFourWhereTheyFillTheSlots) {
  const auto shape = [](int64_t cols, bool vector_ok) {
    const RowLaunchShape s = two_warp_row_launch_shape(cols, vector_ok);
    return std::make_pair(s.vecs_per_thread, s.threads_per_row);
  };
  EXPECT_EQ(shape(1536, true), std::make_pair(4, 64));   // SD3-medium: 192 vectors in 64 x 4 slots
  EXPECT_EQ(shape(1152, true), std::make_pair(6, 32));   // DiT-XL/2: 4 vectors would fill 144 of 256
  EXPECT_EQ(shape(1280, true), std::make_pair(6, 32));   // 160 of 256
  EXPECT_EQ(shape(3072, true), std::make_pair(6, 64));   // rows past one warp as before
  EXPECT_EQ(shape(12288, true), std::make_pair(6, 256));
  EXPECT_EQ(shape(1000, false), std::make_pair(0, 256));  // unaligned: streams
  // Everywhere else it is row_launch_shape's; where it is not, two warps of 4 whose leading slots all
  // hold a vector of the row (what the kernel assumes: full_vector_slots).
  for (int64_t cols = 8; cols <= 16384; cols += 8) {
    const RowLaunchShape s = two_warp_row_launch_shape(cols, true), plain = row_launch_shape(cols, true);
    if (s.vecs_per_thread != plain.vecs_per_thread || s.threads_per_row != plain.threads_per_row) {
      ASSERT_EQ(plain.threads_per_row, 32) << cols;
      ASSERT_EQ(s.vecs_per_thread, 4) << cols;
      ASSERT_EQ(s.threads_per_row, 64) << cols;
      ASSERT_LE(static_cast<int64_t>(full_vector_slots(4)) * s.threads_per_row, cols / kVecElems) << cols;
    }
  }
}

TEST(QuantRowShape, EveryVectorRowFitsAndThreadsAreWholeWarps) {
  for (int64_t cols = 8; cols <= kMaxRowThreads * kMaxVecsPerThread * kVecElems; cols += 8)
  for (const int preferred : {4, 6}) {
    const RowLaunchShape s = row_launch_shape(cols, true, preferred);
    ASSERT_GT(s.vecs_per_thread, 0) << "cols " << cols;
    EXPECT_LE(s.vecs_per_thread, kMaxVecsPerThread);
    EXPECT_EQ(s.threads_per_row % 32, 0);
    EXPECT_LE(s.threads_per_row, kMaxRowThreads);
    EXPECT_GE(static_cast<int64_t>(s.threads_per_row) * s.vecs_per_thread * kVecElems, cols) << "cols " << cols;
    // No whole warp without a vector.
    EXPECT_LT(static_cast<int64_t>(s.threads_per_row - 32) * s.vecs_per_thread * kVecElems, cols) << "cols " << cols;
  }
}

TEST(QuantRowShape, TheLeadingSlotsOfEveryThreadAreFull) {
  for (int64_t cols = 8; cols <= kMaxRowThreads * kMaxVecsPerThread * kVecElems; cols += 8)
  for (const int preferred : {4, 6}) {
    const RowLaunchShape s = row_launch_shape(cols, true, preferred);
    const int64_t nvec = cols / kVecElems;
    // Slot i of the last thread is vector (threads - 1) + i * threads.
    for (int i = 0; i < full_vector_slots(s.vecs_per_thread); ++i) {
      ASSERT_LT(static_cast<int64_t>(s.threads_per_row - 1) + static_cast<int64_t>(i) * s.threads_per_row, nvec)
          << "cols " << cols << ": slot " << i << " of " << s.vecs_per_thread << " is not full";
    }
  }
}

TEST(QuantRowShape, TheWideSmoothQuantKernelHoldsEveryEightVectorRow) {
  // As the layout probe timed it: 15360 columns in 480 threads x 4 vectors, every slot used.
  EXPECT_EQ(wide_row_threads(15360), 480);
  EXPECT_EQ(wide_row_threads(16384), kWideRowThreads);  // the longest row: 512 x 4
  EXPECT_EQ(wide_row_threads(12296), 416);              // the shortest 8-vector row: 1537 vectors
  EXPECT_EQ(wide_row_threads(16392), 0);                // too long
  EXPECT_EQ(wide_row_threads(15364), 0);                // not whole vectors
  int wide_rows = 0;
  for (int64_t cols = 8; cols <= kMaxRowThreads * kMaxVecsPerThread * kVecElems; cols += 8) {
    // Every row the launcher gives 8 vectors a thread with a SmoothQuant divisor.
    if (row_launch_shape(cols, true, 4).vecs_per_thread != 8) continue;
    ++wide_rows;
    const int threads = wide_row_threads(cols);
    const int64_t nvec = cols / kVecElems;
    ASSERT_GT(threads, kMaxRowThreads) << "cols " << cols;
    EXPECT_LE(threads, kWideRowThreads) << "cols " << cols;
    EXPECT_EQ(threads % 32, 0) << "cols " << cols;
    EXPECT_GE(static_cast<int64_t>(threads) * kWideVecsPerThread, nvec) << "cols " << cols;
    EXPECT_LT(static_cast<int64_t>(threads - 32) * kWideVecsPerThread, nvec) << "cols " << cols;  // no empty warp
    // The leading slots of the last thread hold a vector (the kernel tests only the others).
    for (int i = 0; i < full_vector_slots(kWideVecsPerThread); ++i)
      ASSERT_LT(static_cast<int64_t>(threads - 1) + static_cast<int64_t>(i) * threads, nvec) << "cols " << cols << ": slot " << i;
  }
  EXPECT_EQ(wide_rows, (16384 - 12288) / 8);  // 12296..16384
}

TEST(QuantRowShape, TheWideTransformKernelTakesTheRowsTheOthersCannotHoldUpTo24576) {
  EXPECT_EQ(wide_transform_row_threads(18432), 384);  // FLUX.2-dev's gated MLP: 2304 vectors, 384 x 6
  EXPECT_EQ(wide_transform_row_threads(24576), kWideRowThreads);
  EXPECT_EQ(wide_transform_row_threads(16392), 352);  // the shortest: 2049 vectors
  EXPECT_EQ(wide_transform_row_threads(16384), 0);    // the 256-thread kernels hold it
  EXPECT_EQ(wide_transform_row_threads(10240), 0);
  EXPECT_EQ(wide_transform_row_threads(24584), 0);    // too long
  EXPECT_EQ(wide_transform_row_threads(18436), 0);    // not whole vectors
  int rows = 0;
  for (int64_t cols = 8; cols <= 32768; cols += 8) {
    const int threads = wide_transform_row_threads(cols);
    // Exactly the vector rows the 256-thread kernels leave, up to the wide kernel's capacity.
    const bool left = row_launch_shape(cols, true).vecs_per_thread == 0 && row_launch_shape(cols, true, 4).vecs_per_thread == 0;
    ASSERT_EQ(threads > 0, left && cols <= 24576) << "cols " << cols;
    if (threads == 0) continue;
    ++rows;
    const int64_t nvec = cols / kVecElems;
    EXPECT_EQ(threads % 32, 0) << "cols " << cols;
    EXPECT_GE(static_cast<int64_t>(threads) * kWideTransformVecsPerThread, nvec) << "cols " << cols;
    EXPECT_LT(static_cast<int64_t>(threads - 32) * kWideTransformVecsPerThread, nvec) << "cols " << cols;
    for (int i = 0; i < full_vector_slots(kWideTransformVecsPerThread); ++i)
      ASSERT_LT(static_cast<int64_t>(threads - 1) + static_cast<int64_t>(i) * threads, nvec) << "cols " << cols << ": slot " << i;
  }
  EXPECT_EQ(rows, (24576 - 16384) / 8);
}

TEST(QuantRowShape, SmoothQuantsPlainRowsTakeTwoOrThreeVectorsNearestTo128Threads) {
  const Expect cases[] = {
      {3072, 3, 128},  // Flux: 384 vectors, 128 x 3 (2 would take 192 threads)
      {1536, 2, 96},   // SD3-medium: 96 x 2 is nearer 128 than 64 x 3
      {1152, 2, 96},   // PixArt, DiT-XL/2: 64 x 3 measured slower
      {4608, 3, 192},  // 2 vectors would take 288 threads
      {6144, 3, 256},  // the longest row it takes
      {2048, 2, 128},
  };
  for (const Expect& e : cases) {
    const RowLaunchShape s = smooth_row_shape(e.cols);
    EXPECT_EQ(s.vecs_per_thread, e.vecs) << "cols " << e.cols;
    EXPECT_EQ(s.threads_per_row, e.threads) << "cols " << e.cols;
  }
  EXPECT_EQ(smooth_row_shape(6152).vecs_per_thread, 0);   // 769 vectors: 257 threads of 3
  EXPECT_EQ(smooth_row_shape(12288).vecs_per_thread, 0);  // the long rows keep their kernels
  EXPECT_EQ(smooth_row_shape(3076).vecs_per_thread, 0);   // not whole vectors
  EXPECT_EQ(smooth_row_shape(8).vecs_per_thread, 0);      // one vector: a warp's leading slot would be empty
}

TEST(QuantRowShape, EverySmoothQuantRowItTakesFitsWithItsLeadingSlotsFull) {
  int taken = 0;
  for (int64_t cols = 8; cols <= 8192; cols += 8) {
    const RowLaunchShape s = smooth_row_shape(cols);
    if (s.vecs_per_thread == 0) continue;
    ++taken;
    const int64_t nvec = cols / kVecElems;
    ASSERT_TRUE(s.vecs_per_thread == 2 || s.vecs_per_thread == 3) << "cols " << cols;
    EXPECT_EQ(s.threads_per_row % 32, 0) << "cols " << cols;
    EXPECT_LE(s.threads_per_row, kMaxRowThreads) << "cols " << cols;
    EXPECT_GE(static_cast<int64_t>(s.threads_per_row) * s.vecs_per_thread, nvec) << "cols " << cols;
    EXPECT_LT(static_cast<int64_t>(s.threads_per_row - 32) * s.vecs_per_thread, nvec) << "cols " << cols;  // no empty warp
    for (int i = 0; i < full_vector_slots(s.vecs_per_thread); ++i)
      ASSERT_LT(static_cast<int64_t>(s.threads_per_row - 1) + static_cast<int64_t>(i) * s.threads_per_row, nvec)
          << "cols " << cols << ": slot " << i;
  }
  // Every row of 256..6144 columns: below 32 vectors a warp's leading slot would be empty.
  EXPECT_EQ(taken, (6144 - 256) / 8 + 1);
  EXPECT_EQ(smooth_row_shape(256).threads_per_row, 32);  // 32 vectors: one warp of 2, its first slot full
  EXPECT_EQ(smooth_row_shape(248).vecs_per_thread, 0);
}

TEST(QuantRowShape, UnalignedOrTooLongRowsStream) {
  EXPECT_EQ(row_launch_shape(3072, false).vecs_per_thread, 0);
  EXPECT_EQ(row_launch_shape(3072, false).threads_per_row, kStreamThreads);
  EXPECT_EQ(row_launch_shape(kMaxRowThreads * kMaxVecsPerThread * kVecElems + 8, true).vecs_per_thread, 0);
}

// The grouped kernel (row_grouped.cuh) takes exactly the rows laid over 32 or 64 threads x 6 vectors,
// and every such row keeps each thread's leading full_vector_slots() full (what the kernel assumes).
TEST(QuantRowShape, GroupedRowsAreTheSixVectorRowsOfOneOrTwoWarps) {
  EXPECT_EQ(grouped_row_threads(3072, true), 64);   // Flux
  EXPECT_EQ(grouped_row_threads(1536, true), 32);   // SD3-medium
  EXPECT_EQ(grouped_row_threads(1152, true), 32);   // PixArt, DiT-XL/2
  EXPECT_EQ(grouped_row_threads(2304, true), 64);
  EXPECT_EQ(grouped_row_threads(2048, true), 0);    // 64 x 4
  EXPECT_EQ(grouped_row_threads(4608, true), 0);    // 96 x 6
  EXPECT_EQ(grouped_row_threads(3072, false), 0);   // not whole aligned vectors: the streaming kernel
  int taken = 0;
  for (int64_t cols = 8; cols <= 16384; cols += 8) {
    const int threads = grouped_row_threads(cols, true);
    const RowLaunchShape s = row_launch_shape(cols, true);
    const bool six_in_one_or_two_warps = s.vecs_per_thread == 6 && (s.threads_per_row == 32 || s.threads_per_row == 64);
    ASSERT_EQ(threads != 0, six_in_one_or_two_warps) << cols;
    if (threads == 0) continue;
    ++taken;
    const int64_t nvec = cols / kVecElems;
    EXPECT_EQ(threads, s.threads_per_row) << cols;
    EXPECT_LE(nvec, int64_t{threads} * kGroupedVecsPerThread) << cols;
    EXPECT_LE(int64_t{threads} * full_vector_slots(kGroupedVecsPerThread), nvec) << cols;
  }
  EXPECT_EQ(taken, (1536 - 1152) / 8 + 1 + (3072 - 2304) / 8 + 1);
}

TEST(QuantRowShape, GroupedGridSplitsTheResidentCtasOverTheBatchElements) {
  // One part: the fewest CTAs that take the rows in as many rounds as every resident CTA would (4096
  // rows of 264 x 4 groups: 4 rounds, so 256 CTAs of 4 rows a group; 4608: 5 rounds, 231 CTAs), or one
  // a `groups` rows where rows are few.
  EXPECT_EQ(grouped_ctas_per_part(4096, 4096, 264, 4), 256);
  EXPECT_EQ(grouped_ctas_per_part(4608, 4608, 264, 4), 231);
  EXPECT_EQ(grouped_ctas_per_part(4224, 4224, 264, 4), 264);  // 4 rows a group exactly
  EXPECT_EQ(grouped_ctas_per_part(10, 10, 264, 4), 3);
  EXPECT_EQ(grouped_ctas_per_part(1, 1, 264, 8), 1);
  // Classifier-free guidance's two batch elements, three, eight.
  EXPECT_EQ(grouped_ctas_per_part(8192, 4096, 264, 4), 128);
  EXPECT_EQ(grouped_ctas_per_part(3000, 1000, 264, 8), 63);
  EXPECT_EQ(grouped_ctas_per_part(8 * 1024, 1024, 264, 4), 32);
  // Small parts: a CTA a `groups` rows of each.
  EXPECT_EQ(grouped_ctas_per_part(2 * 6, 6, 264, 4), 2);
  // Declined: more parts than resident CTAs, or a split that leaves over a tenth of them idle
  // (100 parts of 264 CTAs: 200 used).
  EXPECT_EQ(grouped_ctas_per_part(300 * 4, 4, 264, 4), 0);
  EXPECT_EQ(grouped_ctas_per_part(100 * 64, 64, 264, 4), 0);
  EXPECT_EQ(grouped_ctas_per_part(0, 1, 264, 4), 0);
  EXPECT_EQ(grouped_ctas_per_part(8, 0, 264, 4), 0);
  EXPECT_EQ(grouped_ctas_per_part(8, 8, 0, 4), 0);
}

// The two layouts of the 64-thread grouped rows: 64 x 6 holds every such row, 128 x 3 the rows of
// 2312..3072 columns (at 2304 its last warp would hold no vector).
TEST(QuantRowShape, GroupedLayoutsHoldTheirRows) {
  int wide = 0;
  for (int64_t cols = 8; cols <= 16384; cols += 8) {
    if (grouped_row_threads(cols, true) != 64) continue;
    EXPECT_TRUE(grouped_layout_fits(cols, kGrouped64x6)) << cols;
    const bool fits = grouped_layout_fits(cols, kGrouped128x3);
    EXPECT_EQ(fits, cols > 2304) << cols;
    wide += fits;
  }
  EXPECT_EQ(wide, (3072 - 2312) / 8 + 1);
  EXPECT_FALSE(grouped_layout_fits(3080, kGrouped128x3));
  EXPECT_FALSE(grouped_layout_fits(3076, kGrouped128x3));  // not whole vectors
}

// INT8DIT_QUANT_GROUP_THREADS=double's layouts: twice the threads a row of the two-warp and one-warp rows they replace
// (64 x 6 in 4 groups and 32 x 6 in 8, two 256-thread CTAs an SM), the same rows an SM (8 and 16) in two 512-thread
// CTAs, and they hold the rows those take but the one whose last warp would hold no vector (64 x 6 takes 2304..3072
// columns, 128 x 3 2312..3072; 32 x 6 takes 1152..1536, all of which 64 x 3 holds).
TEST(QuantRowShape, TheDoubledGroupedLayoutsHoldTheRowsOfTheLayoutsTheyDoubleInTwoCtasAnSm) {
  for (const GroupedLayout d : {kGroupedDoubled128x3, kGroupedDoubled64x3}) {
    EXPECT_EQ(d.group_threads * d.groups * kGroupedDoubledMinCtas, 1024);
    EXPECT_EQ(d.vecs * 2, kGroupedVecsPerThread);
    EXPECT_TRUE(is_doubled_grouped_layout(d.group_threads, d.vecs, d.groups));
  }
  EXPECT_EQ(kGroupedDoubled128x3.groups * kGroupedDoubledMinCtas, kGrouped64x6.groups * 2);  // 8 rows an SM
  EXPECT_EQ(kGroupedDoubled64x3.groups * kGroupedDoubledMinCtas, kGroupedCtaThreads / 32 * 2);  // 16
  EXPECT_FALSE(is_doubled_grouped_layout(kGrouped64x6.group_threads, kGrouped64x6.vecs, kGrouped64x6.groups));
  EXPECT_FALSE(is_doubled_grouped_layout(kGrouped128x3.group_threads, kGrouped128x3.vecs, kGrouped128x3.groups));
  int wide = 0, narrow = 0;
  for (int64_t cols = 8; cols <= 16384; cols += 8) {
    const int threads = grouped_row_threads(cols, true);
    const bool wide_fits = grouped_layout_fits(cols, kGroupedDoubled128x3);
    const bool narrow_fits = grouped_layout_fits(cols, kGroupedDoubled64x3);
    if (threads == 64) EXPECT_EQ(wide_fits, cols > 2304) << cols;
    if (threads == 32) EXPECT_TRUE(narrow_fits) << cols;
    wide += threads == 64 && wide_fits, narrow += threads == 32 && narrow_fits;
  }
  EXPECT_EQ(wide, (3072 - 2312) / 8 + 1);
  EXPECT_EQ(narrow, (1536 - 1152) / 8 + 1);
}

// The busiest SM's rows, which pick between the layouts, on the H100's 132 SMs (64 x 6: 2 CTAs of 4
// groups an SM, 264 resident; 128 x 3: one CTA of 7 groups, 132): what the probe measured
// (quant_grouped_probe_e1f3ae5.txt) is that 128 x 3 is faster at 4608 rows and slower at 4096 and 6144.
TEST(QuantRowShape, GroupedLayoutTakesTheFewestRowsOnTheBusiestSm) {
  auto rows64 = [](int64_t rows, int64_t part) { return grouped_busiest_sm_rows(rows, part, 264, 132, 4); };
  auto rows128 = [](int64_t rows, int64_t part) { return grouped_busiest_sm_rows(rows, part, 132, 132, 7); };
  EXPECT_EQ(rows64(4096, 4096), 32);  // 256 CTAs of 4 rows a group: 124 SMs hold two
  EXPECT_EQ(rows128(4096, 4096), 35);
  EXPECT_EQ(rows64(4608, 4608), 40);  // 231 CTAs of 5 rows a group
  EXPECT_EQ(rows128(4608, 4608), 35);
  EXPECT_EQ(rows64(6144, 6144), 48);
  EXPECT_EQ(rows128(6144, 6144), 49);
  // Two batch elements of 2304 rows: each part 116 or 66 CTAs, 5 rows a group.
  EXPECT_EQ(rows64(4608, 2304), 40);
  EXPECT_EQ(rows128(4608, 2304), 35);
  // Few rows: one CTA, one row a group.
  EXPECT_EQ(rows64(3, 3), 4);
  EXPECT_EQ(rows128(3, 3), 7);
  // Where the kernel does not take the call, or no SMs are known.
  EXPECT_EQ(grouped_busiest_sm_rows(300 * 4, 4, 264, 132, 4), 0);
  EXPECT_EQ(grouped_busiest_sm_rows(4096, 4096, 264, 0, 4), 0);
  // The choice: 128 x 3 at 4608 rows (its grid 132 CTAs) and at 1840 (132: 14 rows against 16), not at
  // 4096 or 6144, nor at 1100 rows (16 against 14, but 79 CTAs: 53 SMs idle), nor where it declines.
  auto second = [&](int64_t rows) {
    const int64_t grid = grouped_ctas_per_part(rows, rows, 132, 7);
    return prefers_second_grouped_layout(rows64(rows, rows), rows128(rows, rows), grid, 132);
  };
  EXPECT_TRUE(second(4608));
  EXPECT_TRUE(second(1840));
  EXPECT_FALSE(second(4096));
  EXPECT_FALSE(second(6144));
  EXPECT_FALSE(second(1100));
  EXPECT_EQ(grouped_ctas_per_part(1100, 1100, 132, 7), 79);
  EXPECT_FALSE(prefers_second_grouped_layout(40, 0, 132, 132));
  EXPECT_TRUE(prefers_second_grouped_layout(0, 35, 132, 132));
}

// SmoothQuant's ring of 8 groups a CTA (one CTA an SM, 132 resident) against 64 x 6's 4 (264 resident): taken
// where its busiest SM has no more rows, as at 4096 and 6144 rows (and 2000: the GPU test's case), not with
// few rows, where 8 groups a CTA would leave SMs idle, nor where either layout declines the call.
TEST(QuantRowShape, SmoothQuantTakesTheRingWhereTheBusiestSmHasNoMoreRows) {
  auto rows4 = [](int64_t rows) { return grouped_busiest_sm_rows(rows, rows, 264, 132, 4); };
  auto rows8 = [](int64_t rows) { return grouped_busiest_sm_rows(rows, rows, 132, 132, 8); };
  EXPECT_EQ(rows8(4096), 32);
  EXPECT_TRUE(prefers_grouped_ring(rows4(4096), rows8(4096)));
  EXPECT_EQ(rows8(6144), 48);
  EXPECT_TRUE(prefers_grouped_ring(rows4(6144), rows8(6144)));
  EXPECT_EQ(rows4(2000), 16);
  EXPECT_EQ(rows8(2000), 16);
  EXPECT_TRUE(prefers_grouped_ring(rows4(2000), rows8(2000)));
  EXPECT_EQ(rows4(512), 4);  // 128 CTAs of one row a group, against 64 CTAs of 8
  EXPECT_EQ(rows8(512), 8);
  EXPECT_FALSE(prefers_grouped_ring(rows4(512), rows8(512)));
  EXPECT_FALSE(prefers_grouped_ring(rows4(4096), 0));
  EXPECT_FALSE(prefers_grouped_ring(0, rows8(4096)));
}

// The launcher's choice among the three layouts of 64-thread rows (132 SMs: 4 groups a CTA 264 resident, 128 x 3
// and the ring 132): the ops with the ring take it at 4096, 4608 and 6144 rows, 4608 included although 128 x 3
// leaves its busiest SM fewer rows; the others take 128 x 3 at 4608 rows and 64 x 6 at 4096; few rows keep 64 x 6.
TEST(QuantRowShape, GroupedLayoutChoiceTakesTheRingFirstWhereTheOpHasIt) {
  auto rows4 = [](int64_t rows) { return grouped_busiest_sm_rows(rows, rows, 264, 132, 4); };
  auto rows7 = [](int64_t rows) { return grouped_busiest_sm_rows(rows, rows, 132, 132, 7); };
  auto rows8 = [](int64_t rows) { return grouped_busiest_sm_rows(rows, rows, 132, 132, 8); };
  auto grid7 = [](int64_t rows) { return grouped_ctas_per_part(rows, rows, 132, 7); };
  auto choice = [&](int64_t rows, bool ring) {
    return choose_grouped_layout(rows4(rows), rows7(rows), grid7(rows), ring ? rows8(rows) : 0, 132);
  };
  using C = GroupedLayoutChoice;
  EXPECT_EQ(rows7(4608), 35);
  EXPECT_EQ(rows8(4608), 40);
  EXPECT_EQ(rows4(4608), 40);
  for (const int64_t rows : {2000, 4096, 4608, 6144}) EXPECT_EQ(choice(rows, true), C::kRing64x6) << rows;
  EXPECT_EQ(choice(4608, false), C::k128x3);
  EXPECT_EQ(choice(4096, false), C::k64x6);
  EXPECT_EQ(choice(512, true), C::k64x6);
  EXPECT_EQ(choose_grouped_layout(0, 0, 0, 0, 132), C::kNone);
  EXPECT_EQ(choose_grouped_layout(0, 35, 132, 0, 132), C::k128x3);
}

// Over the grid the launcher gives, the groups' rows (grouped_rows_of: the kernel's own arithmetic)
// cover every row exactly once, each inside the part whose channel values its CTA caches.
TEST(QuantRowShape, GroupedRowsCoverEveryRowOnceInsideItsPart) {
  for (const int groups : {4, 7, 8}) {
    for (const int64_t resident : {1, 7, 132, 264, 528}) {
      for (const int64_t tokens : {1, 3, 64, 333, 1024, 4096}) {
        for (const int64_t batches : {1, 2, 3, 8}) {
          const int64_t rows = tokens * batches;
          const int64_t per_part = grouped_ctas_per_part(rows, tokens, resident, groups);
          if (per_part == 0) continue;
          const GroupedRows parts{tokens, static_cast<int>(per_part)};
          const int64_t grid = batches * per_part;
          ASSERT_LE(grid, resident);
          std::vector<int> seen(static_cast<size_t>(rows), 0);
          for (int cta = 0; cta < grid; ++cta) {
            for (int g = 0; g < groups; ++g) {
              const GroupedRowRange r = grouped_rows_of(cta, g, groups, rows, parts);
              ASSERT_EQ(r.part_first % tokens, 0);
              ASSERT_EQ(r.end, r.part_first + tokens);
              if (g == 0) ASSERT_LT(r.first, r.end) << "every CTA has a row";
              for (int64_t row = r.first; row < r.end; row += r.step) ++seen[static_cast<size_t>(row)];
            }
          }
          // Balanced: the groups' row counts differ by at most one, and fewer CTAs would need another round.
          int64_t fewest = rows, most = 0;
          for (int cta = 0; cta < grid; ++cta) {
            for (int g = 0; g < groups; ++g) {
              const GroupedRowRange r = grouped_rows_of(cta, g, groups, rows, parts);
              const int64_t n = r.first < r.end ? (r.end - r.first + r.step - 1) / r.step : 0;
              fewest = std::min(fewest, n), most = std::max(most, n);
            }
          }
          ASSERT_LE(most - fewest, 1) << batches << " x " << tokens << ", " << resident << " CTAs, " << groups << " groups";
          if (per_part > 1) ASSERT_GT(tokens, (per_part - 1) * groups * most) << "one CTA fewer would do";
          for (int64_t row = 0; row < rows; ++row)
            ASSERT_EQ(seen[static_cast<size_t>(row)], 1) << "row " << row << " of " << batches << " x " << tokens << ", "
                                                         << resident << " CTAs, " << groups << " groups";
        }
      }
    }
  }
}

}  // namespace
}  // namespace int8dit::quant

// The contiguous blocks of persistent CTAs (row_kernels.cuh: WithRowBlocks) tile the rows in order,
// each CTA at least one row where the grid is no larger than the rows (the launcher's rule), the
// blocks differing by at most one row.
TEST(QuantRowShape, ContiguousRowBlocksTileTheRowsInOrder) {
  using int8dit::quant::contiguous_block_first;
  using int8dit::quant::contiguous_block_rows;
  using int8dit::quant::contiguous_rows;
  for (const int64_t rows : {1, 2, 7, 792, 793, 3000, 4096, 8192, 100003}) {
    for (const int64_t ctas : {1, 2, 3, 131, 792, 1584, 4096}) {
      if (ctas > rows) continue;
      const auto blocks = contiguous_rows(rows, ctas);
      int64_t next = 0, fewest = rows, most = 0;
      for (int64_t b = 0; b < ctas; ++b) {
        ASSERT_EQ(contiguous_block_first(b, blocks), next) << rows << " rows, " << ctas << " CTAs, CTA " << b;
        const int64_t n = contiguous_block_rows(b, blocks);
        fewest = std::min(fewest, n), most = std::max(most, n);
        next += n;
      }
      EXPECT_EQ(next, rows) << rows << " rows, " << ctas << " CTAs";
      EXPECT_GE(fewest, 1) << rows << " rows, " << ctas << " CTAs";
      EXPECT_LE(most - fewest, 1) << rows << " rows, " << ctas << " CTAs";
    }
  }
}
