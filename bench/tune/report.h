// What int8dit_bench_tune measured, and how it is written: tune.json (with the "summary" object the
// issue asks for) and tune.md (tables for a human).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gemm_runner.h"
#include "gpu_info.h"
#include "m_sweep.h"
#include "options.h"

namespace bench_tune {

struct PresetRow {
  std::string preset, layer;
  int64_t m = 0, n = 0, k = 0;
  int64_t bucket_hi = 0;     // the M the key was tuned at
  int candidates = 0;
  double tune_seconds = 0;   // wall time of tune_gemm for this key
  Measurement heuristic, tuned;
};

struct SweepPoint {
  int64_t m = 0, bucket_hi = 0;
  Measurement heuristic, tuned;
  std::vector<Measurement> all_configs;  // --all-configs: every bf16 configuration, forced
};

struct Sweep {
  int64_t n = 0, k = 0;
  std::vector<SweepPoint> points;
  Cliff cliff_heuristic, cliff_tuned;
  double tune_seconds = 0;  // wall time spent tuning the sweep's buckets on first use
};

struct Summary {
  double geomean_tuned_vs_heuristic = 0;  // geomean of heuristic_us / tuned_us over the preset shapes
  double tune_seconds_flux_dev = 0;
  std::string tune_seconds_flux_dev_how;
  double max_cliff_ratio_tuned = 0, max_cliff_ratio_heuristic = 0;
};

struct Report {
  std::string command, date, library_version, cache_path;
  bench::GpuInfo gpu;
  double sm_clock_mhz = 0;
  Options options;
  std::vector<PresetRow> presets;
  std::vector<Sweep> sweeps;
  Summary summary;
};

// Geomean and cliffs from the rows; fills report->summary except the flux-dev tuning time.
void summarize(Report* report);
void write_report(const Report& report, const std::string& dir);  // tune.json + tune.md
std::string markdown(const Report& report);

}  // namespace bench_tune
