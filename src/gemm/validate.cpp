// Argument checks for the W8A8 GEMM. Every message names the value that was wrong and the fix.
#include <cstdint>
#include <string>

#include "int8dit/gemm.h"

namespace int8dit {
namespace {

Status invalid(const std::string& msg) { return Status(StatusCode::kInvalidArgument, msg); }

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

Status validate(const GemmParams& p) {
  if (p.m < 0 || p.n < 0 || p.k < 0)
    return invalid("negative size M = " + str(p.m) + ", N = " + str(p.n) + ", K = " + str(p.k) +
                   ": sizes must be >= 0");
  if (p.n == 0 || p.k == 0)
    return invalid("N = " + str(p.n) + ", K = " + str(p.k) +
                   ": a GEMM needs N > 0 and K > 0 (only M = 0, an empty batch, is allowed)");
  if (p.k % kKAlignment != 0)
    return invalid("K = " + str(p.k) + " must be a multiple of " + str(kKAlignment) +
                   ": pad the input features with zeros (in both activations and weights)");
  if (p.k > kMaxK)
    return invalid("K = " + str(p.k) + " exceeds " + str(kMaxK) +
                   ": the int32 accumulator could overflow (127*127*K >= 2^31); split K and add the results");

  switch (p.d_type) {
    case DType::kBF16:
    case DType::kFP16:
    case DType::kFP32:
    case DType::kInt32: break;
    default:
      return invalid(std::string("output type ") + to_string(p.d_type) +
                     " is not supported: use bf16, fp16, fp32, or int32 for the raw accumulator");
  }
  const bool raw = p.d_type == DType::kInt32;

  if (p.lda < p.k) return invalid("lda = " + str(p.lda) + " is smaller than K = " + str(p.k) + ": lda must be >= K");
  if (p.ldb < p.k) return invalid("ldb = " + str(p.ldb) + " is smaller than K = " + str(p.k) + ": ldb must be >= K");
  if (p.ldd < p.n) return invalid("ldd = " + str(p.ldd) + " is smaller than N = " + str(p.n) + ": ldd must be >= N");

  if (p.m == 0) return Status::Ok();  // empty batch: nothing is read or written, pointers may be null

  if (!p.a) return invalid("A (the int8 activations) is null");
  if (!p.b) return invalid("B (the int8 weights) is null");
  if (!p.d) return invalid("D (the output) is null");
  if (raw) {
    if (p.scale_a || p.scale_b || p.bias)
      return invalid("the raw int32 output takes no scales or bias (they would be ignored): pass null, "
                     "or choose a bf16/fp16/fp32 output to apply them");
  } else {
    if (!p.scale_a) return invalid("scale_a (the activation scales) is null");
    if (!p.scale_b) return invalid("scale_b (the weight scales) is null");
    if (p.scale_a_mode != ScaleMode::kPerRow && p.scale_a_mode != ScaleMode::kPerTensor)
      return invalid("scale_a_mode must be kPerRow (one per token) or kPerTensor");
    if (p.scale_b_mode != ScaleMode::kPerCol && p.scale_b_mode != ScaleMode::kPerTensor)
      return invalid("scale_b_mode must be kPerCol (one per output channel) or kPerTensor");
  }

  // NOTE: TMA and cp.async move 16-byte granules: base addresses and row pitches must be 16-byte aligned.
  if (!aligned(p.a, 16)) return invalid("A is not 16-byte aligned: allocate it with cudaMalloc or copy the view to a fresh tensor");
  if (!aligned(p.b, 16)) return invalid("B is not 16-byte aligned: allocate it with cudaMalloc or copy the view to a fresh tensor");
  if (!aligned(p.d, 16)) return invalid("D is not 16-byte aligned: allocate it with cudaMalloc or copy the view to a fresh tensor");
  if (p.lda % 16 != 0) return invalid("lda = " + str(p.lda) + " must be a multiple of 16 (16-byte rows of int8)");
  if (p.ldb % 16 != 0) return invalid("ldb = " + str(p.ldb) + " must be a multiple of 16 (16-byte rows of int8)");
  const int64_t elems16 = 16 / static_cast<int64_t>(size_of(p.d_type));
  if (p.ldd % elems16 != 0)
    return invalid("ldd = " + str(p.ldd) + " must be a multiple of " + str(elems16) + " for " + to_string(p.d_type) +
                   " output (16-byte rows): pad the output's leading dimension");
  if (!raw) {
    if (!aligned(p.scale_a, 4) || !aligned(p.scale_b, 4) || (p.bias && !aligned(p.bias, 4)))
      return invalid("scale_a, scale_b and bias must be 4-byte aligned fp32 arrays");
  }
  if (p.workspace_bytes > 0 && !p.workspace) return invalid("workspace_bytes > 0 but workspace is null");
  return Status::Ok();
}

}  // namespace int8dit
