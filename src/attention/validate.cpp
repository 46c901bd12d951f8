// Argument checks for qk_norm_rope (attention.h), shared by the GPU kernel and the CPU reference.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/cuda_check.h"  // INT8DIT_RETURN_IF_ERROR
#include "int8dit/attention.h"

namespace int8dit {
namespace {

Status invalid(const std::string& m) { return Status(StatusCode::kInvalidArgument, "qk_norm_rope: " + m); }
std::string str(int64_t v) { return std::to_string(v); }

struct Dims {
  int64_t size[3];
  int64_t stride[3];
};

// The bytes a strided [batches, tokens, heads, head_dim] tensor of `elem` bytes spans, as [begin, end).
struct Span {
  uintptr_t begin, end;
};
Span span_of(const void* p, const Dims& d, int64_t head_dim, int64_t elem) {
  int64_t last = head_dim;
  for (int i = 0; i < 3; ++i) last += (d.size[i] - 1) * d.stride[i];
  const auto b = reinterpret_cast<uintptr_t>(p);
  return {b, b + static_cast<uintptr_t>(last * elem)};
}
bool overlaps(Span a, Span b) { return a.begin < b.end && b.begin < a.end; }

// Whether no two rows of head_dim elements share an element: the dimensions of more than one index,
// ordered by stride, each step past everything the smaller ones span (the test PyTorch's own
// non-overlapping check makes). Sufficient, not necessary; interleaved layouts beyond it are refused.
bool rows_apart(const Dims& d, int64_t head_dim) {
  std::array<std::pair<int64_t, int64_t>, 3> dims{};  // (stride, size)
  int n = 0;
  for (int i = 0; i < 3; ++i) {
    if (d.size[i] > 1) dims[n++] = {d.stride[i], d.size[i]};
  }
  std::sort(dims.begin(), dims.begin() + n);
  int64_t spanned = head_dim;  // elements the smaller dimensions reach
  for (int i = 0; i < n; ++i) {
    if (dims[i].first < spanned) return false;
    spanned = dims[i].first * (dims[i].second - 1) + spanned;
  }
  return true;
}

Status check_strides(const Dims& d, const char* name) {
  static const char* kDim[3] = {"batch", "token", "head"};
  for (int i = 0; i < 3; ++i) {
    if (d.stride[i] < 0)
      return invalid(std::string(name) + "_" + kDim[i] + "_stride = " + str(d.stride[i]) + " is negative: strides must be >= 0");
    if (d.stride[i] > (int64_t{1} << 40))
      return invalid(std::string(name) + "_" + kDim[i] + "_stride = " + str(d.stride[i]) + " is over 2^40 elements");
  }
  return Status::Ok();
}

}  // namespace

Status validate(const QKNormRopeParams& p) {
  if (p.batches < 0 || p.tokens < 0 || p.heads < 0 || p.head_dim < 0)
    return invalid("negative size batches = " + str(p.batches) + ", tokens = " + str(p.tokens) + ", heads = " +
                   str(p.heads) + ", head_dim = " + str(p.head_dim) + ": sizes must be >= 0");
  if (p.type != DType::kBF16 && p.type != DType::kFP16)
    return invalid(std::string("type ") + to_string(p.type) + " is not supported: use bf16 or fp16");
  if (p.head_dim < 16 || p.head_dim > 256 || (p.head_dim & (p.head_dim - 1)) != 0)
    return invalid("head_dim = " + str(p.head_dim) +
                   " is not supported: it must be a power of two from 16 to 256 (the rows' lanes meet in a butterfly)");
  if (p.batches > (int64_t{1} << 40) || p.tokens > (int64_t{1} << 40) || p.heads > (int64_t{1} << 40) ||
      (p.batches > 0 && p.tokens > 0 && p.heads > 0 && p.batches * p.tokens > (int64_t{1} << 40) / p.heads))
    return invalid("batches * tokens * heads = " + str(p.batches) + " * " + str(p.tokens) + " * " + str(p.heads) +
                   " is over 2^40 rows: split the call");
  if (!p.normalize && (p.weight || p.weight_fp32))
    return invalid("a weight was given with normalize = false: the weight is the RMSNorm's; pass neither or both");
  if (p.bias && !p.normalize)
    return invalid("a bias was given with normalize = false: the bias is the norm's; pass normalize too");
  if (p.subtract_mean && !p.normalize)
    return invalid("subtract_mean was set with normalize = false: the mean is the LayerNorm's; set normalize too");
  if (p.weight && p.weight_fp32)
    return invalid("both weight and weight_fp32 were given: pass the norm's weight once, in `type` or in fp32");
  if (p.norm_heads < 1 || (p.heads > 0 && p.heads % p.norm_heads != 0))
    return invalid("norm_heads = " + str(p.norm_heads) + " must be >= 1 and divide heads = " + str(p.heads) +
                   ": a norm's statistics span whole groups of a token's heads");
  if (p.norm_heads > 1 && (!p.normalize || p.subtract_mean || p.bias || p.rope_split_halves))
    return invalid("norm_heads = " + str(p.norm_heads) + " takes the RMSNorm alone: set normalize, and neither "
                   "subtract_mean, a bias nor rope_split_halves");
  if (p.rope_head_stride < 0 || p.rope_head_stride > (int64_t{1} << 30))
    return invalid("rope_head_stride = " + str(p.rope_head_stride) + " must be in 0..2^30");
  if (!(p.eps >= 0.0f) || std::isinf(p.eps))
    return invalid("eps = " + std::to_string(p.eps) + " must be finite and >= 0");
  const Dims xd{{p.batches, p.tokens, p.heads}, {p.x_batch_stride, p.x_token_stride, p.x_head_stride}};
  const Dims od{{p.batches, p.tokens, p.heads}, {p.out_batch_stride, p.out_token_stride, p.out_head_stride}};
  INT8DIT_RETURN_IF_ERROR(check_strides(xd, "x"));
  INT8DIT_RETURN_IF_ERROR(check_strides(od, "out"));
  if ((p.cos == nullptr) != (p.sin == nullptr))
    return invalid(std::string("only ") + (p.cos ? "cos" : "sin") +
                   " was given: pass both cos and sin for the rotary embedding, or neither for the norm alone");
  const bool rope = p.cos != nullptr;
  if (p.rope_split_halves && !rope)
    return invalid("rope_split_halves was set without cos and sin: it says how the rotary embedding pairs a row");
  if (rope) {
    if (p.ld_rope < p.head_dim)
      return invalid("ld_rope = " + str(p.ld_rope) + " is smaller than head_dim = " + str(p.head_dim) +
                     ": cos and sin rows hold head_dim values each");
    if (p.heads > 0 && p.ld_rope < (p.heads - 1) * p.rope_head_stride + p.head_dim)
      return invalid("ld_rope = " + str(p.ld_rope) + " is smaller than (heads - 1) * rope_head_stride + head_dim = " +
                     str((p.heads - 1) * p.rope_head_stride + p.head_dim) +
                     ": a cos/sin row holds the values of every head of its token");
    if (p.rope_offset < 0) return invalid("rope_offset = " + str(p.rope_offset) + " is negative");
    if (p.rope_rows > (int64_t{1} << 40) || p.ld_rope > (int64_t{1} << 40))
      return invalid("rope_rows = " + str(p.rope_rows) + ", ld_rope = " + str(p.ld_rope) + ": each must be <= 2^40");
    if (p.rope_offset > p.rope_rows - p.tokens)
      return invalid("cos and sin have " + str(p.rope_rows) + " rows but tokens " + str(p.rope_offset) + ".." +
                     str(p.rope_offset + p.tokens - 1) + " need rows up to " + str(p.rope_offset + p.tokens - 1) +
                     ": pass the rotary table of the whole joined sequence, or a smaller rope_offset");
  }
  if (p.batches == 0 || p.tokens == 0 || p.heads == 0) return Status::Ok();
  if (!p.x) return invalid("x (the queries or keys) is null");
  if (!p.out) return invalid("out is null");
  if (!rows_apart(od, p.head_dim))
    return invalid("out's strides (batch " + str(p.out_batch_stride) + ", token " + str(p.out_token_stride) + ", head " +
                   str(p.out_head_stride) + ") make rows of head_dim = " + str(p.head_dim) +
                   " elements share memory: every output row needs its own elements");
  const bool in_place = p.out == p.x && p.x_batch_stride == p.out_batch_stride &&
                        p.x_token_stride == p.out_token_stride && p.x_head_stride == p.out_head_stride;
  const Span out_span = span_of(p.out, od, p.head_dim, 2);
  const int64_t weight_elems = p.norm_heads * p.head_dim;
  if (!in_place && overlaps(out_span, span_of(p.x, xd, p.head_dim, 2)))
    return invalid("out overlaps x without being it (the same pointer and strides): write in place over x or to "
                   "separate memory");
  if (p.bias && overlaps(out_span, {reinterpret_cast<uintptr_t>(p.bias),
                                    reinterpret_cast<uintptr_t>(p.bias) + static_cast<uintptr_t>(p.head_dim * 2)}))
    return invalid("out overlaps the bias, which every row reads: write elsewhere");
  if (p.weight && overlaps(out_span, {reinterpret_cast<uintptr_t>(p.weight),
                                      reinterpret_cast<uintptr_t>(p.weight) + static_cast<uintptr_t>(weight_elems * 2)}))
    return invalid("out overlaps the weight, which every row reads: write elsewhere");
  if (p.weight_fp32 && overlaps(out_span, {reinterpret_cast<uintptr_t>(p.weight_fp32),
                                           reinterpret_cast<uintptr_t>(p.weight_fp32 + weight_elems)}))
    return invalid("out overlaps weight_fp32, which every row reads: write elsewhere");
  if (rope) {
    const int64_t rope_bytes = ((p.rope_rows - 1) * p.ld_rope + (p.heads - 1) * p.rope_head_stride + p.head_dim) * 4;
    for (const float* table : {p.cos, p.sin}) {
      const auto b = reinterpret_cast<uintptr_t>(table);
      if (overlaps(out_span, {b, b + static_cast<uintptr_t>(rope_bytes)}))
        return invalid(std::string("out overlaps ") + (table == p.cos ? "cos" : "sin") +
                       ", which rows of every head read: write elsewhere");
    }
  }
  return Status::Ok();
}

}  // namespace int8dit
