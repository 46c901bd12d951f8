// Chan's parallel update of (count, mean, m2) moments: how the LayerNorm quantization kernel reduces
// a row's mean and variance in one barrier (RowReducer::mean_m2). Host and device, so the CPU tests
// replay the kernel's reduction order (tests/cpp/test_quant_moments.cpp).
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define INT8DIT_HOST_DEVICE __host__ __device__
#else
#define INT8DIT_HOST_DEVICE
#endif

namespace int8dit::quant {

// m2 = sum over the values of (x - mean)^2.
struct Moments {
  float n, mean, m2;
};

// a's values joined by b's. The kernel always passes the lower lane's (or warp's) moments as a, so
// the two lanes of a butterfly pair compute the same expression on the same operands: the same bits.
INT8DIT_HOST_DEVICE inline Moments join_moments(const Moments& a, const Moments& b) {
  const float n = a.n + b.n;
  if (n == 0.0f) return {0.0f, 0.0f, 0.0f};
  const float fb = b.n / n;  // counts are small integers: exact inputs
  const float d = b.mean - a.mean;
  return {n, fmaf(d, fb, a.mean), fmaf(d * d, a.n * fb, a.m2 + b.m2)};
}

}  // namespace int8dit::quant
