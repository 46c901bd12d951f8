// The plan of the Hopper GEMM's kernel-start L2 prefetch (src/gemm/sm90/operand_prefetch.h): which
// weight bytes and vectors one launch asks L2 for. Host code only: the prefetch itself is a hint whose
// effect on values is nil, which the GPU test test_gemm_programmatic_launch_gpu checks by replacing
// B, scale_b and bias while a programmatic GEMM waits.
#include <gtest/gtest.h>

#include <cstdint>

#include "gemm/sm90/operand_prefetch.h"

namespace int8dit::detail::sm90 {
namespace {

GemmParams params(int64_t n, int64_t k, int64_t ldb) {
  static const int8_t kWeight[16] = {};
  static const float kScale[1] = {}, kBias[1] = {};
  GemmParams p;
  p.m = 333, p.n = n, p.k = k, p.lda = k, p.ldb = ldb, p.ldd = n;
  p.b = kWeight;
  p.scale_b = kScale, p.scale_b_mode = ScaleMode::kPerCol;
  p.bias = kBias;
  return p;
}

TEST(OperandPrefetch, TakesTheWholeWeightWhenItFitsTheBudget) {
  const GemmParams p = params(1536, 1536, 1536);  // SD3's context projection: 2.4 MB
  const OperandPrefetch f = OperandPrefetch::plan(p, OperandPrefetch::Mode::kAll);
  EXPECT_EQ(f.weight, p.b);
  EXPECT_EQ(f.weight_rows, 1536);
  EXPECT_EQ(f.weight_row_bytes, 1536);
  EXPECT_EQ(f.weight_pitch, 1536);
  EXPECT_EQ(f.channel_vectors[0], p.scale_b);
  EXPECT_EQ(f.channel_vectors[1], p.bias);
  EXPECT_EQ(f.channel_count, 1536);
}

TEST(OperandPrefetch, TakesTheLeadingKBlocksOfEveryRowOfALargeWeight) {
  const GemmParams p = params(12288, 3072, 3200);  // Flux's fc1, in a strided view of its rows
  const OperandPrefetch f = OperandPrefetch::plan(p, OperandPrefetch::Mode::kAll);
  EXPECT_EQ(f.weight_rows, 12288);
  EXPECT_EQ(f.weight_pitch, 3200);
  EXPECT_EQ(f.weight_row_bytes, 682);  // 8 MiB / 12288 rows
}

TEST(OperandPrefetch, RowBytesStayWithinKAndTheBudget) {
  for (int64_t n : {1, 16, 48, 1152, 3072, 4608, 9216, 21504, 65536, 600000}) {
    for (int64_t k : {16, 1152, 3072, 15360}) {
      const OperandPrefetch f = OperandPrefetch::plan(params(n, k, k), OperandPrefetch::Mode::kAll);
      SCOPED_TRACE("n " + std::to_string(n) + ", k " + std::to_string(k));
      EXPECT_GE(f.weight_row_bytes, 0);
      EXPECT_LE(f.weight_row_bytes, k);
      EXPECT_LE(int64_t{f.weight_row_bytes} * n, OperandPrefetch::kWeightBudgetBytes);
    }
  }
}

TEST(OperandPrefetch, SkipsWhatThereIsNoVectorFor) {
  GemmParams p = params(3072, 3072, 3072);
  p.scale_b_mode = ScaleMode::kPerTensor;  // one value, not a vector of N
  p.bias = nullptr;
  const OperandPrefetch f = OperandPrefetch::plan(p, OperandPrefetch::Mode::kAll);
  EXPECT_EQ(f.channel_vectors[0], nullptr);
  EXPECT_EQ(f.channel_vectors[1], nullptr);
  EXPECT_GT(f.weight_row_bytes, 0);
}

TEST(OperandPrefetch, VectorsModeLeavesTheWeight) {
  const GemmParams p = params(3072, 3072, 3072);
  const OperandPrefetch f = OperandPrefetch::plan(p, OperandPrefetch::Mode::kVectors);
  EXPECT_EQ(f.weight_rows, 0);
  EXPECT_EQ(f.weight_row_bytes, 0);
  EXPECT_EQ(f.channel_vectors[0], p.scale_b);
  EXPECT_EQ(f.channel_vectors[1], p.bias);
}

TEST(OperandPrefetch, TheSwitchReadsAsDocumented) {
  EXPECT_EQ(OperandPrefetch::mode_from(nullptr), OperandPrefetch::Mode::kAll);
  EXPECT_EQ(OperandPrefetch::mode_from("0"), OperandPrefetch::Mode::kOff);
  EXPECT_EQ(OperandPrefetch::mode_from("vectors"), OperandPrefetch::Mode::kVectors);
  EXPECT_EQ(OperandPrefetch::mode_from("1"), OperandPrefetch::Mode::kAll);
}

TEST(OperandPrefetch, OffPlansNothing) {
  const OperandPrefetch f = OperandPrefetch::plan(params(3072, 3072, 3072), OperandPrefetch::Mode::kOff);
  EXPECT_EQ(f.weight, nullptr);
  EXPECT_EQ(f.weight_rows, 0);
  EXPECT_EQ(f.weight_row_bytes, 0);
  EXPECT_EQ(f.channel_vectors[0], nullptr);
  EXPECT_EQ(f.channel_vectors[1], nullptr);
}

}  // namespace
}  // namespace int8dit::detail::sm90
