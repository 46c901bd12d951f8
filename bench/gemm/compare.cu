// Compares a bf16 output against the reference output on the GPU (copying a 200 MB output to the
// host for every configuration would dominate the run). Two passes: the largest |ref| sets the
// floor below which errors are measured in absolute terms, then every element is checked.
#include <cstring>

#include "check.h"
#include "kernels.h"

namespace bench {
namespace {

struct CompareCounters {
  unsigned max_abs_ref_bits;  // non-negative floats order like their bit patterns
  unsigned max_rel_err_bits;
  unsigned long long over_tol;
  unsigned long long non_finite;
};

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__global__ void max_abs_kernel(const __nv_bfloat16* ref, size_t total, CompareCounters* out) {
  float best = 0.0f;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const float r = fabsf(__bfloat162float(ref[i]));
    if (isfinite(r)) best = fmaxf(best, r);
  }
  best = warp_max(best);
  if ((threadIdx.x & 31) == 0) atomicMax(&out->max_abs_ref_bits, __float_as_uint(best));
}

__global__ void compare_kernel(const __nv_bfloat16* got, const __nv_bfloat16* ref, size_t total, float rel_tol,
                               CompareCounters* out) {
  const float floor = 1e-3f * __uint_as_float(out->max_abs_ref_bits);
  float worst = 0.0f;
  unsigned long long over = 0, bad = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const float g = __bfloat162float(got[i]);
    const float r = __bfloat162float(ref[i]);
    if (!isfinite(g) || !isfinite(r)) {
      ++bad;
      continue;
    }
    const float err = fabsf(g - r) / fmaxf(fabsf(r), floor);
    worst = fmaxf(worst, err);
    over += err > rel_tol;
  }
  worst = warp_max(worst);
  for (int o = 16; o > 0; o >>= 1) {
    over += __shfl_xor_sync(0xffffffffu, over, o);
    bad += __shfl_xor_sync(0xffffffffu, bad, o);
  }
  if ((threadIdx.x & 31) == 0) {
    atomicMax(&out->max_rel_err_bits, __float_as_uint(worst));
    if (over) atomicAdd(&out->over_tol, over);
    if (bad) atomicAdd(&out->non_finite, bad);
  }
}

}  // namespace

CompareResult compare_bf16(const __nv_bfloat16* got, const __nv_bfloat16* ref, int64_t m, int64_t n, double rel_tol,
                           cudaStream_t s) {
  CompareCounters* counters = nullptr;
  BENCH_CUDA(cudaMallocAsync(&counters, sizeof(CompareCounters), s));
  BENCH_CUDA(cudaMemsetAsync(counters, 0, sizeof(CompareCounters), s));
  const size_t total = size_t(m) * size_t(n);
  constexpr int kThreads = 256;
  const unsigned blocks = unsigned(total / kThreads + 1 < 4096 ? total / kThreads + 1 : 4096);
  max_abs_kernel<<<blocks, kThreads, 0, s>>>(ref, total, counters);
  compare_kernel<<<blocks, kThreads, 0, s>>>(got, ref, total, float(rel_tol), counters);
  BENCH_CUDA(cudaGetLastError());
  CompareCounters host{};
  BENCH_CUDA(cudaMemcpyAsync(&host, counters, sizeof(host), cudaMemcpyDeviceToHost, s));
  BENCH_CUDA(cudaFreeAsync(counters, s));
  BENCH_CUDA(cudaStreamSynchronize(s));
  CompareResult r;
  float f;
  static_assert(sizeof(f) == sizeof(unsigned));
  std::memcpy(&f, &host.max_abs_ref_bits, sizeof f);
  r.max_abs_ref = f;
  std::memcpy(&f, &host.max_rel_err_bits, sizeof f);
  r.max_rel_err = f;
  r.over_tol = int64_t(host.over_tol);
  r.non_finite = int64_t(host.non_finite);
  return r;
}

}  // namespace bench
