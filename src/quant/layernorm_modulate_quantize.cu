// LayerNorm (no affine) + adaLN modulation + per-token quantization in one pass over the activations
// (or a LayerNorm with its own weight and bias: scale_is_weight).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "int8dit/quantize.h"
#include "quant/fused_args.cuh"
#include "quant/gpu_checks.cuh"
#include "quant/row_launch.cuh"
#include "quant/row_ops.cuh"

namespace int8dit {
namespace {

template <typename T, typename Op>
void set_norm(Op& op, const LayerNormModulateQuantizeParams& p) {
  op.shift = static_cast<const T*>(p.mod_shift);
  op.mod_scale = static_cast<const T*>(p.mod_scale);
  op.ld_mod = p.ld_mod;
  op.tokens_per_batch = p.tokens_per_batch;
  op.eps = p.eps;
  op.inv_cols = 1.0f / static_cast<float>(p.cols);
  op.rms = p.rms_norm;
  op.scale_offset = p.scale_is_weight ? 0.0f : 1.0f;
}

template <typename T>
Status launch(const LayerNormModulateQuantizeParams& p, cudaStream_t stream) {
  const char* name = "layernorm_modulate_quantize";
  const bool op_vector_ok = quant::vector_rows(p.mod_shift, p.ld_mod, sizeof(T)) &&
                            quant::vector_rows(p.mod_scale, p.ld_mod, sizeof(T));
  const quant::RowArgs<T> a = quant::row_args<T>(p);
  if (!p.update) {
    quant::LayerNormModulateOp<T> op;
    set_norm<T>(op, p);
    return quant::launch_row_quantize(a, op, op_vector_ok, stream, name);
  }
  // The gated residual update runs in the vector kernels only (row_ops.cuh).
  if (!(op_vector_ok && quant::vectorizable(a) && quant::vector_rows(p.update, p.ld_update, sizeof(T)) &&
        quant::vector_rows(p.gate, p.ld_gate, sizeof(T)) && quant::vector_rows(p.x_out, p.ld_x_out, sizeof(T)) &&
        quant::row_launch_shape(p.cols, true, p.smooth ? 4 : quant::kPreferredVecsPerThread).vecs_per_thread > 0))
    return Status(StatusCode::kInvalidArgument,
                  std::string(name) + ": the gated residual update (update = set) needs cols % 8 == 0 (cols = " +
                      std::to_string(p.cols) + "), at most 16384 columns, and 16-byte aligned rows and strides (a "
                      "multiple of 8 elements) for x, update, gate, x_out, y, q, the modulation and smooth: add the "
                      "residual first and call without update");
  quant::GatedResidualLayerNormModulateOp<T> op;
  set_norm<T>(op, p);
  op.update = static_cast<const T*>(p.update);
  op.ld_update = p.ld_update;
  op.gate = static_cast<const T*>(p.gate);
  op.ld_gate = p.ld_gate;
  op.x_out = static_cast<T*>(p.x_out);
  op.ld_x_out = p.ld_x_out;
  return quant::launch_row_quantize(a, op, true, stream, name);
}

}  // namespace

Status layernorm_modulate_quantize(const LayerNormModulateQuantizeParams& p, cudaStream_t stream) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.rows == 0) return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(quant::check_device_pointers(
      {{p.x, "x (the input)"}, {p.mod_shift, "mod_shift"}, {p.mod_scale, "mod_scale"},
       {p.smooth, "smooth (the SmoothQuant divisor)"}, {p.q, "q (the int8 output)"},
       {p.scale, "scale (the per-row output)"}, {p.y, "y (the modulated output)"},
       {p.update, "update (the residual update)"}, {p.gate, "gate (the residual update's gate)"},
       {p.x_out, "x_out (the updated residual)"}}));
  return p.x_type == DType::kBF16 ? launch<__nv_bfloat16>(p, stream) : launch<__half>(p, stream);
}

}  // namespace int8dit
