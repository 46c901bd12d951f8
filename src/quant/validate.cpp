// Argument checks for row quantization, shared by the GPU kernels and the CPU reference.
#include <cstdint>
#include <string>

#include "int8dit/quantize.h"

namespace int8dit {

Status validate(const QuantizeRowsParams& p) {
  auto invalid = [](const std::string& m) { return Status(StatusCode::kInvalidArgument, m); };
  auto s = [](int64_t v) { return std::to_string(v); };
  if (p.rows < 0 || p.cols < 0)
    return invalid("negative size rows = " + s(p.rows) + ", cols = " + s(p.cols) + ": sizes must be >= 0");
  if (p.cols == 0) return invalid("cols (K) = 0: there is nothing to quantize in a row; K must be > 0");
  if (p.x_type != DType::kBF16 && p.x_type != DType::kFP16 && p.x_type != DType::kFP32)
    return invalid(std::string("input type ") + to_string(p.x_type) + " cannot be quantized: use bf16 or fp16 (fp32 on the CPU)");
  if (p.ldx < p.cols) return invalid("ldx = " + s(p.ldx) + " is smaller than cols = " + s(p.cols) + ": ldx must be >= cols");
  if (p.ldq < p.cols) return invalid("ldq = " + s(p.ldq) + " is smaller than cols = " + s(p.cols) + ": ldq must be >= cols");
  if (p.rows == 0) return Status::Ok();
  if (!p.x) return invalid("x (the input) is null");
  if (!p.q) return invalid("q (the int8 output) is null");
  if (!p.scale) return invalid("scale (the per-row fp32 output) is null");
  return Status::Ok();
}

}  // namespace int8dit
