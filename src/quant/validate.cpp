// Argument checks for row quantization, shared by the GPU kernels and the CPU reference.
#include <cmath>
#include <cstdint>
#include <string>

#include "core/cuda_check.h"
#include "int8dit/quantize.h"

namespace int8dit {

namespace {

// The kernels launch up to a CTA a row, and a grid's x dimension holds at most 2^31 - 1.
constexpr int64_t kMaxRowCount = 2147483647;
constexpr int64_t kMaxInputCols = 2147483647;

Status validate_row_count(int64_t rows, const char* op) {
  if (rows <= kMaxRowCount) return Status::Ok();
  return Status(StatusCode::kInvalidArgument, std::string(op) + ": rows = " + std::to_string(rows) +
                                                  " is more than one call takes (2^31 - 1): split the rows over calls");
}

}  // namespace

Status validate(const QuantizeRowsParams& p) {
  auto invalid = [](const std::string& m) { return Status(StatusCode::kInvalidArgument, m); };
  auto s = [](int64_t v) { return std::to_string(v); };
  if (p.rows < 0 || p.cols < 0)
    return invalid("negative size rows = " + s(p.rows) + ", cols = " + s(p.cols) + ": sizes must be >= 0");
  if (p.cols == 0) return invalid("cols (K) = 0: there is nothing to quantize in a row; K must be > 0");
  if (Status st = validate_row_count(p.rows, "quantize_rows"); !st.ok()) return st;
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

namespace {

Status invalid(const std::string& m) { return Status(StatusCode::kInvalidArgument, m); }
std::string str(int64_t v) { return std::to_string(v); }

// The checks every fused op shares: sizes, the 16-bit input type, strides, the outputs.
template <typename P>
Status validate_fused_common(const P& p, const char* op) {
  const std::string o = std::string(op) + ": ";
  if (p.rows < 0 || p.cols < 0)
    return invalid(o + "negative size rows = " + str(p.rows) + ", cols = " + str(p.cols) + ": sizes must be >= 0");
  if (p.cols == 0) return invalid(o + "cols (K) = 0: a row needs at least one element");
  if (Status st = validate_row_count(p.rows, op); !st.ok()) return st;
  if (p.x_type != DType::kBF16 && p.x_type != DType::kFP16)
    return invalid(o + "input type " + to_string(p.x_type) + " is not supported: use bf16 or fp16");
  if (p.ldx < p.cols) return invalid(o + "ldx = " + str(p.ldx) + " is smaller than cols = " + str(p.cols) + ": ldx must be >= cols");
  if (p.ldq < p.cols) return invalid(o + "ldq = " + str(p.ldq) + " is smaller than cols = " + str(p.cols) + ": ldq must be >= cols");
  if (p.y && p.ldy < p.cols)
    return invalid(o + "ldy = " + str(p.ldy) + " is smaller than cols = " + str(p.cols) + ": ldy must be >= cols");
  if (p.rows == 0) return Status::Ok();
  if (!p.x) return invalid(o + "x (the input) is null");
  if (!p.q) return invalid(o + "q (the int8 output) is null");
  if (!p.scale) return invalid(o + "scale (the per-row fp32 output) is null");
  return Status::Ok();
}

Status validate_eps(float eps, const char* op) {
  if (!(eps >= 0.0f) || eps == INFINITY)  // also refuses NaN
    return invalid(std::string(op) + ": eps = " + std::to_string(eps) + " must be finite and >= 0 (DiTs use 1e-6)");
  return Status::Ok();
}

}  // namespace

Status validate(const LayerNormModulateQuantizeParams& p) {
  const char* op = "layernorm_modulate_quantize";
  INT8DIT_RETURN_IF_ERROR(validate_fused_common(p, op));
  INT8DIT_RETURN_IF_ERROR(validate_eps(p.eps, op));
  if (p.tokens_per_batch <= 0)
    return invalid(std::string(op) + ": tokens_per_batch = " + str(p.tokens_per_batch) +
                   " must be > 0 (rows of one batch element, which share a shift/scale vector)");
  if (p.rows % p.tokens_per_batch != 0)
    return invalid(std::string(op) + ": rows = " + str(p.rows) + " is not a multiple of tokens_per_batch = " +
                   str(p.tokens_per_batch) + ": rows must be batches * tokens_per_batch");
  if (p.ld_mod < p.cols)
    return invalid(std::string(op) + ": ld_mod = " + str(p.ld_mod) + " is smaller than cols = " + str(p.cols) +
                   ": ld_mod must be >= cols");
  if (!p.update && (p.gate || p.x_out))
    return invalid(std::string(op) + ": gate and x_out belong to the gated residual update: set update too, or neither");
  if (p.update) {
    if (p.ld_update < p.cols)
      return invalid(std::string(op) + ": ld_update = " + str(p.ld_update) + " is smaller than cols = " + str(p.cols) +
                     ": ld_update must be >= cols");
    if (p.ld_x_out < p.cols)
      return invalid(std::string(op) + ": ld_x_out = " + str(p.ld_x_out) + " is smaller than cols = " + str(p.cols) +
                     ": ld_x_out must be >= cols");
    if (p.gate && p.ld_gate < p.cols)
      return invalid(std::string(op) + ": ld_gate = " + str(p.ld_gate) + " is smaller than cols = " + str(p.cols) +
                     ": ld_gate must be >= cols");
  }
  if (p.rows == 0) return Status::Ok();
  if (!p.mod_shift) return invalid(std::string(op) + ": mod_shift (the adaLN shift, [batches, cols]) is null");
  if (!p.mod_scale) return invalid(std::string(op) + ": mod_scale (the adaLN scale, [batches, cols]) is null");
  if (p.update && !p.x_out)
    return invalid(std::string(op) + ": x_out (where the updated residual r = x + gate * update goes) is null");
  return Status::Ok();
}

Status validate(const RmsNormQuantizeParams& p) {
  const char* op = "rmsnorm_quantize";
  INT8DIT_RETURN_IF_ERROR(validate_fused_common(p, op));
  INT8DIT_RETURN_IF_ERROR(validate_eps(p.eps, op));
  if (p.rows > 0 && !p.weight) return invalid(std::string(op) + ": weight (the RMSNorm weight, [cols]) is null");
  return Status::Ok();
}

Status validate(const GeluQuantizeParams& p) { return validate_fused_common(p, "gelu_quantize"); }

namespace {

// The checks the two concatenating ops share: a row of a_cols columns of a, then h_cols of the op's
// second part, quantized into rows of ldq. `if_empty` says what to call instead where a part is empty.
Status validate_concat_row(const std::string& o, const char* op, int64_t rows, int64_t a_cols, int64_t lda,
                           int64_t h_cols, int64_t ldq, DType x_type, const char* if_empty) {
  if (rows < 0 || a_cols < 0 || h_cols < 0)
    return invalid(o + "negative size rows = " + str(rows) + ", a_cols = " + str(a_cols) + ", h_cols = " +
                   str(h_cols) + ": sizes must be >= 0");
  if (a_cols == 0 || h_cols == 0)
    return invalid(o + "a_cols = " + str(a_cols) + ", h_cols = " + str(h_cols) + ": both parts need at least one column (" +
                   if_empty + ")");
  if (Status st = validate_row_count(rows, op); !st.ok()) return st;
  // (bounded so that their sum cannot overflow; no kernel takes rows anywhere near this long)
  if (a_cols > kMaxInputCols || h_cols > kMaxInputCols)
    return invalid(o + "a_cols = " + str(a_cols) + ", h_cols = " + str(h_cols) + ": each must be <= " +
                   str(kMaxInputCols));
  if (x_type != DType::kBF16 && x_type != DType::kFP16)
    return invalid(o + "input type " + to_string(x_type) + " is not supported: use bf16 or fp16");
  if (lda < a_cols)
    return invalid(o + "lda = " + str(lda) + " is smaller than a_cols = " + str(a_cols) + ": lda must be >= a_cols");
  if (ldq < a_cols + h_cols)
    return invalid(o + "ldq = " + str(ldq) + " is smaller than a_cols + h_cols = " + str(a_cols + h_cols) +
                   ": the int8 row holds both parts' columns");
  return Status::Ok();
}

}  // namespace

Status validate(const ConcatGeluQuantizeParams& p) {
  const std::string o = "concat_gelu_quantize: ";
  if (Status st = validate_concat_row(o, "concat_gelu_quantize", p.rows, p.a_cols, p.lda, p.h_cols, p.ldq, p.x_type,
                                      "with no a, call gelu_quantize; with no h, quantize_rows");
      !st.ok())
    return st;
  if (p.ldh < p.h_cols)
    return invalid(o + "ldh = " + str(p.ldh) + " is smaller than h_cols = " + str(p.h_cols) + ": ldh must be >= h_cols");
  if (p.rows == 0) return Status::Ok();
  if (!p.a) return invalid(o + "a (the input quantized as it is) is null");
  if (!p.h) return invalid(o + "h (the input GELU applies to) is null");
  if (!p.q) return invalid(o + "q (the int8 output) is null");
  if (!p.scale) return invalid(o + "scale (the per-row fp32 output) is null");
  return Status::Ok();
}

Status validate(const SwigluQuantizeParams& p) {
  const std::string o = "swiglu_quantize: ";
  if (p.rows < 0 || p.cols < 0)
    return invalid(o + "negative size rows = " + str(p.rows) + ", cols = " + str(p.cols) + ": sizes must be >= 0");
  if (p.cols == 0) return invalid(o + "cols = 0: there is nothing to quantize in a row; cols must be > 0");
  if (Status st = validate_row_count(p.rows, "swiglu_quantize"); !st.ok()) return st;
  if (p.cols > kMaxInputCols) return invalid(o + "cols = " + str(p.cols) + " must be <= " + str(kMaxInputCols));
  if (p.x_type != DType::kBF16 && p.x_type != DType::kFP16)
    return invalid(o + "input type " + to_string(p.x_type) + " is not supported: use bf16 or fp16");
  if (p.ld_gate < p.cols)
    return invalid(o + "ld_gate = " + str(p.ld_gate) + " is smaller than cols = " + str(p.cols) + ": ld_gate must be >= cols");
  if (p.ld_up < p.cols)
    return invalid(o + "ld_up = " + str(p.ld_up) + " is smaller than cols = " + str(p.cols) + ": ld_up must be >= cols");
  if (p.ldq < p.cols)
    return invalid(o + "ldq = " + str(p.ldq) + " is smaller than cols = " + str(p.cols) + ": ldq must be >= cols");
  if (p.rows == 0) return Status::Ok();
  if (!p.gate) return invalid(o + "gate (the input SiLU applies to) is null");
  if (!p.up) return invalid(o + "up (the input the SiLU multiplies) is null");
  if (!p.q) return invalid(o + "q (the int8 output) is null");
  if (!p.scale) return invalid(o + "scale (the per-row fp32 output) is null");
  return Status::Ok();
}

Status validate(const ConcatSwigluQuantizeParams& p) {
  const std::string o = "concat_swiglu_quantize: ";
  if (Status st = validate_concat_row(o, "concat_swiglu_quantize", p.rows, p.a_cols, p.lda, p.h_cols, p.ldq, p.x_type,
                                      "with no a, call swiglu_quantize; with no gated part, quantize_rows");
      !st.ok())
    return st;
  if (p.ld_gate < p.h_cols)
    return invalid(o + "ld_gate = " + str(p.ld_gate) + " is smaller than h_cols = " + str(p.h_cols) +
                   ": ld_gate must be >= h_cols");
  if (p.ld_up < p.h_cols)
    return invalid(o + "ld_up = " + str(p.ld_up) + " is smaller than h_cols = " + str(p.h_cols) +
                   ": ld_up must be >= h_cols");
  if (p.rows == 0) return Status::Ok();
  if (!p.a) return invalid(o + "a (the input quantized as it is) is null");
  if (!p.gate) return invalid(o + "gate (the input SiLU applies to) is null");
  if (!p.up) return invalid(o + "up (the input the SiLU multiplies) is null");
  if (!p.q) return invalid(o + "q (the int8 output) is null");
  if (!p.scale) return invalid(o + "scale (the per-row fp32 output) is null");
  return Status::Ok();
}

}  // namespace int8dit
