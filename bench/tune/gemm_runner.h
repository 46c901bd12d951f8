// Times the library's own dispatch (gemm_w8a8 with bf16 output and a bias) for one (N, K) and any
// M up to a maximum, in a given TuneMode, over rotated input sets so L2 does not flatter.
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

  // Selects the configuration first (which tunes the key in kTuneOnFirstUse, outside the timing),
  // then times it. Throws bench::BenchError if the GEMM fails.
  Measurement time(int64_t m, int8dit::TuneMode mode, int warmup, int runs);
  // Times one configuration forced by name (GemmOptions::config), whatever dispatch would pick.
  Measurement time_config(int64_t m, const std::string& config, int warmup, int runs);

 private:
  int8dit::GemmParams params(int64_t m, int set) const;
  // Grows the workspace to what `opts` (or dispatch's pick when null) needs at M, then times it.
  Measurement time_selected(int64_t m, const int8dit::GemmOptions* opts, int warmup, int runs, Measurement out);

  int64_t max_m_, n_, k_;
  cudaStream_t stream_;
  struct Set {
    bench::DeviceBuffer a, b, d;
  };
  std::vector<Set> sets_;
  bench::DeviceBuffer scale_a_, scale_b_, bias_;
  bench::DeviceBuffer workspace_;  // grown to what the selected configuration needs (stream-K)
  bench::GpuTimer timer_;
};

}  // namespace bench_tune
