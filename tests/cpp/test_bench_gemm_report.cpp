// bench/gemm/report.cpp: the clock each path ran at, in gemm.json and gemm.md, where it was sampled
// (clock_monitor.h), and nothing of it where it was not. Host code only.
#include <gtest/gtest.h>

#include <string>

#include "report.h"

namespace {

bench::PathResult timed(double ms, double mhz, int samples) {
  bench::PathResult p;
  p.status = "ok";
  p.ms = p.min_ms = ms;
  p.runs = 50;
  p.sm_mhz = mhz;
  p.clock_samples = samples;
  return p;
}

bench::RunReport one_row(int clock_samples) {
  bench::RunReport r;
  r.clock_sampling = clock_samples > 0 ? "every 1000 us from NVML" : "NVML (libnvidia-ml.so.1) could not be opened";
  bench::Row row;
  row.shape.m = 4608, row.shape.n = 21504, row.shape.k = 3072;
  row.flops = 2.0 * 4608 * 21504 * 3072;  // 608.9 GFLOP
  row.ours_heuristic = timed(0.5, 1500, clock_samples);
  row.ours_heuristic.what = "sm90_bf16_128x128x128_2x1_pingpong";
  row.bf16 = timed(1.0, 1600, clock_samples);
  row.fp8 = timed(0.6, 1550, clock_samples);
  r.rows.push_back(row);
  return r;
}

TEST(GemmReport, EachPathCarriesItsClockAndItsTopsPerGhz) {
  const bench::RunReport r = one_row(40);
  const std::string json = bench::to_json(r).dump();
  EXPECT_NE(json.find("\"sm_mhz\": 1500"), std::string::npos) << json;
  EXPECT_NE(json.find("\"clock_samples\": 40"), std::string::npos);
  EXPECT_NE(json.find("every 1000 us from NVML"), std::string::npos);
  const std::string md = bench::to_markdown(r);
  EXPECT_NE(md.find("## SM clock while each path ran"), std::string::npos) << md;
  // ours: 1218 TOPS at 1.5 GHz is 812 TOPS per GHz; cuBLAS bf16 609 TFLOP/s at 1.6 GHz, 381
  EXPECT_NE(md.find("| 4608x21504x3072 | 1500 / 812 | 1600 / 381 | 1550 / 655 |"), std::string::npos) << md;
}

TEST(GemmReport, AnUnsampledRunSaysWhyAndHasNoClockColumns) {
  const bench::RunReport r = one_row(0);
  const std::string json = bench::to_json(r).dump();
  EXPECT_EQ(json.find("\"sm_mhz\""), std::string::npos) << json;
  const std::string md = bench::to_markdown(r);
  EXPECT_EQ(md.find("## SM clock while each path ran"), std::string::npos);
  EXPECT_NE(md.find("could not be opened"), std::string::npos);
}

TEST(GemmReport, SaysWhichInputDistributionTheRunMultiplied) {
  bench::RunReport r = one_row(40);
  EXPECT_NE(bench::to_json(r).dump().find("\"input_distribution\": \"uniform\""), std::string::npos);
  EXPECT_NE(bench::to_markdown(r).find("- inputs: random, uniform: int8 in [-127, 127]"), std::string::npos);
  r.opts.inputs = bench::Distribution::small;
  const std::string json = bench::to_json(r).dump();
  EXPECT_NE(json.find("\"input_distribution\": \"small\""), std::string::npos) << json;
  EXPECT_NE(bench::to_markdown(r).find("- inputs: random, small (--inputs small): integers uniform in [-2, 2]"),
            std::string::npos);
}

}  // namespace
