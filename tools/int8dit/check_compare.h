// Comparisons for `int8dit check`: exact for integers and scales, units in the last place for bf16.
// NaN matches NaN only (a NaN row must stay NaN; a number where NaN belongs is a mismatch).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ref/half_bits.h"

namespace int8dit::cli {

struct Comparison {
  int64_t compared = 0;
  int64_t exact = 0;       // bit-identical (or both NaN)
  int64_t mismatches = 0;  // beyond the allowed distance
  int64_t max_ulp = 0;     // largest distance among non-NaN pairs
  std::string first;       // "(row, col): got .. want .."
};

// bf16 bit patterns ordered as integers, so that adjacent values differ by 1.
inline int64_t bf16_ordinal(uint16_t h) { return (h & 0x8000) ? -int64_t(h & 0x7fff) : int64_t(h); }

inline bool bf16_is_nan(uint16_t h) { return (h & 0x7fff) > 0x7f80; }

// Element-wise over an [rows, cols] block with row stride ld; `tolerance_ulp` 0 means bit-exact.
template <typename T, typename Distance, typename Show>
Comparison compare_block(const T* got, const T* want, int64_t rows, int64_t cols, int64_t ld, int64_t tolerance_ulp,
                         Distance distance, Show show) {
  Comparison c;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) {
      const T g = got[r * ld + k], w = want[r * ld + k];
      ++c.compared;
      const int64_t d = distance(g, w);  // < 0: NaN on exactly one side
      if (d == 0) ++c.exact;
      if (d > c.max_ulp) c.max_ulp = d;
      if (d < 0 || d > tolerance_ulp) {
        if (c.mismatches++ == 0)
          c.first = "(" + std::to_string(r) + ", " + std::to_string(k) + "): got " + show(g) + ", want " + show(w);
      }
    }
  return c;
}

// One line for a comparison: "ok" with its figures, or "FAIL" with the first difference. True where ok.
inline bool report(const char* what, const Comparison& c, const char* rule) {
  if (c.mismatches == 0) {
    std::printf("  ok    %-34s %lld values, %lld bit-exact, max %lld ulp (%s)\n", what, (long long)c.compared,
                (long long)c.exact, (long long)c.max_ulp, rule);
    return true;
  }
  std::printf("  FAIL  %-34s %lld of %lld values differ (%s); first at %s\n", what, (long long)c.mismatches,
              (long long)c.compared, rule, c.first.c_str());
  return false;
}

inline int64_t bf16_distance(uint16_t a, uint16_t b) {
  if (bf16_is_nan(a) || bf16_is_nan(b)) return (bf16_is_nan(a) && bf16_is_nan(b)) ? 0 : -1;
  return std::llabs(bf16_ordinal(a) - bf16_ordinal(b));
}

inline int64_t exact_distance_i32(int32_t a, int32_t b) { return a == b ? 0 : -1; }
inline int64_t exact_distance_i8(int8_t a, int8_t b) { return a == b ? 0 : -1; }
inline int64_t exact_distance_f32(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return (std::isnan(a) && std::isnan(b)) ? 0 : -1;
  return ref::float_bits(a) == ref::float_bits(b) ? 0 : -1;
}

}  // namespace int8dit::cli
