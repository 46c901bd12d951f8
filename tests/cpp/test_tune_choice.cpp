// The tuner's bucket policy without a GPU: the M it times a bucket at, and which candidate it keeps.
#include <gtest/gtest.h>

#include <vector>

#include "int8dit/tune.h"
#include "tune/bucket_choice.h"

namespace int8dit::tune {
namespace {

TEST(TuneChoice, ABucketIsTimedAtItsBottomMiddleAndTop) {
  EXPECT_EQ(bucket_timing_ms(2304), (std::vector<int64_t>{2049, 2176, 2304}));
  EXPECT_EQ(bucket_timing_ms(4608), (std::vector<int64_t>{4097, 4352, 4608}));
  EXPECT_EQ(bucket_timing_ms(18), (std::vector<int64_t>{17, 18}));  // width 2: two distinct M
  EXPECT_EQ(bucket_timing_ms(1), (std::vector<int64_t>{1}));        // width 1: M itself
  EXPECT_EQ(bucket_timing_ms(8), (std::vector<int64_t>{8}));
  for (int64_t hi : {16, 32, 288, 2304, 8192}) {
    for (int64_t m : bucket_timing_ms(hi)) EXPECT_EQ(m_bucket(m).hi, hi) << "M = " << m << " left bucket " << hi;
  }
}

TEST(TuneChoice, TheCandidateFastOnlyAtTheTopLosesToTheSteadyOne) {
  // The H200's bucket 2049..2304 at N = K = 3072 (bench/results/h200/tune_all_configs.json, M = 2049,
  // 2176, 2304): 128x128 ping-pong (2x1 clusters) is the fastest at the 256-aligned top, 1.09x behind
  // at the bottom (and 1.2x at M = 2112); 128x256 cooperative stream-K is never more than 1.07x behind.
  const std::vector<std::vector<double>> us = {{43.328, 44.464, 39.584},   // 128x128 ping-pong
                                               {40.032, 41.280, 43.200},   // 128x256 cooperative
                                               {41.456, 43.904, 42.320},   // 128x256 cooperative stream-K
                                               {39.920, 46.944, 49.520}};  // 64x256 ping-pong
  std::vector<double> mean;
  EXPECT_EQ(pick_evenly_fast(us, {false, false, false, false}, &mean), 2);
  EXPECT_NEAR(mean[2], (41.456 + 43.904 + 42.320) / 3, 1e-9);
  // Timed at the top alone, the same data keeps the ping-pong configuration.
  EXPECT_EQ(pick_evenly_fast({{39.584}, {43.2}, {42.32}, {49.52}}, {false, false, false, false}), 0);
}

TEST(TuneChoice, FailedCandidatesAreIgnoredAndTiesGoToTheLowerMean) {
  const std::vector<std::vector<double>> us = {{1.0, 1.0}, {10.0, 20.0}, {20.0, 10.0}, {10.0, 10.0}};
  // Without the first (failed) candidate, the last one is the fastest at both M.
  EXPECT_EQ(pick_evenly_fast(us, {true, false, false, false}), 3);
  // Equal worst ratios (2.0 each) without the last two: the lower mean wins, then the first.
  EXPECT_EQ(pick_evenly_fast({{10.0, 20.0}, {20.0, 10.0}, {5.0, 40.0}}, {false, false, true}), 0);
  EXPECT_EQ(pick_evenly_fast(us, {true, true, true, true}), -1);
  EXPECT_EQ(pick_evenly_fast({}, {}), -1);
}

}  // namespace
}  // namespace int8dit::tune
