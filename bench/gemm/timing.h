// GPU time of one launch: CUDA events around each run, median over many runs after a warm-up.
// While the runs are enqueued a holding kernel keeps the stream busy, so the GPU executes them back
// to back and the events measure device time only, not the host's launch cost.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <vector>

namespace bench {

// The median of a list of run times (sorts it in place); 0 for an empty list.
double sorted_median(std::vector<double>& ms);

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

  // Calls launch(i) for i in [0, warmup) untimed, keeps launching untimed until the warm-up has
  // also lasted min_warmup_ms of GPU time, then makes `runs` timed calls; `i` keeps counting so the
  // caller can rotate buffer sets with i % sets. launch() enqueues on the timer's stream.
  // Every timed run's milliseconds are appended to *samples when it is given.
  Timing time(const std::function<void(int)>& launch, int warmup, int runs, std::vector<double>* samples = nullptr);

  // NOTE: a GPU left idle for a moment (host-side setup, checks, allocation) drops its SM clock and
  // needs milliseconds of load to bring it back; ten runs of a 50 us kernel can end before that. On
  // an H200 the same configuration of the same shape (4096x9216x3072, 128x256 cooperative) timed
  // 0.2074 ms in one run of this benchmark and 0.1589 ms in another (2026-12-02); a warm-up measured
  // in time removes the clock as a cause of such differences.
  void set_min_warmup_ms(double ms) { min_warmup_ms_ = ms; }

  // Each timed sample covers `calls` back-to-back launches between one pair of events and reports
  // their mean (default 1: events around every launch). With more than one, a launch that overlaps
  // the one before it (programmatic dependent launch) shows its gain; events between launches may
  // keep the GPU from overlapping them.
  void set_calls_per_sample(int calls) { calls_per_sample_ = calls < 1 ? 1 : calls; }

 private:
  // NOTE: runs are enqueued in chunks so that the pending work never fills the launch queue
  // (about a thousand entries) while the holding kernel blocks the GPU.
  static constexpr int kChunk = 128;
  cudaStream_t stream_;
  double min_warmup_ms_ = 0;
  int calls_per_sample_ = 1;
  volatile int* release_ = nullptr;  // host-mapped: the host writes 1 to let the GPU go
  int* timed_out_ = nullptr;         // host-mapped: the holding kernel writes 1 on timeout
  std::vector<cudaEvent_t> start_, stop_;
};

}  // namespace bench
