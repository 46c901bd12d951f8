// The environment switches between the quantization kernels' row paths: what they take and how a
// wrong value is reported (the entry points return that message before launching anything).
#include <gtest/gtest.h>

#include "quant/row_path.h"

namespace int8dit::quant {
namespace {

TEST(QuantRowPath, DefaultsToAutoWithTwoStages) {
  const RowPathConfig c = parse_row_path(nullptr, nullptr);
  EXPECT_EQ(c.path, RowPath::kAuto);
  EXPECT_EQ(c.ring_stages, 2);
  EXPECT_TRUE(c.error.empty());
  EXPECT_EQ(parse_row_path("", "").path, RowPath::kAuto);
  EXPECT_EQ(parse_row_path("auto", nullptr).path, RowPath::kAuto);
}

TEST(QuantRowPath, TakesTheRegisterPathAndStageCounts) {
  EXPECT_EQ(parse_row_path("registers", nullptr).path, RowPath::kRegisters);
  EXPECT_EQ(parse_row_path("bulk", nullptr).path, RowPath::kBulkRing);
  EXPECT_EQ(parse_row_path("bulk", "3").ring_stages, 3);
  EXPECT_EQ(parse_row_path(nullptr, "4").ring_stages, 4);
}

TEST(QuantRowPath, TheGatedResidualRowsAreBulkCopiedUnlessStagedOrRegistersAreAsked) {
  EXPECT_EQ(parse_row_path(nullptr, nullptr, nullptr).grouped_transform, GroupedTransformRows::kBulk);
  EXPECT_EQ(parse_row_path(nullptr, nullptr, "").grouped_transform, GroupedTransformRows::kBulk);
  EXPECT_EQ(parse_row_path(nullptr, nullptr, "bulk").grouped_transform, GroupedTransformRows::kBulk);
  const RowPathConfig staged = parse_row_path("auto", "2", "staged");
  EXPECT_EQ(staged.grouped_transform, GroupedTransformRows::kStaged);
  EXPECT_TRUE(staged.error.empty()) << staged.error;
  const RowPathConfig registers = parse_row_path("auto", "2", "registers");
  EXPECT_EQ(registers.grouped_transform, GroupedTransformRows::kRegisters);
  EXPECT_EQ(registers.path, RowPath::kAuto);
  EXPECT_TRUE(registers.error.empty()) << registers.error;
  const RowPathConfig bad = parse_row_path(nullptr, nullptr, "shared");
  EXPECT_NE(bad.error.find("INT8DIT_QUANT_GROUPED=shared"), std::string::npos) << bad.error;
  for (const char* choice : {"'registers'", "'staged'", "'bulk'"})
    EXPECT_NE(bad.error.find(choice), std::string::npos) << bad.error;
}

TEST(QuantRowPath, LayerNormsGroupedRowsKeepTheLibrarysLayoutsUnlessDoubleIsAsked) {
  EXPECT_EQ(parse_row_path(nullptr, nullptr, nullptr, nullptr).group_threads, GroupThreads::kAuto);
  EXPECT_EQ(parse_row_path(nullptr, nullptr, nullptr, "").group_threads, GroupThreads::kAuto);
  EXPECT_EQ(parse_row_path(nullptr, nullptr, nullptr, "auto").group_threads, GroupThreads::kAuto);
  const RowPathConfig doubled = parse_row_path("auto", "2", "bulk", "double");
  EXPECT_EQ(doubled.group_threads, GroupThreads::kDouble);
  EXPECT_EQ(doubled.path, RowPath::kAuto);
  EXPECT_EQ(doubled.grouped_transform, GroupedTransformRows::kBulk);
  EXPECT_TRUE(doubled.error.empty()) << doubled.error;
  for (const char* bad : {"2", "twice", "DOUBLE", "double "}) {
    const RowPathConfig c = parse_row_path(nullptr, nullptr, nullptr, bad);
    EXPECT_NE(c.error.find(std::string("INT8DIT_QUANT_GROUP_THREADS=") + bad), std::string::npos) << c.error;
    for (const char* choice : {"'auto'", "'double'"}) EXPECT_NE(c.error.find(choice), std::string::npos) << c.error;
  }
}

TEST(QuantRowPath, RejectsWhatItDoesNotTakeWithTheVariableAndTheChoices) {
  const RowPathConfig path = parse_row_path("regs", nullptr);
  EXPECT_NE(path.error.find("INT8DIT_QUANT_ROWS=regs"), std::string::npos) << path.error;
  EXPECT_NE(path.error.find("'registers'"), std::string::npos) << path.error;
  for (const char* bad : {"1", "5", "3x", "-3", "three"}) {
    const RowPathConfig c = parse_row_path(nullptr, bad);
    EXPECT_NE(c.error.find(std::string("INT8DIT_QUANT_RING_STAGES=") + bad), std::string::npos) << c.error;
  }
}

TEST(QuantRowPath, AutoTakesTheRingOnlyWhereItMeasuredFaster) {
  // 15360 columns (8 vectors a thread) with a SmoothQuant divisor: the ring.
  EXPECT_TRUE(takes_bulk_ring(RowPath::kAuto, 8, true));
  // Without one (LayerNorm and RMSNorm as much as quantize_rows and GELU: the H100 timed the norms' register
  // kernel 3-8% faster there), and every narrower row: the register kernel.
  EXPECT_FALSE(takes_bulk_ring(RowPath::kAuto, 8, false));
  for (const int vecs : {1, 2, 4, 6}) {
    EXPECT_FALSE(takes_bulk_ring(RowPath::kAuto, vecs, true)) << vecs;
    EXPECT_TRUE(takes_bulk_ring(RowPath::kBulkRing, vecs, false)) << vecs;
    EXPECT_FALSE(takes_bulk_ring(RowPath::kRegisters, vecs, true)) << vecs;
  }
  EXPECT_FALSE(takes_bulk_ring(RowPath::kRegisters, 8, true));
}

TEST(QuantRowPath, AutoTakesTheWideKernelOnlyForSmoothQuantsQuantizeRowsAtEightVectors) {
  // quantize_rows with a divisor at 15360 columns (8 vectors a thread): the wide kernel, measured
  // faster than the ring (bench/results/h200/quant_layout_4608x15360_wide.txt).
  EXPECT_TRUE(takes_wide_reciprocals(RowPath::kAuto, 8, true, true));
  // Without a divisor, for the fused ops (their own op before the quantization), or narrower rows:
  // not the wide kernel.
  EXPECT_FALSE(takes_wide_reciprocals(RowPath::kAuto, 8, true, false));
  EXPECT_FALSE(takes_wide_reciprocals(RowPath::kAuto, 8, false, true));
  for (const int vecs : {1, 2, 4, 6}) EXPECT_FALSE(takes_wide_reciprocals(RowPath::kAuto, vecs, true, true)) << vecs;
  // The forced paths keep their kernels: the ring, or the 256-thread register kernel.
  for (const int vecs : {1, 2, 4, 6, 8}) {
    EXPECT_FALSE(takes_wide_reciprocals(RowPath::kBulkRing, vecs, true, true)) << vecs;
    EXPECT_FALSE(takes_wide_reciprocals(RowPath::kRegisters, vecs, true, true)) << vecs;
  }
  EXPECT_TRUE(takes_bulk_ring(RowPath::kBulkRing, 8, true));
  EXPECT_FALSE(takes_bulk_ring(RowPath::kRegisters, 8, true));
  // The fused ops at 8 vectors: the ring with a divisor, else not.
  EXPECT_TRUE(takes_bulk_ring(RowPath::kAuto, 8, true));
  EXPECT_FALSE(takes_bulk_ring(RowPath::kAuto, 8, false));
}

// The carveout cap of the cached row kernels (row_path.h: caps_carveout_for_l1), with the figures of
// the H200 (1 KB reserved a CTA).
TEST(QuantRowPath, CapsTheCarveoutOnlyWhereTheCtasWouldTakeMoreThanItOnHopper) {
  constexpr int64_t kLayerNorm64x6 = 64 * 6 * 64, kRmsNorm64x6 = 64 * 6 * 32, kReserved = 1024;  // bytes a CTA
  EXPECT_TRUE(caps_carveout_for_l1(9, 8, kLayerNorm64x6, kReserved));   // 8 x 25 KB = 200 KB
  EXPECT_TRUE(caps_carveout_for_l1(9, 7, kLayerNorm64x6, kReserved));   // 175 KB
  EXPECT_FALSE(caps_carveout_for_l1(9, 6, kLayerNorm64x6, kReserved));  // 150 KB: the driver's choice fits
  EXPECT_FALSE(caps_carveout_for_l1(9, 8, kRmsNorm64x6, kReserved));    // 104 KB
  EXPECT_FALSE(caps_carveout_for_l1(8, 8, kLayerNorm64x6, kReserved));  // not measured before Hopper
  EXPECT_FALSE(caps_carveout_for_l1(10, 8, kLayerNorm64x6, kReserved));
  EXPECT_FALSE(caps_carveout_for_l1(9, 0, kLayerNorm64x6, kReserved));
}

TEST(QuantRowPath, TheCarveoutHintLandsOnTheKeptCarveoutNotTheNextOneUp) {
  // The driver rounds the hint up to the next carveout it has (Hopper: ..., 132, 164, 196, 228 KB).
  const double hinted_kb = kept_l1_carveout_percent() / 100.0 * kHopperMaxCarveoutKb;
  EXPECT_LE(hinted_kb, kKeptL1CarveoutKb);
  EXPECT_GT(hinted_kb, 132);
}

TEST(QuantRowPath, OnlyOneWarpGridsThatSharedMemorySizesLaunchInPlainStreamOrder) {
  EXPECT_FALSE(launches_programmatically(32, /*smem_sized_grid=*/true));  // LayerNorm's cached 32 x 6 rows
  EXPECT_TRUE(launches_programmatically(32, false));   // registers set the count: the gated residual norm
  EXPECT_TRUE(launches_programmatically(64, true));    // 3072 columns: faster programmatic
  EXPECT_TRUE(launches_programmatically(256, true));
  EXPECT_TRUE(launches_programmatically(128, false));  // e.g. one CTA a row, which the hardware places as room opens
}

}  // namespace
}  // namespace int8dit::quant
