// LayerNorm (no affine) + adaLN modulation + per-token quantization in one pass over the activations.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "int8dit/quantize.h"
#include "quant/fused_args.cuh"
#include "quant/gpu_checks.cuh"
#include "quant/row_launch.cuh"
#include "quant/row_ops.cuh"

namespace int8dit {
namespace {

template <typename T>
Status launch(const LayerNormModulateQuantizeParams& p, cudaStream_t stream) {
  quant::LayerNormModulateOp<T> op;
  op.shift = static_cast<const T*>(p.mod_shift);
  op.mod_scale = static_cast<const T*>(p.mod_scale);
  op.ld_mod = p.ld_mod;
  op.tokens_per_batch = p.tokens_per_batch;
  op.eps = p.eps;
  op.inv_cols = 1.0f / static_cast<float>(p.cols);
  const bool op_vector_ok = quant::vector_rows(p.mod_shift, p.ld_mod, sizeof(T)) &&
                            quant::vector_rows(p.mod_scale, p.ld_mod, sizeof(T));
  return quant::launch_row_quantize(quant::row_args<T>(p), op, op_vector_ok, stream, "layernorm_modulate_quantize");
}

}  // namespace

Status layernorm_modulate_quantize(const LayerNormModulateQuantizeParams& p, cudaStream_t stream) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.rows == 0) return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(quant::check_device_pointers(
      {{p.x, "x (the input)"}, {p.mod_shift, "mod_shift"}, {p.mod_scale, "mod_scale"},
       {p.smooth, "smooth (the SmoothQuant divisor)"}, {p.q, "q (the int8 output)"},
       {p.scale, "scale (the per-row output)"}, {p.y, "y (the modulated output)"}}));
  return p.x_type == DType::kBF16 ? launch<__nv_bfloat16>(p, stream) : launch<__half>(p, stream);
}

}  // namespace int8dit
