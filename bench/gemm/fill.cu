// Random inputs for the benchmark: splitmix64 of (seed, index), so each buffer set is different and
// reproducible, and filling a 200 MB buffer takes microseconds rather than a host round trip.
#include "check.h"
#include "kernels.h"

namespace bench {
namespace {

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) from the top 24 bits.
__device__ __forceinline__ float unit_float(uint64_t seed, size_t i) {
  return float(splitmix64(seed * 0x100000001B3ull ^ i) >> 40) * (1.0f / 16777216.0f);
}

// N(0, 1) by Box-Muller from two independent uniforms of the same index (the first kept off zero).
__device__ __forceinline__ float standard_normal(uint64_t seed, size_t i) {
  const float u1 = unit_float(seed, i) + 0.5f / 16777216.0f;
  const float u2 = unit_float(seed ^ 0x5851F42D4C957F2Dull, i);
  return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

// An integer uniform in [-2, 2].
__device__ __forceinline__ int small_int(uint64_t seed, size_t i) {
  return int(splitmix64(seed * 0x100000001B3ull ^ i) % 5u) - 2;
}

__global__ void fill_int8_kernel(int8_t* p, size_t n, uint64_t seed, Distribution d) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = d == Distribution::normal
               ? int8_t(fminf(fmaxf(rintf(standard_normal(seed, i) * (127.0f / 4.0f)), -127.0f), 127.0f))
           : d == Distribution::small ? int8_t(small_int(seed, i))
                                      : int8_t(int(splitmix64(seed * 0x100000001B3ull ^ i) % 255u) - 127);
}

__global__ void fill_bf16_kernel(__nv_bfloat16* p, size_t n, uint64_t seed, float lo, float hi, Distribution d) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16_rn(d == Distribution::normal ? 0.5f * (lo + hi) + 0.125f * (hi - lo) * standard_normal(seed, i)
                               : d == Distribution::small ? float(small_int(seed, i))
                                                          : lo + (hi - lo) * unit_float(seed, i));
}

__global__ void fill_fp8_kernel(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float amplitude, Distribution d) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = __nv_fp8_e4m3(d == Distribution::normal  ? 0.25f * amplitude * standard_normal(seed, i)
                         : d == Distribution::small ? float(small_int(seed, i))
                                                    : amplitude * (2.0f * unit_float(seed, i) - 1.0f));
}

__global__ void fill_f32_kernel(float* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = lo + (hi - lo) * unit_float(seed, i);
}

constexpr int kThreads = 256;
unsigned blocks_for(size_t n) {
  const size_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 8192 ? (b ? b : 1) : 8192);
}

}  // namespace

void fill_int8(int8_t* p, size_t n, uint64_t seed, cudaStream_t s, Distribution d) {
  fill_int8_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, n, seed, d);
  BENCH_CUDA(cudaGetLastError());
}
void fill_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s, Distribution d) {
  fill_bf16_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, n, seed, lo, hi, d);
  BENCH_CUDA(cudaGetLastError());
}
void fill_fp8_e4m3(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float amplitude, cudaStream_t s, Distribution d) {
  fill_fp8_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, n, seed, amplitude, d);
  BENCH_CUDA(cudaGetLastError());
}
void fill_f32(float* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s) {
  fill_f32_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, n, seed, lo, hi);
  BENCH_CUDA(cudaGetLastError());
}

}  // namespace bench
