// A trial, not a library path: the Hopper W8A8 GEMM with GELU (tanh form) applied in its epilogue,
// y = gelu(float(acc) * (sa * sb) + bias) rounded once to bf16, for issue 4's question whether GELU
// belongs in the MLP's first linear (then quantize_rows on its output) rather than in the quantization
// of the second linear's input (gelu_quantize). main.cpp times both pipelines in one process.
// The GELU is the one gelu_quantize computes (src/quant/row_ops.cuh: GeluTanhOp::gelu), so the two
// pipelines differ only in where it runs and where the bf16 rounding falls.
#pragma once

#include "gelu_trials.h"
#include "gemm/sm90/w8a8_gemm_sm90.cuh"
#include "quant/row_ops.cuh"

namespace gelu_trial {

namespace evt = cutlass::epilogue::fusion;

// An EVT compute functor: Sm90Compute instantiates it on Array<float, N> fragments.
template <class T>
struct GeluTanhFn;
template <int N>
struct GeluTanhFn<cutlass::Array<float, N>> {
  CUTLASS_DEVICE cutlass::Array<float, N> operator()(const cutlass::Array<float, N>& x) const {
    cutlass::Array<float, N> y;
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < N; ++i) y[i] = int8dit::quant::GeluTanhOp::gelu(x[i]);
    return y;
  }
};
template <>
struct GeluTanhFn<float> {};  // only names the (empty) arguments type to Sm90Compute

// The library's scaled epilogue (epilogue_evt.cuh: ScaledEpilogue) with its fp32 result fed to GELU,
// which rounds once to ElementD. Arguments as the library's, one level deeper.
template <class ElementD, class CtaTileShapeMNK>
struct ScaledGeluEpilogue {
  using Scaled = int8dit::detail::sm90::ScaledEpilogue<ElementD, CtaTileShapeMNK>;
  static constexpr auto kRound = cutlass::FloatRoundStyle::round_to_nearest;
  using Linear = evt::Sm90EVT<evt::Sm90Compute<cutlass::homogeneous_multiply_add, float, float, kRound>,
                              evt::Sm90AccFetch, typename Scaled::ScaleAB, typename Scaled::Bias>;
  using Callbacks = evt::Sm90EVT<evt::Sm90Compute<GeluTanhFn, ElementD, float, kRound>, Linear>;
  using ElementCompute = float;

  static typename Callbacks::Arguments arguments(const int8dit::GemmParams& p) {
    using cute::_0;
    const bool sa_vector = p.scale_a_mode == int8dit::ScaleMode::kPerRow;
    const bool sb_vector = p.scale_b_mode == int8dit::ScaleMode::kPerCol;
    typename Linear::Arguments linear{
        {},                                                                                          // acc
        {{p.scale_a, 0.f, {sa_vector, _0{}, _0{}}}, {p.scale_b, 0.f, {_0{}, sb_vector, _0{}}}, {}},  // sa * sb
        {p.bias, -0.f, {}},                                                                          // bias
        {},                                                                                          // fma
    };
    return {linear, {}};
  }
};

// The body of every trial_*.cu: the library's kernel for `Config` with the GELU epilogue.
template <class Config>
int8dit::Status run_gelu(const int8dit::GemmParams& p, cudaStream_t stream) {
  using int8dit::detail::sm90::W8A8GemmSm90;
  return W8A8GemmSm90<Config, ScaledGeluEpilogue>::run(p, stream, int8dit::detail::StreamOrder::kProgrammatic);
}

}  // namespace gelu_trial
