// qk_norm_rope (attention.h): the entry point, and the kernels of RMSNorm and interleaved pairs (the
// kernel itself: qk_norm_rope_kernel.cuh; LayerNorm statistics, its bias and split-halves pairs are built in
// qk_norm_rope_extended.cu, a translation unit of their own so that the two compile in parallel).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <string>

#include "attention/qk_norm_rope_kernel.cuh"
#include "int8dit/attention.h"
#include "quant/gpu_checks.cuh"

namespace int8dit {
namespace {

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// What keeps the 16-byte kernel from this layout (empty: nothing).
const char* vector_misfit(const QKNormRopeParams& p) {
  const auto strides_ok = [](int64_t a, int64_t b, int64_t c) { return a % 8 == 0 && b % 8 == 0 && c % 8 == 0; };
  if (!aligned16(p.x) || !strides_ok(p.x_batch_stride, p.x_token_stride, p.x_head_stride))
    return "x must be 16-byte aligned with strides that are multiples of 8 elements";
  if (!aligned16(p.out) || !strides_ok(p.out_batch_stride, p.out_token_stride, p.out_head_stride))
    return "out must be 16-byte aligned with strides that are multiples of 8 elements";
  if (p.weight && !aligned16(p.weight)) return "the weight must be 16-byte aligned";
  if (p.bias && !aligned16(p.bias)) return "the bias must be 16-byte aligned";
  if (p.weight_fp32 && !aligned16(p.weight_fp32)) return "weight_fp32 must be 16-byte aligned";
  if (p.cos && (!aligned16(p.cos) || !aligned16(p.sin) || p.ld_rope % 4 != 0))
    return "cos and sin must be 16-byte aligned with a row stride (ld_rope) that is a multiple of 4";
  return nullptr;
}

}  // namespace

Status qk_norm_rope(const QKNormRopeParams& p, cudaStream_t stream) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.batches == 0 || p.tokens == 0 || p.heads == 0) return Status::Ok();
  if (const char* why = vector_misfit(p))
    return Status(StatusCode::kNotSupported,
                  std::string("qk_norm_rope: the GPU kernel moves 16-byte vectors: ") + why +
                      " (a contiguous tensor from PyTorch's allocator is; the CPU reference takes any layout)");
  INT8DIT_RETURN_IF_ERROR(quant::check_device_pointers(
      {{p.x, "x (the queries or keys)"}, {p.weight, "weight"}, {p.weight_fp32, "weight_fp32"}, {p.bias, "bias"}, {p.cos, "cos"},
       {p.sin, "sin"}, {p.out, "out"}}));
  if (p.norm_heads > 1) return attention::launch_group_norm(p, stream);
  if (p.subtract_mean || p.rope_split_halves || p.bias) {
    if (p.head_dim != 64 && p.head_dim != 128)
      return Status(StatusCode::kNotSupported,
                    "qk_norm_rope: subtract_mean, rope_split_halves and a bias run on the GPU for head_dim 64 and 128, not " +
                        std::to_string(p.head_dim) + " (the CPU reference takes every head_dim)");
    return attention::launch_extended(p, stream);
  }
  return p.type == DType::kBF16 ? attention::launch_typed<__nv_bfloat16, false>(p, stream)
                                : attention::launch_typed<__half, false>(p, stream);
}

}  // namespace int8dit
