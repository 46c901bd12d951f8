// Internal: device buffers for timing GEMM candidates of one problem shape.
//
// Holds several copies ("sets") of A, B, D, the scales and the bias, so that consecutive timed runs
// read inputs that are not already in L2: the sets together span at least 3x the L2 size (or the
// memory budget, whichever is smaller). Contents are random int8, fixed per shape.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "int8dit/gemm.h"
#include "int8dit/status.h"

namespace int8dit::tune {

class TimingBuffers {
 public:
  TimingBuffers() = default;
  ~TimingBuffers();
  TimingBuffers(const TimingBuffers&) = delete;
  TimingBuffers& operator=(const TimingBuffers&) = delete;

  // Allocate and fill on `stream` (stream-ordered allocations: no device-wide synchronization).
  Status allocate(int64_t m, int64_t n, int64_t k, DType d_type, bool bias, size_t workspace_bytes,
                  cudaStream_t stream);
  int sets() const { return static_cast<int>(sets_.size()); }
  // Problem parameters pointing at set `i % sets()`; with `m`, for that many rows (m <= the allocated M).
  GemmParams params(int i) const;
  GemmParams params(int i, int64_t m) const;

 private:
  struct Set {
    int8_t* a = nullptr;
    int8_t* b = nullptr;
    void* d = nullptr;
  };
  int64_t m_ = 0, n_ = 0, k_ = 0, ldd_ = 0;
  DType d_type_ = DType::kBF16;
  bool bias_ = false;
  std::vector<Set> sets_;
  float* scale_a_ = nullptr;
  float* scale_b_ = nullptr;
  float* bias_ptr_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  std::vector<void*> allocations_;
};

}  // namespace int8dit::tune
