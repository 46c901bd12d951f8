// int8dit: the CPU reference of every operation. It is the tests' oracle and the CPU fallback,
// and computes exactly DESIGN.md's semantics. All pointers here are host pointers.
#pragma once

#include "int8dit/gemm.h"
#include "int8dit/quantize.h"

namespace int8dit::ref {

// Quantize rows (x_type kBF16, kFP16 or kFP32). Multithreaded over rows. bf16/fp16 inputs are
// decoded exactly; with p.smooth the row quantized is x_k / s_k (an fp32 division, before amax).
// Defined edge cases (every GPU kernel matches them):
//   - a row of zeros:        q = 0, scale = 0;
//   - a row holding NaN/Inf: q = 0, scale = NaN (so the GEMM output row is NaN, never silently 0);
//   - a row so small that 127 / amax overflows to Inf: the elements whose product x_k * inv is NaN
//     (x_k = 0) give q = 0, the others saturate to +-127, as a saturating float->int8 convert does.
// Validation is validate(QuantizeRowsParams); rows = 0 is Ok and writes nothing.
Status quantize_rows(const QuantizeRowsParams& p);

// The fused producers of quantized activations (quantize.h): each row's values v_k in double, rounded
// once to fp32 (y, when given, is v rounded to x_type), then quantized by quantize_rows above with
// the SmoothQuant divisor. GPU kernels match within the tolerance quantize.h states.
Status layernorm_modulate_quantize(const LayerNormModulateQuantizeParams& p);
Status rmsnorm_quantize(const RmsNormQuantizeParams& p);
Status gelu_quantize(const GeluQuantizeParams& p);
Status concat_gelu_quantize(const ConcatGeluQuantizeParams& p);
Status swiglu_quantize(const SwigluQuantizeParams& p);
Status concat_swiglu_quantize(const ConcatSwigluQuantizeParams& p);

// The W8A8 GEMM with its epilogue, bit-exact int32 and once-rounded scaled outputs (round to
// nearest even). Multithreaded over rows of the output. Ignores workspace. Validation is
// validate(GemmParams) (the same alignment rules as the GPU); M = 0 is Ok and writes nothing.
Status gemm_w8a8(const GemmParams& p);

// One element of the epilogue, exactly as every kernel must compute it, before the one rounding
// to the output type: `float(acc) * (scale_a * scale_b) + bias` in fp32, two roundings, no FMA.
// Without a bias the reference passes -0.0f, the exact identity of fp32 addition.
float epilogue_value(int32_t acc, float scale_a, float scale_b, float bias);

}  // namespace int8dit::ref
