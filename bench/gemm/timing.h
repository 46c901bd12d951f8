// GPU time of one launch: CUDA events around each run, median over many runs after a warm-up.
// While the runs are enqueued a holding kernel keeps the stream busy, so the GPU executes them back
// to back and the events measure device time only, not the host's launch cost.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <vector>

namespace bench {

struct Timing {
  double median_ms = 0;
  double min_ms = 0;
  int runs = 0;
  bool held = true;  // false if the holding kernel timed out: some runs may include launch gaps
};

class GpuTimer {
 public:
  explicit GpuTimer(cudaStream_t stream);
  ~GpuTimer();
  GpuTimer(const GpuTimer&) = delete;
  GpuTimer& operator=(const GpuTimer&) = delete;

  // Calls launch(i) for i in [0, warmup) untimed, then `runs` timed calls; `i` keeps counting so
  // the caller can rotate buffer sets with i % sets. launch() enqueues on the timer's stream.
  Timing time(const std::function<void(int)>& launch, int warmup, int runs);

 private:
  // NOTE: runs are enqueued in chunks so that the pending work never fills the launch queue
  // (about a thousand entries) while the holding kernel blocks the GPU.
  static constexpr int kChunk = 128;
  cudaStream_t stream_;
  volatile int* release_ = nullptr;  // host-mapped: the host writes 1 to let the GPU go
  int* timed_out_ = nullptr;         // host-mapped: the holding kernel writes 1 on timeout
  std::vector<cudaEvent_t> start_, stop_;
};

}  // namespace bench
