// One row of the benchmark: every path on one shape, each checked, then timed on buffer sets that
// rotate so the operands come from DRAM, not L2.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "gpu_info.h"
#include "options.h"
#include "shapes.h"
#include "timing.h"

namespace bench {

struct PathResult {
  std::string status;       // "ok", or why there is no figure ("not implemented: ...", "MISMATCH: ...")
  std::string what;         // ours: the configuration; cuBLASLt: the algorithm picked
  double ms = 0;            // median
  double min_ms = 0;
  int runs = 0;
  bool held = true;         // see Timing::held
  double bytes = 0;         // the least DRAM traffic of this path, for GB/s
  double max_rel_err = -1;  // ours: against the reference (< 0: not compared)
  // The mean SM clock while the path ran (NVML samples over its warm-up and timed runs in every
  // round; clock_monitor.h); 0 where it was not sampled.
  double sm_mhz = 0;
  int clock_samples = 0;
  bool ok() const { return status == "ok"; }
};

struct ConfigTrial {  // one configuration forced by name
  std::string name;
  std::string status;  // "ok", "skipped: ..." (cannot implement), "MISMATCH: ...", "error: ..."
  double ms = 0;       // --sweep-runs median
  double max_rel_err = -1;
};

struct Row {
  Shape shape;
  double flops = 0;  // 2 M N K
  int buffer_sets = 0;
  double rotated_mb = 0;   // total size of the rotated sets, int8 operands + bf16 output of ours
  std::string reference;   // what ours was compared against
  std::string error;       // set when the row could not run at all
  bool check_failed = false;
  PathResult ours_heuristic, ours_best, bf16, int8_gemm, int8_dequant, fp8;
  // ours_heuristic launched in plain stream order (GemmOptions::programmatic_launch = false).
  PathResult ours_stream_order;
  // The whole int8dit linear layer on a bf16 input, as the Python layer runs it: quantize_rows (per-token
  // int8 + scales), then the dispatched GEMM (programmatic on Hopper, so it may start during the
  // quantization's last rows), and the same pair with the GEMM in plain stream order. Against
  // cuBLAS bf16, which takes the same bf16 input: the layer's speedup with its quantization paid.
  PathResult linear, linear_stream_order;
  std::string fp8_scaling;  // "outer_vector" or "per_tensor"
  bool fp8_bias = true;     // false: cuBLASLt had no outer-vector kernel with the bias epilogue
  std::string fp8_note;     // why per-tensor, where outer-vector was not available
  // FP8 with one scale per tensor and the bias epilogue, measured besides the outer-vector path:
  // cuBLASLt's fastest FP8 kernels, the stronger speed bar (not the same quantization granularity).
  PathResult fp8_per_tensor;
  std::vector<ConfigTrial> trials;
};

class ShapeBench {
 public:
  ShapeBench(const Options& opts, const GpuInfo& gpu, cudaStream_t stream);
  ~ShapeBench();
  ShapeBench(const ShapeBench&) = delete;
  ShapeBench& operator=(const ShapeBench&) = delete;

  Row run(const Shape& shape);
  // How the SM clock is sampled while each path runs ("every N us from NVML"), or why it is not.
  std::string clock_sampling() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bench
