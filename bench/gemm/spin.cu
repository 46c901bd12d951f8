// Kernels that only spin. The stream holder lets the host enqueue every timed launch before the
// GPU starts them, so host-side launch cost (dispatch, cuBLASLt descriptor work) never shows up as
// idle GPU time between a start event and its kernel. The clock probe reports the SM clock a
// kernel actually sees, which is what the TOPS figures ran at.
#include "check.h"
#include "device_buffer.h"
#include "kernels.h"

#include <algorithm>
#include <vector>

namespace bench {
namespace {

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void hold_stream_kernel(const volatile int* release, int* timed_out, uint64_t timeout_ns) {
  const uint64_t start = global_ns();
  while (*release == 0) {
    if (global_ns() - start > timeout_ns) {
      *timed_out = 1;
      return;
    }
  }
}

__global__ void clock_probe_kernel(uint64_t duration_ns, double* mhz) {
  const uint64_t t0 = global_ns();
  const long long c0 = clock64();
  uint64_t t1 = t0;
  while (t1 - t0 < duration_ns) t1 = global_ns();
  const long long c1 = clock64();
  mhz[blockIdx.x] = double(c1 - c0) / double(t1 - t0) * 1e3;
}

}  // namespace

void launch_hold_stream(const volatile int* release, int* timed_out, uint64_t timeout_ns, cudaStream_t s) {
  hold_stream_kernel<<<1, 1, 0, s>>>(release, timed_out, timeout_ns);
  BENCH_CUDA(cudaGetLastError());
}

double measure_sm_clock_mhz(int sm_count, uint64_t duration_ns) {
  DeviceBuffer out(sizeof(double) * sm_count);
  // NOTE: one block per SM: each block asks for more than half of an SM's shared memory (228 KB on
  // Hopper, 164 KB on A100, 100 KB on Ada) so that no two blocks share an SM.
  int smem_per_sm = 0, dev = 0;
  BENCH_CUDA(cudaGetDevice(&dev));
  BENCH_CUDA(cudaDeviceGetAttribute(&smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev));
  int smem_per_block_max = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&smem_per_block_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  const int smem = std::min(smem_per_sm / 2 + 1024, smem_per_block_max);
  BENCH_CUDA(cudaFuncSetAttribute(clock_probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  clock_probe_kernel<<<sm_count, 32, smem>>>(duration_ns, out.as<double>());
  BENCH_CUDA(cudaGetLastError());
  std::vector<double> mhz(sm_count);
  BENCH_CUDA(cudaMemcpy(mhz.data(), out.as<double>(), out.bytes(), cudaMemcpyDeviceToHost));
  double sum = 0;
  for (double v : mhz) sum += v;
  return sum / sm_count;
}

}  // namespace bench
