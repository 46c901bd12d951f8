// qk_norm_rope's extended kernels (attention.h): LayerNorm statistics (subtract_mean), its bias and split-halves
// rotary pairs (rope_split_halves, CogView4's), head_dim 64 and 128. The entry point (qk_norm_rope.cu)
// has validated the call, its layout and its pointers.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "attention/qk_norm_rope_kernel.cuh"

namespace int8dit::attention {

Status launch_extended(const QKNormRopeParams& p, cudaStream_t stream) {
  return p.type == DType::kBF16 ? launch_typed<__nv_bfloat16, true>(p, stream) : launch_typed<__half, true>(p, stream);
}

}  // namespace int8dit::attention
