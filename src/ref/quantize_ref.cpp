// CPU reference of symmetric per-row int8 quantization (DESIGN.md "Semantics"), bit for bit what
// the GPU kernels compute. Built with -ffp-contract=off (src/CMakeLists.txt): see gemm_ref.cpp.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "int8dit/reference.h"
#include "ref/half_bits.h"
#include "ref/parallel_rows.h"

namespace int8dit::ref {
namespace {

float load(const void* x, DType type, int64_t i) {
  switch (type) {
    case DType::kBF16: return bf16_to_float(static_cast<const uint16_t*>(x)[i]);
    case DType::kFP16: return fp16_to_float(static_cast<const uint16_t*>(x)[i]);
    default: return static_cast<const float*>(x)[i];
  }
}

// q = clamp(rint(v), -127, 127), half to even. A NaN product (0 * inf, when amax is so small that
// 127 / amax overflows) gives 0, as the GPU's saturating float->int8 conversion does.
int8_t round_clamp(float v) {
  if (std::isnan(v)) return 0;
  // NOTE: std::nearbyint rounds in the current mode, which is round-to-nearest-even unless a caller
  // changed it with fesetround; std::round would round ties away from zero, which is wrong here.
  const float r = std::nearbyint(v);
  return static_cast<int8_t>(r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r));
}

void quantize_row(const QuantizeRowsParams& p, int64_t row, std::vector<float>& x) {
  const void* src = p.x_type == DType::kFP32
                        ? static_cast<const void*>(static_cast<const float*>(p.x) + row * p.ldx)
                        : static_cast<const void*>(static_cast<const uint16_t*>(p.x) + row * p.ldx);
  int8_t* q = p.q + row * p.ldq;

  float amax = 0.0f;
  bool finite = true;
  for (int64_t k = 0; k < p.cols; ++k) {
    float v = load(src, p.x_type, k);
    if (p.smooth) v = v / p.smooth[k];
    finite = finite && std::isfinite(v);
    amax = std::fmax(amax, std::fabs(v));
    x[static_cast<size_t>(k)] = v;
  }
  if (!finite) {
    // A NaN/Inf row has no meaningful scale: NaN poisons every output of the row downstream.
    p.scale[row] = std::numeric_limits<float>::quiet_NaN();
    for (int64_t k = 0; k < p.cols; ++k) q[k] = 0;
    return;
  }
  if (amax == 0.0f) {
    p.scale[row] = 0.0f;
    for (int64_t k = 0; k < p.cols; ++k) q[k] = 0;
    return;
  }
  p.scale[row] = amax / 127.0f;
  const float inv = 127.0f / amax;
  for (int64_t k = 0; k < p.cols; ++k) q[k] = round_clamp(x[static_cast<size_t>(k)] * inv);
}

}  // namespace

Status quantize_rows(const QuantizeRowsParams& p) {
  Status st = validate(p);
  if (!st.ok() || p.rows == 0) return st;
  parallel_rows(p.rows, p.cols, [&p](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(p.cols));
    for (int64_t r = begin; r < end; ++r) quantize_row(p, r, row);
  });
  return Status::Ok();
}

}  // namespace int8dit::ref
