#include "tune/candidate_timer.h"

#include <algorithm>
#include <vector>

#include "core/cuda_check.h"

namespace int8dit::tune {
namespace {

class EventPool {
 public:
  explicit EventPool(size_t n) : events_(n, nullptr) {}
  ~EventPool() {
    for (cudaEvent_t e : events_)
      if (e) cudaEventDestroy(e);
  }
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;
  Status create() {
    for (cudaEvent_t& e : events_) INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaEventCreate(&e), "cudaEventCreate"));
    return Status::Ok();
  }
  cudaEvent_t operator[](size_t i) const { return events_[i]; }

 private:
  std::vector<cudaEvent_t> events_;
};

}  // namespace

Status warm_up_clocks(const detail::GemmKernel& kernel, const TimingBuffers& buffers, cudaStream_t stream,
                      double min_ms) {
  const detail::StreamOrder order = detail::stream_order_for(nullptr);  // as dispatch launches
  EventPool events(2);
  INT8DIT_RETURN_IF_ERROR(events.create());
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaEventRecord(events[0], stream), "cudaEventRecord"));
  int set = 0;
  for (int batch = 1; set < 4096; batch = std::min(2 * batch, 64)) {
    for (int i = 0; i < batch; ++i) INT8DIT_RETURN_IF_ERROR(kernel.run(buffers.params(set++), stream, order));
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaEventRecord(events[1], stream), "cudaEventRecord"));
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaEventSynchronize(events[1]), kernel.name));
    float elapsed = 0;
    INT8DIT_RETURN_IF_ERROR(
        detail::cuda_status(cudaEventElapsedTime(&elapsed, events[0], events[1]), "cudaEventElapsedTime"));
    if (elapsed >= min_ms) break;
  }
  return Status::Ok();
}

Status time_candidate(const detail::GemmKernel& kernel, const TimingBuffers& buffers, int64_t m,
                      const TimingPlan& plan, StreamHold& hold, cudaStream_t stream, double* median_us) {
  const detail::StreamOrder order = detail::stream_order_for(nullptr);  // as dispatch launches
  const int runs = std::max(1, plan.timed_runs);
  int set = 0;
  for (int i = 0; i < plan.warmup_runs; ++i) INT8DIT_RETURN_IF_ERROR(kernel.run(buffers.params(set++, m), stream, order));

  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaStreamSynchronize(stream), kernel.name));

  EventPool events(2 * static_cast<size_t>(runs));
  INT8DIT_RETURN_IF_ERROR(events.create());
  INT8DIT_RETURN_IF_ERROR(hold.hold(stream));
  Status launched = Status::Ok();
  for (int i = 0; i < runs && launched.ok(); ++i) {
    cudaEventRecord(events[2 * i], stream);
    launched = kernel.run(buffers.params(set++, m), stream, order);
    cudaEventRecord(events[2 * i + 1], stream);
  }
  hold.release();  // also on a launch error, so the spinning kernel does not wait for its timeout
  INT8DIT_RETURN_IF_ERROR(launched);
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaStreamSynchronize(stream), kernel.name));
  std::vector<float> ms(static_cast<size_t>(runs));
  for (int i = 0; i < runs; ++i)
    INT8DIT_RETURN_IF_ERROR(
        detail::cuda_status(cudaEventElapsedTime(&ms[i], events[2 * i], events[2 * i + 1]), "cudaEventElapsedTime"));
  std::nth_element(ms.begin(), ms.begin() + runs / 2, ms.end());
  *median_us = 1000.0 * ms[static_cast<size_t>(runs / 2)];
  return Status::Ok();
}

}  // namespace int8dit::tune
