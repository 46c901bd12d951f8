// The W8A8 epilogue as CUTLASS 3.x epilogue visitor trees (EVT); the math is in docs/epilogues.md.
//
//   scaled:  D[m][n] = RN_D( fma(float(acc[m][n]), scale_a[m] * scale_b[n], bias[n]) )
//   raw:     D[m][n] = acc[m][n]                                  (int32, no math)
//
// scale_a / scale_b are per-row / per-column vectors or one fp32 value, chosen at run time: the
// broadcast strides are `bool` (true = vector, false = scalar at index 0), so one instantiation serves
// all four scale combinations. bias is a row broadcast whose null pointer reads as -0 (the identity of
// fp32 addition, so without bias y is exactly float(acc) * s, as in the CPU reference).
#pragma once

#include "cute/tensor.hpp"
#include "cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp"
#include "cutlass/epilogue/fusion/sm90_visitor_compute_tma_warpspecialized.hpp"
#include "cutlass/epilogue/fusion/sm90_visitor_load_tma_warpspecialized.hpp"
#include "cutlass/epilogue/thread/activation.h"
#include "cutlass/functional.h"

#include "int8dit/gemm.h"

namespace int8dit::detail::sm90 {

namespace evt = cutlass::epilogue::fusion;
using cute::_0;
using cute::_1;

// y = float(acc) * (sa * sb) + bias, fp32, rounded once to ElementD.
template <class ElementD, class CtaTileShapeMNK>
struct ScaledEpilogue {
  static constexpr auto kRound = cutlass::FloatRoundStyle::round_to_nearest;

  // Per-token scale of A: one value per row m (stride true) or one value (stride false).
  using ScaleA = evt::Sm90ColBroadcast<0, CtaTileShapeMNK, float, float, cute::Stride<bool, _0, _0>>;
  // Per-channel scale of B: one value per column n (stride true) or one value (stride false).
  using ScaleB = evt::Sm90RowBroadcast<0, CtaTileShapeMNK, float, float, cute::Stride<_0, bool, _0>>;
  // Optional bias per column n; a null pointer reads as 0.
  using Bias = evt::Sm90RowBroadcast<0, CtaTileShapeMNK, float, float, cute::Stride<_0, _1, _0>>;

  using ScaleAB = evt::Sm90EVT<evt::Sm90Compute<cutlass::multiplies, float, float, kRound>, ScaleA, ScaleB>;
  // NOTE: multiply_add contracts to one FFMA, so the fp32 result carries a single rounding before the
  // conversion to ElementD (round-to-nearest-even).
  using Callbacks = evt::Sm90EVT<evt::Sm90Compute<cutlass::homogeneous_multiply_add, ElementD, float, kRound>,
                                 evt::Sm90AccFetch, ScaleAB, Bias>;
  using ElementCompute = float;

  static typename Callbacks::Arguments arguments(const GemmParams& p) {
    const bool sa_vector = p.scale_a_mode == ScaleMode::kPerRow;
    const bool sb_vector = p.scale_b_mode == ScaleMode::kPerCol;
    return {
        {},                                                                              // acc
        {{p.scale_a, 0.f, {sa_vector, _0{}, _0{}}}, {p.scale_b, 0.f, {_0{}, sb_vector, _0{}}}, {}},  // sa * sb
        {p.bias, -0.f, {}},                                                              // bias (none: -0)
        {},                                                                              // fma
    };
  }
};

// D = acc, int32, bit-exact. The identity node only carries the type: int32 in, int32 out.
template <class CtaTileShapeMNK>
struct RawAccumulatorEpilogue {
  using Callbacks = evt::Sm90EVT<
      evt::Sm90Compute<cutlass::epilogue::thread::Identity, int32_t, int32_t, cutlass::FloatRoundStyle::round_to_nearest>,
      evt::Sm90AccFetch>;
  using ElementCompute = int32_t;

  static typename Callbacks::Arguments arguments(const GemmParams&) { return {{}, {}}; }
};

}  // namespace int8dit::detail::sm90
