// SwiGLU of two inputs + per-token quantization in one pass (a gated MLP's second-linear input,
// quantize.h): silu(gate) * up is never written.
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
Status launch(const SwigluQuantizeParams& p, cudaStream_t stream) {
  const char* name = "swiglu_quantize";
  quant::RowArgs<T> a;
  a.rows = p.rows;
  a.cols = p.cols;
  a.x = static_cast<const T*>(p.gate);
  a.ldx = p.ld_gate;
  a.smooth = p.smooth;
  a.q = p.q;
  a.ldq = p.ldq;
  a.scale = p.scale;
  // The op transforms its row (the product), which the vector kernels alone do (row_kernels.cuh): the
  // 256-thread ones up to 16384 columns, the 512-thread one up to 24576 (row_shape.h).
  const bool fits = quant::row_launch_shape(p.cols, true, p.smooth ? 4 : quant::kPreferredVecsPerThread).vecs_per_thread > 0 ||
                    quant::wide_transform_row_threads(p.cols) > 0;
  if (!(quant::vectorizable(a) && quant::vector_rows(p.up, p.ld_up, sizeof(T)) && fits))
    return Status(StatusCode::kNotSupported,
                  std::string(name) + ": the GPU kernel needs cols % 8 == 0 (cols = " + std::to_string(p.cols) +
                      "), at most 24576 columns, and 16-byte aligned rows and strides (a multiple of 8 elements) "
                      "for gate, up, q and smooth: compute silu(gate) * up and call quantize_rows");
  quant::SwigluOp<T> op;
  op.up = static_cast<const T*>(p.up);
  op.ld_up = p.ld_up;
  return quant::launch_row_quantize(a, op, true, stream, name);
}

}  // namespace

Status swiglu_quantize(const SwigluQuantizeParams& p, cudaStream_t stream) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.rows == 0) return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(quant::check_device_pointers(
      {{p.gate, "gate (the input SiLU applies to)"}, {p.up, "up (the input the SiLU multiplies)"},
       {p.smooth, "smooth (the SmoothQuant divisor)"}, {p.q, "q (the int8 output)"},
       {p.scale, "scale (the per-row output)"}}));
  return p.x_type == DType::kBF16 ? launch<__nv_bfloat16>(p, stream) : launch<__half>(p, stream);
}

}  // namespace int8dit
