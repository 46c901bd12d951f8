#include "tune/stream_hold.h"

#include <atomic>
#include <cstdint>

#include "core/cuda_check.h"

namespace int8dit::tune {
namespace {

// NOTE: the timeout bounds the wait if the host never releases (an error path): the timed launches
// then merely include launch gaps.
constexpr uint64_t kHoldTimeoutNs = 1'000'000'000ull;

__global__ void spin_until_released(const volatile int* flag, uint64_t timeout_ns) {
  uint64_t start, now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (*flag == 0 && now - start < timeout_ns);
}

}  // namespace

StreamHold::~StreamHold() {
  if (flag_) cudaFreeHost(flag_);
}

Status StreamHold::create() {
  void* p = nullptr;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaHostAlloc(&p, sizeof(int), cudaHostAllocMapped), "cudaHostAlloc"));
  flag_ = static_cast<int*>(p);
  *flag_ = 0;
  void* d = nullptr;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaHostGetDevicePointer(&d, p, 0), "cudaHostGetDevicePointer"));
  flag_device_ = static_cast<int*>(d);
  return Status::Ok();
}

Status StreamHold::hold(cudaStream_t stream) {
  *reinterpret_cast<volatile int*>(flag_) = 0;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  spin_until_released<<<1, 1, 0, stream>>>(flag_device_, kHoldTimeoutNs);
  return detail::last_launch_status("spin_until_released");
}

void StreamHold::release() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  *reinterpret_cast<volatile int*>(flag_) = 1;
}

}  // namespace int8dit::tune
