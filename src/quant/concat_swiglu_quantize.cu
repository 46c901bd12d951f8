// SwiGLU of a gated MLP concatenated after another input + per-token quantization in one pass (FLUX.2's
// single-stream to_out input, quantize.h): neither the product nor the concatenated row is written.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

#include "int8dit/quantize.h"
#include "quant/gpu_checks.cuh"
#include "quant/row_launch.cuh"
#include "quant/row_ops.cuh"

namespace int8dit {
namespace {

template <typename T>
Status launch(const ConcatSwigluQuantizeParams& p, cudaStream_t stream) {
  const char* name = "concat_swiglu_quantize";
  quant::RowArgs<T> a;
  a.rows = p.rows;
  a.cols = p.a_cols + p.h_cols;
  a.x = static_cast<const T*>(p.a);
  a.ldx = p.lda;
  a.smooth = p.smooth;
  a.q = p.q;
  a.ldq = p.ldq;
  a.scale = p.scale;
  // The op transforms its row, which the vector kernels alone do (row_kernels.cuh): every 16-byte vector
  // from one input, all three inputs in 16-byte rows, and a row the 256- or 512-thread kernels hold.
  const bool fits = quant::row_launch_shape(a.cols, true, p.smooth ? 4 : quant::kPreferredVecsPerThread).vecs_per_thread > 0 ||
                    quant::wide_transform_row_threads(a.cols) > 0;
  if (!(p.a_cols % quant::kVecElems == 0 && quant::vectorizable(a) && quant::vector_rows(p.gate, p.ld_gate, sizeof(T)) &&
        quant::vector_rows(p.up, p.ld_up, sizeof(T)) && fits))
    return Status(StatusCode::kNotSupported,
                  std::string(name) + ": the GPU kernel needs a_cols and h_cols multiples of 8 (a_cols = " +
                      std::to_string(p.a_cols) + ", h_cols = " + std::to_string(p.h_cols) +
                      "), at most 24576 columns in all, and 16-byte aligned rows and strides (a multiple of 8 "
                      "elements) for a, gate, up, q and smooth: compute silu(gate) * up, concatenate, and call "
                      "quantize_rows");
  quant::ConcatSwigluOp<T> op;
  op.gate = static_cast<const T*>(p.gate);
  op.ld_gate = p.ld_gate;
  op.up = static_cast<const T*>(p.up);
  op.ld_up = p.ld_up;
  op.swiglu_from = p.a_cols;
  return quant::launch_row_quantize(a, op, true, stream, name);
}

}  // namespace

Status concat_swiglu_quantize(const ConcatSwigluQuantizeParams& p, cudaStream_t stream) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.rows == 0) return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(quant::check_device_pointers(
      {{p.a, "a (the input quantized as it is)"}, {p.gate, "gate (the input SiLU applies to)"},
       {p.up, "up (the input the SiLU multiplies)"}, {p.smooth, "smooth (the SmoothQuant divisor)"},
       {p.q, "q (the int8 output)"}, {p.scale, "scale (the per-row output)"}}));
  return p.x_type == DType::kBF16 ? launch<__nv_bfloat16>(p, stream) : launch<__half>(p, stream);
}

}  // namespace int8dit
