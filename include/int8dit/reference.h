// int8dit: the CPU reference of every operation. It is the tests' oracle and the CPU fallback,
// and computes exactly DESIGN.md's semantics. All pointers here are host pointers.
#pragma once

#include "int8dit/gemm.h"
#include "int8dit/quantize.h"

namespace int8dit::ref {

// Quantize rows (x_type kBF16, kFP16 or kFP32). Multithreaded over rows.
Status quantize_rows(const QuantizeRowsParams& p);

// The W8A8 GEMM with its epilogue, bit-exact int32 and once-rounded scaled outputs.
// Multithreaded over rows of the output. Ignores workspace.
Status gemm_w8a8(const GemmParams& p);

// One element of the epilogue, exactly as every kernel must compute it (fp32, then one rounding).
float epilogue_value(int32_t acc, float scale_a, float scale_b, float bias);

}  // namespace int8dit::ref
