// CPU reference of gated_add (residual.h): the tests' oracle.
#include <cmath>
#include <cstdint>

#include "int8dit/residual.h"
#include "ref/half_bits.h"

namespace int8dit::ref {
namespace {

float load(const void* base, DType type, int64_t i) {
  const uint16_t bits = static_cast<const uint16_t*>(base)[i];
  return type == DType::kBF16 ? bf16_to_float(bits) : fp16_to_float(bits);
}

}  // namespace

Status gated_add(const GatedAddParams& p) {
  if (Status st = validate(p); !st.ok()) return st;
  auto* out = static_cast<uint16_t*>(p.out);
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t gate_row = p.gate || p.gate_fp32 ? (r / p.tokens_per_batch) * p.ld_gate : 0;
    for (int64_t k = 0; k < p.cols; ++k) {
      const float g = p.gate ? load(p.gate, p.type, gate_row + k) : p.gate_fp32 ? p.gate_fp32[gate_row + k] : 1.0f;
      const float u = p.update ? load(p.update, p.type, r * p.ld_update + k) : 1.0f;
      const float sum = std::fma(g, u, load(p.x, p.type, r * p.ldx + k));
      out[r * p.ld_out + k] = p.type == DType::kBF16 ? float_to_bf16(sum) : float_to_fp16(sum);
    }
  }
  return Status::Ok();
}

}  // namespace int8dit::ref
