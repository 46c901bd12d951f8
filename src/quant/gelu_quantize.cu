// GELU (tanh approximation) + per-token quantization in one pass over the activations.
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
Status launch(const GeluQuantizeParams& p, cudaStream_t stream) {
  return quant::launch_row_quantize(quant::row_args<T>(p), quant::GeluTanhOp{}, true, stream, "gelu_quantize");
}

}  // namespace

Status gelu_quantize(const GeluQuantizeParams& p, cudaStream_t stream) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.rows == 0) return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(quant::check_device_pointers(
      {{p.x, "x (the input)"}, {p.smooth, "smooth (the SmoothQuant divisor)"}, {p.q, "q (the int8 output)"},
       {p.scale, "scale (the per-row output)"}, {p.y, "y (the GELU output)"}}));
  return p.x_type == DType::kBF16 ? launch<__nv_bfloat16>(p, stream) : launch<__half>(p, stream);
}

}  // namespace int8dit
