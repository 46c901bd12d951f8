// Internal: holds a stream with a spinning kernel while timed launches are enqueued behind it, so
// the GPU runs them back to back and the events around each launch measure device time, not the
// host's launch cost (which dominates a 5-microsecond GEMM at small M).
#pragma once

#include <cuda_runtime_api.h>

#include "int8dit/status.h"

namespace int8dit::tune {

class StreamHold {
 public:
  StreamHold() = default;
  ~StreamHold();
  StreamHold(const StreamHold&) = delete;
  StreamHold& operator=(const StreamHold&) = delete;

  Status create();  // allocates the host-mapped release flag
  // Enqueue the spinning kernel on `stream`; it returns when release() is called or after 1 s.
  Status hold(cudaStream_t stream);
  void release();

 private:
  int* flag_ = nullptr;  // host-mapped
  int* flag_device_ = nullptr;
};

}  // namespace int8dit::tune
