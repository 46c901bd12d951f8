// Timing for memory-bound kernels: CUDA events around batches of launches, median over batches,
// and the device-to-device copy bandwidth they are compared with.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace bench_quant {

// Aborts with the CUDA error string: a benchmark has no way to recover.
void check_cuda(cudaError_t err, const char* what);

// cudaMalloc of n values of T (at least one), aborting with the CUDA error where it fails.
template <typename T>
T* device_alloc(size_t n) {
  void* p = nullptr;
  check_cuda(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)), "cudaMalloc");
  return static_cast<T*>(p);
}

// Fills n 16-bit values with bf16 numbers drawn uniformly from [-4, 4) (seeded, on the device).
void fill_bf16(uint16_t* p, size_t n, uint32_t seed);
void fill_f32(float* p, size_t n, float lo, float hi, uint32_t seed);

// Median microseconds of one launch: `launch(i)` runs call i (i selects a rotating buffer set, so
// inputs are not served from L2), timed in batches of `per_batch` launches.
double median_us(const std::function<void(int)>& launch, int batches = 15, int per_batch = 20, int warmup = 10);

// cudaMemcpyAsync device to device of `bytes` (bytes read + bytes written per microsecond).
double copy_bandwidth_gbps(size_t bytes);

// Median microseconds of a cudaMemcpyAsync device to device that reads and writes `moved_bytes` in
// all (moved_bytes / 2 each way, rounded up to whole 64 KiB: the copy's fast sizes), over buffers
// rotating through >= 256 MB as the kernels' inputs do: the copy of the same traffic as one kernel
// call, launch and ramp included. (At 37.8 MB, a 4096 x 3072 quantization's traffic, the H200
// copies at 0.75 of its 1 GiB copy bandwidth.)
double same_size_copy_us(double moved_bytes);

}  // namespace bench_quant
