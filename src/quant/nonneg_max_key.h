// The max of values >= 0 or NaN as an unsigned integer max: the grouped kernel's row max takes one
// redux.sync.max.u32 a warp (row_kernels.cuh: warp_max_nonneg) instead of five shuffles and maxima.
//
// With the sign bit cleared, a float's bits read as an unsigned integer keep the order of the values
// for +0 <= x <= +Inf, and every NaN (exponent all ones, mantissa nonzero) lies above +Inf: the
// integer max is the values' max, and a NaN anywhere gives a NaN, as max.NaN.f32 does (the NaN's
// payload may be another one, which no caller reads: row_quant and the range tests only ask whether
// it is a NaN). Clearing the sign also maps -0 to +0, the value max.NaN treats as equal to it.
// Checked on the CPU against max.NaN's rule (tests/cpp/test_quant_nonneg_max_key.cpp).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define INT8DIT_KEY_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define INT8DIT_KEY_HOST_DEVICE inline
#endif

namespace int8dit::quant {

INT8DIT_KEY_HOST_DEVICE uint32_t nonneg_max_key(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v) & 0x7fffffffu;
#else
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u & 0x7fffffffu;
#endif
}

INT8DIT_KEY_HOST_DEVICE float from_nonneg_max_key(uint32_t key) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(key);
#else
  float v;
  std::memcpy(&v, &key, sizeof v);
  return v;
#endif
}

}  // namespace int8dit::quant

#undef INT8DIT_KEY_HOST_DEVICE
