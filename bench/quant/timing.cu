#include <algorithm>
#include <cerrno>  // program_invocation_short_name (glibc)
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "timing.h"

namespace bench_quant {

void check_cuda(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  // The program's own name: four benchmark programs share this file.
  std::fprintf(stderr, "%s: %s failed: %s\n", program_invocation_short_name, what, cudaGetErrorString(err));
  std::exit(1);
}

namespace {

__device__ uint32_t hash(uint32_t x) {
  x ^= x >> 16, x *= 0x7feb352dU, x ^= x >> 15, x *= 0x846ca68bU, x ^= x >> 16;
  return x;
}
__device__ float uniform(size_t i, uint32_t seed) {
  return (hash(static_cast<uint32_t>(i) * 2654435761U ^ hash(seed + static_cast<uint32_t>(i >> 32))) >> 8) * (1.0f / 16777216.0f);
}

__global__ void fill_bf16_kernel(uint16_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float v = uniform(i, seed) * 8.0f - 4.0f;
    p[i] = static_cast<uint16_t>(__float_as_uint(v) >> 16);
  }
}
__global__ void fill_f32_kernel(float* p, size_t n, float lo, float hi, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = lo + uniform(i, seed) * (hi - lo);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

void fill_bf16(uint16_t* p, size_t n, uint32_t seed) {
  fill_bf16_kernel<<<1024, 256>>>(p, n, seed);
  check_cuda(cudaGetLastError(), "fill_bf16");
}
void fill_f32(float* p, size_t n, float lo, float hi, uint32_t seed) {
  fill_f32_kernel<<<1024, 256>>>(p, n, lo, hi, seed);
  check_cuda(cudaGetLastError(), "fill_f32");
}

double median_us(const std::function<void(int)>& launch, int batches, int per_batch, int warmup) {
  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  int call = 0;
  for (int i = 0; i < warmup; ++i) launch(call++);
  std::vector<double> us;
  for (int b = 0; b < batches; ++b) {
    check_cuda(cudaEventRecord(start), "cudaEventRecord");
    for (int i = 0; i < per_batch; ++i) launch(call++);
    check_cuda(cudaEventRecord(stop), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    us.push_back(1e3 * ms / per_batch);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return median(us);
}

double copy_bandwidth_gbps(size_t bytes) {
  void *src = nullptr, *dst = nullptr;
  check_cuda(cudaMalloc(&src, bytes), "cudaMalloc");
  check_cuda(cudaMalloc(&dst, bytes), "cudaMalloc");
  check_cuda(cudaMemset(src, 1, bytes), "cudaMemset");
  const double us = median_us([&](int) { check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync"); },
                              15, 5, 3);
  cudaFree(src);
  cudaFree(dst);
  return 2.0 * static_cast<double>(bytes) / (us * 1e3);
}

double same_size_copy_us(double moved_bytes) {
  // NOTE: rounded up to whole 64 KiB: on the H200 a cudaMemcpyAsync of ~19 MB each way ran at 2660-2820
  // GB/s where its size was not a multiple of 4 KiB and at 3200-3310 where it was (quant.json at
  // 7e09f3b), which made the yardstick slower for the ops that read a per-channel vector. The few KB
  // added make the copy move slightly more than the kernel, never less.
  constexpr size_t kGranule = size_t{64} << 10;
  const size_t half = (static_cast<size_t>(moved_bytes / 2) + kGranule - 1) / kGranule * kGranule;
  const int sets = static_cast<int>(std::min(16.0, 256e6 / moved_bytes + 1));
  std::vector<void*> src(static_cast<size_t>(sets)), dst(static_cast<size_t>(sets));
  for (int s = 0; s < sets; ++s) {
    check_cuda(cudaMalloc(&src[s], half), "cudaMalloc");
    check_cuda(cudaMalloc(&dst[s], half), "cudaMalloc");
    check_cuda(cudaMemset(src[s], 1, half), "cudaMemset");
  }
  const double us = median_us([&](int c) {
    check_cuda(cudaMemcpyAsync(dst[c % sets], src[c % sets], half, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
  });
  for (int s = 0; s < sets; ++s) cudaFree(src[s]), cudaFree(dst[s]);
  return us;
}

}  // namespace bench_quant
