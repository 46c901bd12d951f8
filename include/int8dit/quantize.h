// int8dit: symmetric int8 quantization with one fp32 scale per row (DESIGN.md "Semantics").
//
//   amax = max_k |x_k|; scale = amax / 127.0f; inv = 127.0f / amax;
//   q_k  = clamp(rint(x_k * inv), -127, 127)          (fp32, round half to even)
//
// Activations: per token (rows of X [M, K]), dynamic. Weights: per output channel (rows of W [N, K]),
// offline. A zero row gives zeros and scale 0; a row holding NaN/Inf gives scale NaN (so the GEMM
// output row is NaN, never silently zero).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "int8dit/status.h"
#include "int8dit/types.h"

namespace int8dit {

struct QuantizeRowsParams {
  int64_t rows = 0;             // M (tokens) or N (output channels)
  int64_t cols = 0;             // K
  const void* x = nullptr;      // [rows, cols], row stride ldx elements
  DType x_type = DType::kBF16;  // kBF16, kFP16 (kFP32 on the CPU reference only)
  int64_t ldx = 0;              // >= cols
  // Optional SmoothQuant divisor s_k (length cols): the row quantized is x_k / s_k.
  const float* smooth = nullptr;
  int8_t* q = nullptr;          // [rows, cols] int8, row stride ldq
  int64_t ldq = 0;              // >= cols
  float* scale = nullptr;       // [rows] fp32
};

// Quantize rows on the GPU. All pointers are device pointers.
Status quantize_rows(const QuantizeRowsParams& p, cudaStream_t stream);

// Per-channel weight quantization: the same operation on the rows of W [N, K]. Weights are
// quantized once, offline; this is a named entry point so call sites say what they mean.
Status quantize_weights(const QuantizeRowsParams& p, cudaStream_t stream);

// Argument checks shared by the GPU path and the reference (no pointer-kind checks).
Status validate(const QuantizeRowsParams& p);

}  // namespace int8dit
