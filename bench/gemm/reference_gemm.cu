// A naive exact int8 GEMM (dp4a, int32 accumulation), the correctness reference where cuBLASLt
// offers no int8 algorithm for a shape. One thread per output; rows of A and B are K-contiguous.
#include "check.h"
#include "kernels.h"

namespace bench {
namespace {

__global__ void reference_gemm_kernel(const int8_t* __restrict__ a, const int8_t* __restrict__ b, int32_t* acc,
                                      int64_t m, int64_t n, int64_t k) {
  const int64_t col = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (col >= n) return;
  // NOTE: K is a multiple of 16 (validated by int8dit), so rows are whole 4-byte words.
  const int* brow = reinterpret_cast<const int*>(b + col * k);
  for (int64_t row = blockIdx.y; row < m; row += gridDim.y) {
    const int* arow = reinterpret_cast<const int*>(a + row * k);
    int sum = 0;
    for (int64_t w = 0; w < k / 4; ++w) sum = __dp4a(arow[w], brow[w], sum);
    acc[row * n + col] = sum;
  }
}

}  // namespace

void reference_gemm_int8(const int8_t* a, const int8_t* b, int32_t* acc, int64_t m, int64_t n, int64_t k,
                         cudaStream_t s) {
  constexpr int kThreads = 128;
  dim3 grid(unsigned((n + kThreads - 1) / kThreads), unsigned(m < 65535 ? m : 65535));
  reference_gemm_kernel<<<grid, kThreads, 0, s>>>(a, b, acc, m, n, k);
  BENCH_CUDA(cudaGetLastError());
}

}  // namespace bench
