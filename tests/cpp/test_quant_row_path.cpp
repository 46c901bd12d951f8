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
  // 15360 columns (8 vectors a thread) with row statistics or SmoothQuant: the ring.
  EXPECT_TRUE(takes_bulk_ring(RowPath::kAuto, 8, true, false));
  EXPECT_TRUE(takes_bulk_ring(RowPath::kAuto, 8, false, true));
  // Plain quantize_rows and GELU there, and every narrower row: the register kernel.
  EXPECT_FALSE(takes_bulk_ring(RowPath::kAuto, 8, false, false));
  for (const int vecs : {1, 2, 4, 6}) {
    EXPECT_FALSE(takes_bulk_ring(RowPath::kAuto, vecs, true, true)) << vecs;
    EXPECT_TRUE(takes_bulk_ring(RowPath::kBulkRing, vecs, false, false)) << vecs;
    EXPECT_FALSE(takes_bulk_ring(RowPath::kRegisters, vecs, true, true)) << vecs;
  }
  EXPECT_FALSE(takes_bulk_ring(RowPath::kRegisters, 8, true, true));
}

}  // namespace
}  // namespace int8dit::quant
