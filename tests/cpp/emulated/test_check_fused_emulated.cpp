// `int8dit check`'s fused step (tools/int8dit/check_fused.cpp) without a GPU: the CUDA runtime calls it
// makes are stubbed with host memory, and the library's GPU entry points are stood in for by an fp32
// model of the fused kernels (another reduction order than the reference, rsqrt and GELU a few ulp off,
// as the GPU's are). A correct model must pass over many seeds and shapes; a model with a kernel's
// typical bug (a row or an element left unwritten, garbage in a NaN row) must fail. So the check's
// comparisons, tolerances and poisons are tested on every CI run, not only where a GPU is lent.
//
// Built apart from the library (tests/CMakeLists.txt), whose GPU entry points this file defines.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "check_fused.h"
#include "int8dit/quantize.h"
#include "emulated_check.h"
#include "ref/half_bits.h"

// (The CUDA runtime: cuda_runtime_stubs.cpp.)

namespace {

using int8dit::ref::bf16_to_float;
using int8dit::ref::float_to_bf16;

// kRmsNormIgnored: LayerNorm's statistics where the call asks for RMSNorm's (the flag dropped on its way).
// kYTwoUlpsOff: y's first element of each row two bf16 ulps from the value (q as it should be), which the
// check's y rule must still tell from the fp32 slack it allows near zero.
enum class Bug { kNone, kNaNRowUnwritten, kLastElementUnwritten, kNaNRowGarbage, kRmsNormIgnored, kYTwoUlpsOff };
Bug g_bug = Bug::kNone;
std::mt19937 g_rng(1);

float off_by_ulps(float v, int ulps) {  // what rsqrtf, exp2f and a fast division may give
  if (!std::isfinite(v)) return v;
  std::uniform_int_distribution<int> d(-ulps, ulps);
  for (int n = d(g_rng); n != 0; n += n > 0 ? -1 : 1) v = std::nextafter(v, n > 0 ? INFINITY : -INFINITY);
  return v;
}

float tree_sum(std::vector<float> v) {  // pairwise, as a block reduction adds
  for (size_t n = v.size(); n > 1;) {
    const size_t h = (n + 1) / 2;
    for (size_t i = 0; i + h < n; ++i) v[i] += v[i + h];
    n = h;
  }
  return v.empty() ? 0.0f : v[0];
}

void quantize_row(const std::vector<float>& v, int8_t* q, float* scale, int64_t r) {
  if (g_bug == Bug::kNaNRowUnwritten && r == 1) return;
  float amax = 0.0f;
  for (float e : v) amax = (std::isnan(amax) || std::isnan(e)) ? NAN : std::fmax(amax, std::fabs(e));
  const int64_t n = static_cast<int64_t>(v.size());
  if (!std::isfinite(amax)) {
    scale[r] = NAN;
    for (int64_t k = 0; k < n; ++k) q[k] = g_bug == Bug::kNaNRowGarbage ? 9 : 0;
    return;
  }
  scale[r] = amax / 127.0f;
  const float inv = amax == 0.0f ? 0.0f : 127.0f / amax;
  for (int64_t k = 0; k < n - (g_bug == Bug::kLastElementUnwritten ? 1 : 0); ++k)
    q[k] = static_cast<int8_t>(std::fmin(127.0f, std::fmax(-127.0f, std::nearbyint(v[k] * inv))));
}

float at(const void* base, int64_t i) { return bf16_to_float(static_cast<const uint16_t*>(base)[i]); }

float gelu(float x) {  // the kernels' form, x / (1 + 2^a)
  const float c2 = -2.0f * 0.7978845608028654f * 1.4426950408889634f, c1 = c2 * 0.044715f;
  return off_by_ulps(x / (1.0f + off_by_ulps(std::exp2(std::fmaf(c1 * x, x * x, c2 * x)), 2)), 2);
}

}  // namespace

