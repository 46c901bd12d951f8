// The last N % (16 / sizeof(D)) output columns, computed without TMA.
//
// NOTE: a TMA store clips at 16-byte granularity of the row, not per element: with an inner extent N
// that is not a multiple of 16 bytes it also writes the elements from N up to the next 16-byte
// boundary, which in a strided view (ldd > N) belong to someone else. So the wgmma kernel writes the
// 16-byte-aligned columns [0, N_main) and this kernel the few columns [N_main, N), element by element,
// with the same epilogue arithmetic as the EVT (docs/epilogues.md).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <type_traits>

#include "cutlass/numeric_types.h"
#include "int8dit/gemm.h"

namespace int8dit::detail::sm90 {

struct RaggedColumnsArgs {
  const int8_t* a;
  const int8_t* b;
  const float* scale_a;
  const float* scale_b;
  const float* bias;
  void* d;
  int64_t lda, ldb, ldd, k;
  int64_t n_begin;  // first column computed here
  bool sa_per_row, sb_per_col;
};

template <class T>
__device__ inline T round_output(float y) {
  if constexpr (std::is_same_v<T, cutlass::bfloat16_t>) return T::bitcast(__bfloat16_as_ushort(__float2bfloat16_rn(y)));
  else if constexpr (std::is_same_v<T, cutlass::half_t>) return T::bitcast(__half_as_ushort(__float2half_rn(y)));
  else return y;
}

// One block of 128 threads per output element (row blockIdx.x, column n_begin + blockIdx.y):
// 16-byte loads of A and B, dp4a, a block reduction, the epilogue.
template <class ElementD>
__global__ void __launch_bounds__(128) ragged_columns_kernel(RaggedColumnsArgs args) {
  const int64_t m = blockIdx.x;
  const int64_t n = args.n_begin + blockIdx.y;
  const int4* a = reinterpret_cast<const int4*>(args.a + m * args.lda);
  const int4* b = reinterpret_cast<const int4*>(args.b + n * args.ldb);
  int32_t acc = 0;
  for (int64_t i = threadIdx.x; i < args.k / 16; i += blockDim.x) {
    const int4 va = a[i], vb = b[i];
    acc = __dp4a(va.x, vb.x, acc);
    acc = __dp4a(va.y, vb.y, acc);
    acc = __dp4a(va.z, vb.z, acc);
    acc = __dp4a(va.w, vb.w, acc);
  }
  for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
  __shared__ int32_t warp_sums[4];
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x != 0) return;
  acc = warp_sums[0] + warp_sums[1] + warp_sums[2] + warp_sums[3];
  ElementD* d = static_cast<ElementD*>(args.d) + m * args.ldd + n;
  if constexpr (std::is_same_v<ElementD, int32_t>) {
    *d = acc;
  } else {
    const float sab = __fmul_rn(args.scale_a[args.sa_per_row ? m : 0], args.scale_b[args.sb_per_col ? n : 0]);
    const float bias = args.bias ? args.bias[n] : -0.f;  // -0: the identity of fp32 addition
    *d = round_output<ElementD>(__fmaf_rn(__int2float_rn(acc), sab, bias));
  }
}

template <class ElementD>
cudaError_t launch_ragged_columns(const GemmParams& p, int64_t n_begin, cudaStream_t stream) {
  RaggedColumnsArgs args{p.a,     p.b,     p.scale_a, p.scale_b, p.bias,
                         p.d,     p.lda,   p.ldb,     p.ldd,     p.k,
                         n_begin, p.scale_a_mode == ScaleMode::kPerRow, p.scale_b_mode == ScaleMode::kPerCol};
  // NOTE: gridDim.x (rows) allows 2^31 - 1; the columns are fewer than 16 / sizeof(D) <= 8.
  const dim3 grid(static_cast<unsigned>(p.m), static_cast<unsigned>(p.n - n_begin));
  ragged_columns_kernel<ElementD><<<grid, 128, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace int8dit::detail::sm90
