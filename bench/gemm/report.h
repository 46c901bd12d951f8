// Everything one run measured, and its two written forms: gemm.json (every figure, the summary
// the targets are checked on) and gemm.md (the same as tables, with the command).
#pragma once

#include <string>
#include <vector>

#include "gpu_info.h"
#include "host_overhead.h"
#include "json.h"
#include "options.h"
#include "shape_bench.h"

namespace bench {

struct RunReport {
  Options opts;
  GpuInfo gpu;
  std::string date_utc;
  std::string library_version, built_archs, config_names;
  std::string dispatch_mode;  // INT8DIT_TUNE as the library saw it: heuristic, tuner cache, or tune on first use
  std::string switches;       // every INT8DIT_* environment variable of the run ("NAME=value, ..."; empty: none)
  double sm_clock_mhz_start = 0, sm_clock_mhz_end = 0;  // clock probe before and after the rows
  std::string clock_sampling;  // how each path's SM clock was sampled (ShapeBench::clock_sampling), or why not
  HostOverhead host;
  std::vector<Row> rows;
};

// Which of ours a summary is of: the default dispatch (what the targets refer to), the same in
// plain stream order (no programmatic dependent launch), or the best forced configuration per shape.
// kLinear*: the linear layer (quantize_rows + GEMM), Row::linear and Row::linear_stream_order.
enum class Ours { kDispatch, kDispatchStreamOrder, kBestConfig, kLinear, kLinearStreamOrder };

struct Summary {
  double geomean_vs_bf16_large = 0, geomean_vs_fp8_large = 0, geomean_vs_bf16_small = 0;
  double geomean_vs_fp8_per_tensor_large = 0;  // against cuBLASLt's per-tensor FP8 (the faster FP8 bar)
  int large_rows = 0, small_rows = 0;
  double tops_flux_single_lin1 = 0;  // 0: the shape was not measured or ours did not run
};
Summary summarize(const std::vector<Row>& rows, Ours which);

Json to_json(const RunReport& r);
std::string to_markdown(const RunReport& r);

// Writes <dir>/gemm.json and <dir>/gemm.md (creating dir). Throws BenchError on failure.
void write_reports(const std::string& dir, const RunReport& r);

}  // namespace bench
