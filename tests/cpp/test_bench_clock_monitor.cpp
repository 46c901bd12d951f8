// bench/gemm/clock_monitor.h: the SM clock samples a benchmark path's figures carry, and a machine
// without NVML (or without that GPU) running the benchmark unsampled, with the reason.
#include <gtest/gtest.h>

#include "clock_monitor.h"

namespace {

TEST(ClockTally, MeanOfTheSamplesOfOneWindowAndOfMergedWindows) {
  bench::ClockTally a;
  EXPECT_EQ(a.mean_mhz(), 0.0);  // no sample: no clock, not a zero clock to divide by
  a.add_sample(1500);
  a.add_sample(1700);
  EXPECT_DOUBLE_EQ(a.mean_mhz(), 1600);
  bench::ClockTally b;
  b.add_sample(1900);
  a.merge(b);  // rounds merge by sample, not by window: three samples, not two windows
  EXPECT_EQ(a.samples, 3);
  EXPECT_DOUBLE_EQ(a.mean_mhz(), (1500.0 + 1700 + 1900) / 3);
}

TEST(ClockMonitor, AnUnknownGpuLeavesTheBenchmarkUnsampledAndSaysWhy) {
  // No NVML on this machine, or no GPU at this bus id where there is: either way no samples, a reason,
  // and windows that may still be opened and closed.
  bench::ClockMonitor monitor("0000:FF:1F.7");
  EXPECT_FALSE(monitor.available());
  EXPECT_NE(monitor.status(), "ok");
  EXPECT_FALSE(monitor.status().empty());
  monitor.begin();
  const bench::ClockTally t = monitor.end();
  EXPECT_EQ(t.samples, 0);
}

}  // namespace
