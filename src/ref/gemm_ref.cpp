// CPU reference of the W8A8 GEMM: exact int32 accumulation, then the fp32 epilogue rounded once.
//
// NOTE: this file is compiled with -ffp-contract=off (src/CMakeLists.txt). The epilogue is two
// roundings, `float(acc) * (sa * sb)` then `+ bias`; a compiler allowed to contract them into one
// fused multiply-add (the default for GCC, and for Clang on some targets) would round once and give
// a different last bit on machines with FMA, so the oracle would depend on the build machine.
#include <cstdint>

#include "int8dit/reference.h"
#include "ref/half_bits.h"
#include "ref/parallel_rows.h"

namespace int8dit::ref {
namespace {

int32_t dot_int8(const int8_t* a, const int8_t* b, int64_t k) {
  // 127 * 127 * K < 2^31 for K <= kMaxK (validated), so the int32 sum is exact, never wraps.
  int32_t acc = 0;
  for (int64_t i = 0; i < k; ++i) acc += static_cast<int32_t>(a[i]) * static_cast<int32_t>(b[i]);
  return acc;
}

void store(const GemmParams& p, int64_t m, int64_t n, int32_t acc) {
  const int64_t at = m * p.ldd + n;
  if (p.d_type == DType::kInt32) {
    static_cast<int32_t*>(p.d)[at] = acc;
    return;
  }
  const float sa = p.scale_a_mode == ScaleMode::kPerTensor ? p.scale_a[0] : p.scale_a[m];
  const float sb = p.scale_b_mode == ScaleMode::kPerTensor ? p.scale_b[0] : p.scale_b[n];
  // No bias adds -0.0f, the exact identity of fp32 addition (x + -0 == x, also for x = -0), so the
  // result equals a kernel that skips the addition, to the sign of zero.
  const float y = epilogue_value(acc, sa, sb, p.bias ? p.bias[n] : -0.0f);
  switch (p.d_type) {
    case DType::kBF16: static_cast<uint16_t*>(p.d)[at] = float_to_bf16(y); break;
    case DType::kFP16: static_cast<uint16_t*>(p.d)[at] = float_to_fp16(y); break;
    default: static_cast<float*>(p.d)[at] = y; break;
  }
}

}  // namespace

float epilogue_value(int32_t acc, float scale_a, float scale_b, float bias) {
  const float scale = scale_a * scale_b;
  const float scaled = static_cast<float>(acc) * scale;
  return scaled + bias;
}

Status gemm_w8a8(const GemmParams& p) {
  Status st = validate(p);
  if (!st.ok() || p.m == 0) return st;
  parallel_rows(p.m, p.n * p.k, [&p](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      const int8_t* a = p.a + m * p.lda;
      for (int64_t n = 0; n < p.n; ++n) store(p, m, n, dot_int8(a, p.b + n * p.ldb, p.k));
    }
  });
  return Status::Ok();
}

}  // namespace int8dit::ref
