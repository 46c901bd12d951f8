// Bit-exact conversions between fp32 and the 16-bit float formats (bf16, IEEE fp16), on the host,
// without CUDA headers. The CPU reference decodes its inputs and rounds its outputs with these, and
// the tests use them to build inputs and read outputs. Rounding is round-to-nearest-even, NaN stays
// NaN (quiet, sign kept), overflow goes to infinity and fp16 subnormals are produced and read.
#pragma once

#include <cstdint>
#include <cstring>

namespace int8dit::ref {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t float_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  // Adding 0x7fff plus the lowest kept bit rounds half to even; a carry into the exponent is correct
  // (it rounds up to the next binade, or to infinity past the largest finite bf16).
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0x1fu) return bits_float(sign | 0x7f800000u | (man << 13));  // Inf / NaN (payload kept)
  if (exp == 0) {
    // Zero or subnormal: man * 2^-24, exact in fp32.
    const float mag = static_cast<float>(man) * bits_float(0x33800000u);  // 2^-24
    return bits_float(sign | float_bits(mag));
  }
  return bits_float(sign | ((exp + 112u) << 23) | (man << 13));  // rebias 15 -> 127
}

inline uint16_t float_to_fp16(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // quiet NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to Inf
  if (abs < 0x38800000u) {
    // Below the smallest normal fp16 (2^-14): a subnormal, in units of 2^-24. Shift the full
    // significand right and round half to even on the bits shifted out.
    if (abs < 0x33000000u) return sign;  // below 2^-25: rounds to zero (2^-25 itself is a tie to 0)
    const uint32_t e = abs >> 23;                  // biased fp32 exponent, 102..112
    const uint32_t significand = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;               // 14..24
    uint32_t result = significand >> shift;
    const uint32_t rest = significand & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (result & 1u))) ++result;  // may carry into the smallest normal
    return static_cast<uint16_t>(sign | result);
  }
  // Normal: rebias 127 -> 15 and round the 13 dropped mantissa bits half to even.
  const uint32_t rebiased = abs - (112u << 23);
  const uint32_t rounding = 0xfffu + ((rebiased >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rebiased + rounding) >> 13));
}

}  // namespace int8dit::ref
