// GELU of one input concatenated after another + per-token quantization in one pass (Flux's
// single-stream proj_out input, quantize.h): the concatenated row is never written.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "int8dit/quantize.h"
#include "quant/gpu_checks.cuh"
#include "quant/row_launch.cuh"
#include "quant/row_ops.cuh"

namespace int8dit {
namespace {

template <typename T>
Status launch(const ConcatGeluQuantizeParams& p, cudaStream_t stream) {
  quant::RowArgs<T> a;
  a.rows = p.rows;
  a.cols = p.a_cols + p.h_cols;
  a.x = static_cast<const T*>(p.a);
  a.ldx = p.lda;
  a.smooth = p.smooth;
  a.q = p.q;
  a.ldq = p.ldq;
  a.scale = p.scale;
  quant::ConcatGeluOp<T> op;
  op.h = static_cast<const T*>(p.h);
  op.ldh = p.ldh;
  op.gelu_from = p.a_cols;
  const bool vectors_from_one_input = p.a_cols % quant::kVecElems == 0 && quant::vector_rows(p.h, p.ldh, sizeof(T));
  return quant::launch_row_quantize(a, op, vectors_from_one_input, stream, "concat_gelu_quantize");
}

}  // namespace

Status concat_gelu_quantize(const ConcatGeluQuantizeParams& p, cudaStream_t stream) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.rows == 0) return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(quant::check_device_pointers(
      {{p.a, "a (the input quantized as it is)"}, {p.h, "h (the input GELU applies to)"},
       {p.smooth, "smooth (the SmoothQuant divisor)"}, {p.q, "q (the int8 output)"}, {p.scale, "scale (the per-row output)"}}));
  return p.x_type == DType::kBF16 ? launch<__nv_bfloat16>(p, stream) : launch<__half>(p, stream);
}

}  // namespace int8dit