// The library's GPU entry points, as the model computes them.
namespace int8dit {

Status layernorm_modulate_quantize(const LayerNormModulateQuantizeParams& p, cudaStream_t) {
  if (Status st = validate(p); !st.ok()) return st;
  if (p.update && p.cols > 16384) return Status(StatusCode::kInvalidArgument, "the gated residual: > 16384 columns");
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t b = r / p.tokens_per_batch;
    std::vector<float> x(p.cols), sq(p.cols), v(p.cols);
    for (int64_t k = 0; k < p.cols; ++k) {
      x[k] = at(p.x, r * p.ldx + k);
      if (p.update) {
        const float g = p.gate ? at(p.gate, b * p.ld_gate + k) : 1.0f;
        const uint16_t h = float_to_bf16(std::fmaf(g, at(p.update, r * p.ld_update + k), x[k]));
        if (!(g_bug == Bug::kNaNRowUnwritten && r == 1)) static_cast<uint16_t*>(p.x_out)[r * p.ld_x_out + k] = h;
        x[k] = bf16_to_float(h);
      }
    }
    const bool rms = p.rms_norm && g_bug != Bug::kRmsNormIgnored;
    const float mean = rms ? 0.0f : tree_sum(x) / static_cast<float>(p.cols);
    for (int64_t k = 0; k < p.cols; ++k) sq[k] = (x[k] - mean) * (x[k] - mean);
    const float rstd = off_by_ulps(1.0f / std::sqrt(tree_sum(sq) / static_cast<float>(p.cols) + p.eps), 2);
    for (int64_t k = 0; k < p.cols; ++k) {
      const float sc = at(p.mod_scale, b * p.ld_mod + k), sh = at(p.mod_shift, b * p.ld_mod + k);
      v[k] = std::fmaf(std::fmaf(x[k], rstd, -mean * rstd), 1.0f + sc, sh);
      if (p.y && !(g_bug == Bug::kNaNRowUnwritten && r == 1)) {
        const uint16_t h = float_to_bf16(v[k]);
        static_cast<uint16_t*>(p.y)[r * p.ldy + k] =
            g_bug == Bug::kYTwoUlpsOff && k == 0 && std::isfinite(v[k]) && std::fabs(v[k]) > 1e-3f ? h + 2 : h;
      }
    }
    quantize_row(v, p.q + r * p.ldq, p.scale, r);
  }
  return Status::Ok();
}

Status rmsnorm_quantize(const RmsNormQuantizeParams& p, cudaStream_t) {
  if (Status st = validate(p); !st.ok()) return st;
  for (int64_t r = 0; r < p.rows; ++r) {
    std::vector<float> sq(p.cols), v(p.cols);
    for (int64_t k = 0; k < p.cols; ++k) sq[k] = at(p.x, r * p.ldx + k) * at(p.x, r * p.ldx + k);
    const float rstd = off_by_ulps(1.0f / std::sqrt(tree_sum(sq) / static_cast<float>(p.cols) + p.eps), 2);
    for (int64_t k = 0; k < p.cols; ++k) v[k] = at(p.x, r * p.ldx + k) * rstd * at(p.weight, k);
    quantize_row(v, p.q + r * p.ldq, p.scale, r);
  }
  return Status::Ok();
}

Status gelu_quantize(const GeluQuantizeParams& p, cudaStream_t) {
  if (Status st = validate(p); !st.ok()) return st;
  for (int64_t r = 0; r < p.rows; ++r) {
    std::vector<float> v(p.cols);
    for (int64_t k = 0; k < p.cols; ++k) v[k] = gelu(at(p.x, r * p.ldx + k));
    quantize_row(v, p.q + r * p.ldq, p.scale, r);
  }
  return Status::Ok();
}

Status concat_gelu_quantize(const ConcatGeluQuantizeParams& p, cudaStream_t) {
  if (Status st = validate(p); !st.ok()) return st;
  for (int64_t r = 0; r < p.rows; ++r) {
    std::vector<float> v(p.a_cols + p.h_cols);
    for (int64_t k = 0; k < p.a_cols; ++k) v[k] = at(p.a, r * p.lda + k);
    for (int64_t k = 0; k < p.h_cols; ++k) v[p.a_cols + k] = gelu(at(p.h, r * p.ldh + k));
    quantize_row(v, p.q + r * p.ldq, p.scale, r);
  }
  return Status::Ok();
}

