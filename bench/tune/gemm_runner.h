// Times the library's GEMM (gemm_w8a8 with bf16 output and a bias) for one (N, K) and any M up to a
// maximum: what dispatch picks in a given TuneMode, and configurations forced by name, over rotated
// input sets so L2 does not flatter.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "device_buffer.h"
#include "int8dit/gemm.h"
#include "int8dit/tune.h"
#include "timing.h"

namespace bench_tune {

struct Measurement {
  double us = 0;
  std::string config;  // what dispatch ran
  bool held = true;    // the stream holder did not time out (no launch gaps in the timing)
  double select_seconds = 0;  // wall time of picking the configuration (tuning, on first use)
};

class GemmRunner {
 public:
  GemmRunner(int64_t max_m, int64_t n, int64_t k, size_t l2_bytes, cudaStream_t stream, double warmup_ms);

  // What dispatch picks at M in `mode` (tuning the key first in kTuneOnFirstUse), with the wall time
  // of picking in *select_seconds.
  std::string selected_config(int64_t m, int8dit::TuneMode mode, double* select_seconds = nullptr);
  // Times every configuration in `configs` (forced by name) at M in `rounds` rounds that visit each
  // one in turn, runs / rounds timed runs per visit; each result is the median of all its runs.
  // NOTE: under a sustained load the GPU sits at its power cap and its clock moves (H200: 1.2 to
  // 1.98 GHz); timed one after the other, the same kernel at the same M read 670 and 473 us
  // (bench/results/h200/tune_all_configs.json, M = 7808). Interleaving gives every configuration the same mix.
  std::vector<Measurement> time_interleaved(int64_t m, const std::vector<std::string>& configs, int warmup, int runs,
                                            int rounds);

  // The two halves of time_interleaved, for callers that interleave more widely (the M sweep visits
  // every M of a sweep in each round): prepare() sizes the workspace and makes one checked call per
  // configuration at M (throws on an error); visit() then makes `runs` timed calls after `warmup`
  // untimed ones (and, with warm_clock, the timer's warm-up in GPU time), appending each run's
  // milliseconds to *samples. Returns false if the stream holder timed out (launch gaps timed).
  void prepare(int64_t m, const std::vector<std::string>& configs);
  bool visit(int64_t m, const std::string& config, int warmup, int runs, bool warm_clock, std::vector<double>* samples);

 private:
  int8dit::GemmParams params(int64_t m, int set) const;

  int64_t max_m_, n_, k_;
  cudaStream_t stream_;
  struct Set {
    bench::DeviceBuffer a, b, d;
  };
  std::vector<Set> sets_;
  bench::DeviceBuffer scale_a_, scale_b_, bias_;
  bench::DeviceBuffer workspace_;  // grown to what the selected configuration needs (stream-K)
  bench::GpuTimer timer_;
  double warmup_ms_;  // GPU time of warm-up before the first visit of each time_interleaved call
};

}  // namespace bench_tune
