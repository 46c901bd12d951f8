// quantize_rows / quantize_weights on the GPU: bit-exact with ref::quantize_rows (the row max does
// not depend on the reduction order, and every other step is one IEEE-rounded fp32 operation).
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
Status launch(const QuantizeRowsParams& p, cudaStream_t stream) {
  return quant::launch_row_quantize(quant::row_args_in_out<T>(p), quant::IdentityOp{}, true, stream, "quantize_rows");
}

}  // namespace

Status quantize_rows(const QuantizeRowsParams& p, cudaStream_t stream) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.rows == 0) return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(quant::check_gpu_input_type(p.x_type, "quantize_rows"));
  INT8DIT_RETURN_IF_ERROR(quant::check_device_pointers(
      {{p.x, "x (the input)"}, {p.smooth, "smooth (the SmoothQuant divisor)"}, {p.q, "q (the int8 output)"},
       {p.scale, "scale (the per-row output)"}}));
  return p.x_type == DType::kBF16 ? launch<__nv_bfloat16>(p, stream) : launch<__half>(p, stream);
}

Status quantize_weights(const QuantizeRowsParams& p, cudaStream_t stream) { return quantize_rows(p, stream); }

}  // namespace int8dit
