// SmoothQuant's x / s_k without a division per element: with r = 1 / s_k rounded to nearest (once
// per channel), q0 = x * r, the exact remainder x - q0 * s_k (one FMA) and q0 + remainder * r (one
// FMA) give x / s_k correctly rounded, the same bits as the IEEE division (Markstein's theorem: r
// within half an ulp of 1 / s_k, q0 within one ulp of x / s_k). It holds while nothing over- or
// underflows, which the ranges below guarantee with a wide margin; values outside them (zeros, NaN,
// Inf, tiny or huge) take the IEEE division. Checked on the CPU for every divisor significand
// (tests/cpp/test_quant_smooth_division.cpp).
//
// Why: the IEEE division is ~8 instructions (a reciprocal on the quarter-rate MUFU unit, its Newton
// steps, the range check FCHK) in a kernel whose speed is its instruction count; this is 3.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define INT8DIT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define INT8DIT_HOST_DEVICE inline
#endif

namespace int8dit::quant {

// |s_k| in [2^-40, 2^40] and |x| in [2^-60, 2^60]: the quotient lies in [2^-100, 2^100] and the
// remainder (about 2^-24 |x|) stays a normal number.
constexpr float kFastDivisorMin = 0x1p-40f, kFastDivisorMax = 0x1p40f;
constexpr float kFastDividendMin = 0x1p-60f, kFastDividendMax = 0x1p60f;

INT8DIT_HOST_DEVICE bool divisor_in_fast_range(float s) {
  const float a = std::fabs(s);
  return a >= kFastDivisorMin && a <= kFastDivisorMax;  // false for NaN
}

// lo / hi: the smallest and largest |x| of the values to divide (hi NaN where one is NaN).
INT8DIT_HOST_DEVICE bool dividends_in_fast_range(float lo, float hi) {
  return lo >= kFastDividendMin && hi <= kFastDividendMax;
}

// A whole row divided through the reciprocals, with no test of its values (the grouped kernel's
// SmoothDivisionOp, row_ops.cuh): its int8 values and row max are the IEEE division's wherever the row
// max m of the quotients lies in [2^-12, 2^20) and every divisor is in its range (the op makes the
// quotients of the others NaN, so m is NaN). Why: a dividend above 2^60 has a quotient of at least
// 2^60 / 2^40 = 2^20; one below 2^-60 (whose quotient may be an ulp off) has a quotient under
// 2^-60 / 2^-40 = 2^-20, which m >= 2^-12 puts below 0.5 / 127 of m: int8 0 either way, and never the
// max. Zeros divide to zero (their sign may differ, which no int8 value or scale shows). A row outside
// (NaN, Inf, a zero row, one of tiny or huge values) is divided again by the IEEE division.
constexpr float kReciprocalRowMaxMin = 0x1p-12f, kReciprocalRowMaxMax = 0x1p20f;
static_assert(kFastDividendMin / kFastDivisorMin * 256.0f <= kReciprocalRowMaxMin &&
                  kFastDividendMax / kFastDivisorMax <= kReciprocalRowMaxMax,
              "the row-max bounds follow from the ranges above");

INT8DIT_HOST_DEVICE bool reciprocal_row_max_exact(float m) {
  return m >= kReciprocalRowMaxMin && m < kReciprocalRowMaxMax;  // false for NaN
}

// x / s, given r = 1 / s rounded to nearest, for s and x in the ranges above.
INT8DIT_HOST_DEVICE float divide_by_reciprocal(float x, float s, float r) {
#if defined(__CUDA_ARCH__)
  const float q0 = __fmul_rn(x, r);  // _rn: never contracted into the FMAs below
  return __fmaf_rn(__fmaf_rn(-q0, s, x), r, q0);
#else
  const float q0 = x * r;
  return std::fma(std::fma(-q0, s, x), r, q0);
#endif
}

}  // namespace int8dit::quant
