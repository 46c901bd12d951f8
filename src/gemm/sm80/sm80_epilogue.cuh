// The fused W8A8 epilogue of the mma.sync family, applied straight from the accumulator registers:
//   D[m][n] = float(acc) * (scale_a[m] * scale_b[n]) + bias[n]   in fp32, rounded once to D's type,
// or the raw int32 accumulator. Every store is predicated on M and N, so D's padding columns
// (ldd > N) and rows past M are never written.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cute/tensor.hpp>

#include "int8dit/types.h"

namespace int8dit::sm80 {

// What the kernel reads and writes, in elements; plain values so it travels as a kernel argument.
struct Sm80GemmArgs {
  int m, n, k;
  const int8_t* a;
  int64_t lda;
  const int8_t* b;
  int64_t ldb;
  const float* scale_a;  // null for the raw int32 output
  const float* scale_b;
  const float* bias;     // optional
  bool scale_a_per_row;  // else one value
  bool scale_b_per_col;  // else one value
  void* d;
  int64_t ldd;
};

template <DType Out>
struct OutputPair;  // stores two adjacent columns (n, n+1) of one row, or the first one alone

template <>
struct OutputPair<DType::kBF16> {
  static __device__ void store(void* row, int n, float v0, float v1, bool both) {
    auto* p = static_cast<__nv_bfloat16*>(row) + n;
    if (both) *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(v0, v1);
    else *p = __float2bfloat16_rn(v0);
  }
};
template <>
struct OutputPair<DType::kFP16> {
  static __device__ void store(void* row, int n, float v0, float v1, bool both) {
    auto* p = static_cast<__half*>(row) + n;
    if (both) *reinterpret_cast<__half2*>(p) = __floats2half2_rn(v0, v1);
    else *p = __float2half_rn(v0);
  }
};
template <>
struct OutputPair<DType::kFP32> {
  static __device__ void store(void* row, int n, float v0, float v1, bool both) {
    auto* p = static_cast<float*>(row) + n;
    if (both) *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
    else *p = v0;
  }
};

// One scaled element. NOTE: __fmul_rn/__fadd_rn keep nvcc from contracting the product and the bias
// add into an FMA: the semantics round the product to fp32 before the add, as the CPU reference does.
__device__ __forceinline__ float scaled(int32_t acc, float scale_ab, float bias, bool has_bias) {
  const float y = __fmul_rn(static_cast<float>(acc), scale_ab);
  return has_bias ? __fadd_rn(y, bias) : y;
}

template <DType Out>
constexpr int64_t kOutBytes = (Out == DType::kBF16 || Out == DType::kFP16) ? 2 : 4;

// acc: this thread's accumulator fragment of the CTA tile at (m0, n0); tiled_mma: the mainloop's.
template <DType Out, class Accumulators, class TiledMma, class TileShapeMN>
__device__ void sm80_epilogue(const Sm80GemmArgs& args, const Accumulators& acc, const TiledMma& tiled_mma,
                              TileShapeMN tile_mn, int m0, int n0, int thread_idx) {
  using namespace cute;
  // (blk_m, blk_n) coordinates of every accumulator element this thread holds.
  Tensor coords = tiled_mma.get_thread_slice(thread_idx).partition_C(make_identity_tensor(tile_mn));
  // NOTE: the indexing below relies on the SM80 16x8 accumulator layout, ((2,2), MMA_M, MMA_N): value
  // (c, r) holds column 2t+c of row g+8r, so c = 0, 1 are adjacent columns of one row.
  static_assert(decltype(size<0>(coords))::value == 4, "expected the 16x8 mma.sync accumulator layout");
  constexpr int kMmaM = decltype(size<1>(coords))::value;
  constexpr int kMmaN = decltype(size<2>(coords))::value;
  auto at = [](int c, int r, int i, int j) { return make_coord(make_coord(c, r), i, j); };

  // Per-row scales, read once per thread; per-column factors are read per column pair in the loop.
  // NOTE: keeping only these 2*kMmaM values live next to the accumulators avoids spills at 128x128.
  float sa[kMmaM][2];
  if constexpr (Out != DType::kInt32) {
    CUTE_UNROLL
    for (int i = 0; i < kMmaM; ++i)
      CUTE_UNROLL
      for (int r = 0; r < 2; ++r) {
        const int m = min(m0 + get<0>(coords(at(0, r, i, 0))), args.m - 1);
        sa[i][r] = __ldg(args.scale_a + (args.scale_a_per_row ? m : 0));
      }
  }

  const bool has_bias = args.bias != nullptr;
  CUTE_UNROLL
  for (int j = 0; j < kMmaN; ++j) {
    const int n = n0 + get<1>(coords(at(0, 0, 0, j)));
    if (n >= args.n) continue;
    const bool both = n + 1 < args.n;
    float sb0 = 0.f, sb1 = 0.f, bias0 = 0.f, bias1 = 0.f;
    if constexpr (Out != DType::kInt32) {
      const int n1 = both ? n + 1 : n;
      sb0 = __ldg(args.scale_b + (args.scale_b_per_col ? n : 0));
      sb1 = __ldg(args.scale_b + (args.scale_b_per_col ? n1 : 0));
      if (has_bias) bias0 = __ldg(args.bias + n), bias1 = __ldg(args.bias + n1);
    }
    CUTE_UNROLL
    for (int i = 0; i < kMmaM; ++i) {
      CUTE_UNROLL
      for (int r = 0; r < 2; ++r) {
        const int m = m0 + get<0>(coords(at(0, r, i, j)));
        if (m >= args.m) continue;
        char* row = static_cast<char*>(args.d) + static_cast<int64_t>(m) * args.ldd * kOutBytes<Out>;
        const int32_t acc0 = acc(at(0, r, i, j)), acc1 = acc(at(1, r, i, j));
        if constexpr (Out == DType::kInt32) {
          auto* p = reinterpret_cast<int32_t*>(row) + n;
          if (both) *reinterpret_cast<int2*>(p) = make_int2(acc0, acc1);
          else *p = acc0;
        } else {
          OutputPair<Out>::store(row, n, scaled(acc0, __fmul_rn(sa[i][r], sb0), bias0, has_bias),
                                 scaled(acc1, __fmul_rn(sa[i][r], sb1), bias1, has_bias), both);
        }
      }
    }
  }
}

}  // namespace int8dit::sm80
