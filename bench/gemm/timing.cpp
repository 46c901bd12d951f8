#include "timing.h"

#include <algorithm>
#include <atomic>

#include "check.h"
#include "kernels.h"

namespace bench {

GpuTimer::GpuTimer(cudaStream_t stream) : stream_(stream) {
  void* p = nullptr;
  BENCH_CUDA(cudaHostAlloc(&p, 2 * sizeof(int), cudaHostAllocMapped));
  release_ = static_cast<volatile int*>(p);
  timed_out_ = static_cast<int*>(p) + 1;
  start_.resize(kChunk);
  stop_.resize(kChunk);
  for (int i = 0; i < kChunk; ++i) {
    BENCH_CUDA(cudaEventCreate(&start_[i]));
    BENCH_CUDA(cudaEventCreate(&stop_[i]));
  }
}

GpuTimer::~GpuTimer() {
  for (cudaEvent_t e : start_) cudaEventDestroy(e);
  for (cudaEvent_t e : stop_) cudaEventDestroy(e);
  cudaFreeHost(const_cast<int*>(release_));
}

double sorted_median(std::vector<double>& ms) {
  if (ms.empty()) return 0;
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  return n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
}

Timing GpuTimer::time(const std::function<void(int)>& launch, int warmup, int runs, std::vector<double>* samples) {
  int call = 0;
  for (; call < warmup; ++call) launch(call);
  if (min_warmup_ms_ > 0) {
    // Batches that double up to kChunk launches, each followed by a look at the elapsed GPU time.
    constexpr int kMaxWarmupCalls = 100000;
    BENCH_CUDA(cudaEventRecord(start_[0], stream_));
    for (int batch = 1; call < kMaxWarmupCalls; batch = std::min(2 * batch, kChunk)) {
      for (int j = 0; j < batch; ++j) launch(call++);
      BENCH_CUDA(cudaEventRecord(stop_[0], stream_));
      BENCH_CUDA(cudaEventSynchronize(stop_[0]));
      float elapsed = 0;
      BENCH_CUDA(cudaEventElapsedTime(&elapsed, start_[0], stop_[0]));
      if (elapsed >= min_warmup_ms_) break;
    }
  }
  BENCH_CUDA(cudaStreamSynchronize(stream_));

  Timing t;
  std::vector<double> ms;
  ms.reserve(runs);
  constexpr uint64_t kHoldTimeoutNs = 2'000'000'000ull;
  while (int(ms.size()) < runs) {
    const int chunk = std::min(std::max(1, kChunk / calls_per_sample_), runs - int(ms.size()));
    *release_ = 0;
    *timed_out_ = 0;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    int* release_dev = nullptr;
    int* timed_out_dev = nullptr;
    BENCH_CUDA(cudaHostGetDevicePointer(reinterpret_cast<void**>(&release_dev), const_cast<int*>(release_), 0));
    BENCH_CUDA(cudaHostGetDevicePointer(reinterpret_cast<void**>(&timed_out_dev), timed_out_, 0));
    launch_hold_stream(release_dev, timed_out_dev, kHoldTimeoutNs, stream_);
    try {
      for (int j = 0; j < chunk; ++j, ++call) {
        BENCH_CUDA(cudaEventRecord(start_[j], stream_));
        for (int c = 0; c < calls_per_sample_; ++c) launch(call + c);
        call += calls_per_sample_ - 1;
        BENCH_CUDA(cudaEventRecord(stop_[j], stream_));
      }
    } catch (...) {
      *release_ = 1;  // let the holding kernel go before the error propagates
      cudaStreamSynchronize(stream_);
      throw;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    *release_ = 1;
    BENCH_CUDA(cudaStreamSynchronize(stream_));
    if (*timed_out_) t.held = false;
    for (int j = 0; j < chunk; ++j) {
      float e = 0;
      BENCH_CUDA(cudaEventElapsedTime(&e, start_[j], stop_[j]));
      ms.push_back(double(e) / calls_per_sample_);
    }
  }
  if (samples) samples->insert(samples->end(), ms.begin(), ms.end());
  t.runs = runs;
  t.median_ms = sorted_median(ms);
  t.min_ms = ms.front();
  return t;
}

}  // namespace bench
