// Division of 31-bit unsigned integers by a divisor fixed for a whole launch, as a multiply-high and a
// shift: the row kernels split a flat row index into (batch, token, head) twice a row, and a 32-bit
// division compiles to ~20 instructions (a float reciprocal on the MUFU unit and its corrections).
//
// With s = ceil(log2 d) and p = 31 + s, the multiplier m = ceil(2^p / d) lies in [2^31, 2^32], and
// floor(n * m / 2^p) = floor(n / d) for every n < 2^31: n * m / 2^p = n / d + n * (m - 2^p / d) / 2^p,
// and that excess is below n / 2^p < 2^-s <= 1 / d, too little to reach the next multiple of d.
// d = 1 would need m = 2^32, so it is kept apart (the quotient is n). Host code builds it, device code
// divides; tests/cpp/test_magic_division.cpp checks the formula against '/' on the CPU.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define INT8DIT_MAGIC_HD __host__ __device__ __forceinline__
#else
#define INT8DIT_MAGIC_HD inline
#endif

namespace int8dit::detail {

struct MagicDivisor {
  uint32_t divisor = 1;
  uint32_t multiplier = 0;  // unused for divisor 1
  uint32_t shift = 0;       // p - 32

  // divisor in [1, 2^31 - 1].
  static MagicDivisor of(uint32_t d) {
    MagicDivisor m;
    m.divisor = d;
    if (d == 1) return m;
    uint32_t s = 0;
    while ((uint64_t{1} << s) < d) ++s;  // ceil(log2 d)
    const uint32_t p = 31 + s;
    m.multiplier = static_cast<uint32_t>(((uint64_t{1} << p) + d - 1) / d);
    m.shift = p - 32;
    return m;
  }

  // floor(n / divisor) for n < 2^31.
  INT8DIT_MAGIC_HD uint32_t divide(uint32_t n) const {
    if (divisor == 1) return n;
#if defined(__CUDA_ARCH__)
    return __umulhi(n, multiplier) >> shift;
#else
    return static_cast<uint32_t>((static_cast<uint64_t>(n) * multiplier) >> 32) >> shift;
#endif
  }
};

}  // namespace int8dit::detail
