// Argument checks for gated_add (residual.h), shared by the GPU kernel and the CPU reference.
#include <cstdint>
#include <string>

#include "int8dit/residual.h"

namespace int8dit {
namespace {

Status invalid(const std::string& m) { return Status(StatusCode::kInvalidArgument, "gated_add: " + m); }
std::string str(int64_t v) { return std::to_string(v); }

// The bytes a [rows, cols] matrix of 2-byte elements with row stride ld spans, as [begin, end).
struct Span {
  uintptr_t begin, end;
};
Span span_of(const void* p, int64_t rows, int64_t cols, int64_t ld, int64_t elem_bytes = 2) {
  const auto b = reinterpret_cast<uintptr_t>(p);
  return {b, b + static_cast<uintptr_t>(((rows - 1) * ld + cols) * elem_bytes)};
}
bool overlaps(Span a, Span b) { return a.begin < b.end && b.begin < a.end; }

// out may be an input itself where `may_alias` (the same pointer and stride: each element is read
// before it is written), or apart from it; anything between would read elements already written.
Status check_out_against(const GatedAddParams& p, const void* in, int64_t in_rows, int64_t ld_in, const char* name,
                         bool may_alias, int64_t in_elem_bytes = 2) {
  if (!in) return Status::Ok();
  if (may_alias && in == p.out && ld_in == p.ld_out) return Status::Ok();
  if (!overlaps(span_of(p.out, p.rows, p.cols, p.ld_out), span_of(in, in_rows, p.cols, ld_in, in_elem_bytes)))
    return Status::Ok();
  return invalid(std::string("out overlaps ") + name +
                 (may_alias ? std::string(" without being it (the same pointer and stride): write the sum in place "
                                          "over ") + name + " or to separate memory"
                            : std::string(", which every row of its batch element reads: write the sum elsewhere")));
}

}  // namespace

Status validate(const GatedAddParams& p) {
  if (p.rows < 0 || p.cols < 0)
    return invalid("negative size rows = " + str(p.rows) + ", cols = " + str(p.cols) + ": sizes must be >= 0");
  if (p.type != DType::kBF16 && p.type != DType::kFP16)
    return invalid(std::string("type ") + to_string(p.type) + " is not supported: use bf16 or fp16");
  // (the kernel indexes elements and vectors with 64-bit integers; this keeps the byte spans below exact)
  if (p.rows > (int64_t{1} << 40) || p.cols > (int64_t{1} << 40))
    return invalid("rows = " + str(p.rows) + ", cols = " + str(p.cols) + ": each must be <= 2^40");
  const struct {
    int64_t ld;
    const char* name;
  } strides[] = {{p.ldx, "ldx"}, {p.update ? p.ld_update : p.cols, "ld_update"}, {p.ld_out, "ld_out"}};
  for (const auto& s : strides) {
    if (s.ld < p.cols)
      return invalid(std::string(s.name) + " = " + str(s.ld) + " is smaller than cols = " + str(p.cols) + ": it must be >= cols");
  }
  if (p.gate && p.gate_fp32)
    return invalid("both gate and gate_fp32 are set: give the gate once, in the activations' type or in fp32");
  if (p.gate || p.gate_fp32) {
    if (p.tokens_per_batch <= 0)
      return invalid("tokens_per_batch = " + str(p.tokens_per_batch) +
                     ": with a gate, say how many rows each batch element's gate row covers (> 0)");
    if (p.rows % p.tokens_per_batch != 0)
      return invalid("rows = " + str(p.rows) + " is not a multiple of tokens_per_batch = " + str(p.tokens_per_batch) +
                     ": rows must be batches * tokens_per_batch");
    if (p.ld_gate < p.cols)
      return invalid("ld_gate = " + str(p.ld_gate) + " is smaller than cols = " + str(p.cols) + ": it must be >= cols");
  }
  if (p.rows == 0 || p.cols == 0) return Status::Ok();
  if (!p.x) return invalid("x (the residual stream) is null");
  if (!p.out) return invalid("out (where x + gate * update goes) is null");
  if (Status st = check_out_against(p, p.x, p.rows, p.ldx, "x", true); !st.ok()) return st;
  if (Status st = check_out_against(p, p.update, p.rows, p.ld_update, "update", true); !st.ok()) return st;
  const int64_t gate_rows = p.gate || p.gate_fp32 ? p.rows / p.tokens_per_batch : 0;
  if (Status st = check_out_against(p, p.gate, gate_rows, p.ld_gate, "gate", false); !st.ok()) return st;
  return check_out_against(p, p.gate_fp32, gate_rows, p.ld_gate, "gate_fp32", false, 4);
}

}  // namespace int8dit
