// The separate dequantize step of the "cuBLASLt int8 (int32 out) + dequantize" baseline: what an
// unfused INT8 pipeline pays on top of the GEMM (read 4 bytes, write 2 bytes per output element).
#include "check.h"
#include "kernels.h"

namespace bench {
namespace {

// NOTE: __fmul_rn / __fadd_rn keep nvcc from contracting into an FMA, so the value matches
// int8dit::ref::epilogue_value (float(acc) * (sx * sw) + bias, two roundings in fp32, then bf16).
__device__ __forceinline__ __nv_bfloat16 dequant_one(int32_t acc, float sx, float sw, float bias) {
  return __float2bfloat16_rn(__fadd_rn(__fmul_rn(float(acc), __fmul_rn(sx, sw)), bias));
}

// Four outputs per thread (one 16-byte load of int32); rows are spread over blockIdx.y with a stride.
__global__ void dequant_vec4_kernel(const int4* __restrict__ acc, int64_t m, int64_t n4, const float* __restrict__ sx,
                                    const float4* __restrict__ sw, const float4* __restrict__ bias,
                                    __nv_bfloat162* __restrict__ y) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= n4) return;
  const float4 w = sw[c];
  const float4 b = bias[c];
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) {
    const int4 a = acc[r * n4 + c];
    const float x = sx[r];
    y[(r * n4 + c) * 2 + 0] = __halves2bfloat162(dequant_one(a.x, x, w.x, b.x), dequant_one(a.y, x, w.y, b.y));
    y[(r * n4 + c) * 2 + 1] = __halves2bfloat162(dequant_one(a.z, x, w.z, b.z), dequant_one(a.w, x, w.w, b.w));
  }
}

__global__ void dequant_scalar_kernel(const int32_t* __restrict__ acc, int64_t m, int64_t n, const float* __restrict__ sx,
                                      const float* __restrict__ sw, const float* __restrict__ bias,
                                      __nv_bfloat16* __restrict__ y) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= n) return;
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) y[r * n + c] = dequant_one(acc[r * n + c], sx[r], sw[c], bias[c]);
}

}  // namespace

void dequantize_int32_to_bf16(const int32_t* acc, int64_t m, int64_t n, const float* scale_x, const float* scale_w,
                              const float* bias, __nv_bfloat16* y, cudaStream_t s) {
  constexpr int kThreads = 128;
  const unsigned rows = unsigned(m < 65535 ? m : 65535);
  if (n % 4 == 0) {
    const int64_t n4 = n / 4;
    dim3 grid(unsigned((n4 + kThreads - 1) / kThreads), rows);
    dequant_vec4_kernel<<<grid, kThreads, 0, s>>>(reinterpret_cast<const int4*>(acc), m, n4, scale_x,
                                                  reinterpret_cast<const float4*>(scale_w),
                                                  reinterpret_cast<const float4*>(bias),
                                                  reinterpret_cast<__nv_bfloat162*>(y));
  } else {
    dim3 grid(unsigned((n + kThreads - 1) / kThreads), rows);
    dequant_scalar_kernel<<<grid, kThreads, 0, s>>>(acc, m, n, scale_x, scale_w, bias, y);
  }
  BENCH_CUDA(cudaGetLastError());
}

}  // namespace bench