// SiLU as the kernels compute it, g / (1 + 2^(-g log2 e)), each step a couple of ulps off.
static float kernel_silu(float g) { return off_by_ulps(g / (1.0f + off_by_ulps(std::exp2(-g * 1.4426950408889634f), 2)), 2); }

Status swiglu_quantize(const SwigluQuantizeParams& p, cudaStream_t) {
  if (Status st = validate(p); !st.ok()) return st;
  if (p.cols % 8 != 0 || p.cols > 24576) return Status(StatusCode::kNotSupported, "swiglu: not a vector layout");
  for (int64_t r = 0; r < p.rows; ++r) {
    std::vector<float> v(p.cols);
    for (int64_t k = 0; k < p.cols; ++k) {  // the kernel's form, g / (1 + 2^(-g log2 e)), times up
      v[k] = kernel_silu(at(p.gate, r * p.ld_gate + k)) * at(p.up, r * p.ld_up + k);
    }
    quantize_row(v, p.q + r * p.ldq, p.scale, r);
  }
  return Status::Ok();
}

Status concat_swiglu_quantize(const ConcatSwigluQuantizeParams& p, cudaStream_t) {
  if (Status st = validate(p); !st.ok()) return st;
  if (p.a_cols % 8 != 0 || p.h_cols % 8 != 0 || p.a_cols + p.h_cols > 24576)
    return Status(StatusCode::kNotSupported, "concat_swiglu: not a vector layout");
  for (int64_t r = 0; r < p.rows; ++r) {
    std::vector<float> v(p.a_cols + p.h_cols);
    for (int64_t k = 0; k < p.a_cols; ++k) v[k] = at(p.a, r * p.lda + k);
    for (int64_t k = 0; k < p.h_cols; ++k) {  // the kernel's form, as swiglu_quantize above
      v[p.a_cols + k] = kernel_silu(at(p.gate, r * p.ld_gate + k)) * at(p.up, r * p.ld_up + k);
    }
    quantize_row(v, p.q + r * p.ldq, p.scale, r);
  }
  return Status::Ok();
}

}  // namespace int8dit

namespace {

using int8dit::cli::GpuResult;

GpuResult check(int64_t m, int64_t k, uint32_t seed) {
  return int8dit::cli::check_fused_producers(check_activations(m, k, seed), m, k, seed);
}

using BugGuard = ScopedSet<Bug>;

TEST(CheckFusedEmulated, AModelOfCorrectKernelsPassesOverSeedsAndShapes) {
  BugGuard none(g_bug, Bug::kNone);
  for (const auto& [m, k] : {std::pair<int64_t, int64_t>{77, 512}, {1, 16}, {2, 16}, {3, 32}, {64, 1008}})
    for (uint32_t seed = 1; seed <= 8; ++seed) EXPECT_EQ(check(m, k, seed), GpuResult::kAgrees) << m << " x " << k;
}

TEST(CheckFusedEmulated, RowsWiderThanTheResidualKernelTakesSkipItWithoutFailing) {
  BugGuard none(g_bug, Bug::kNone);
  EXPECT_EQ(check(4, 16400, 1), GpuResult::kAgrees);
}

TEST(CheckFusedEmulated, KernelsThatLeaveOutputsUnwrittenOrWrongFail) {
  for (const Bug bug : {Bug::kNaNRowUnwritten, Bug::kLastElementUnwritten, Bug::kNaNRowGarbage, Bug::kRmsNormIgnored,
                        Bug::kYTwoUlpsOff}) {
    BugGuard with(g_bug, bug);
    EXPECT_EQ(check(77, 512, 1), GpuResult::kMismatch) << "bug " << static_cast<int>(bug);
  }
}

}  // namespace
