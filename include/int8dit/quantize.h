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

// ---- Quantization fused into the DiT ops that produce GEMM inputs ----
//
// Each op computes an fp32 value v_k per element of a row, optionally writes it rounded to x_type
// into y, divides it by the SmoothQuant divisor s_k when one is given, and quantizes the row exactly
// as quantize_rows does. Reductions run in a different order on the GPU than in the CPU reference,
// so results agree within tolerance (scales 1e-5 relative; int8 values off by at most 1 on at most
// 0.1% of elements), not bit for bit. x, y and the per-channel vectors share x_type (bf16 or fp16).
// A row that is not a multiple of 8 elements, a stride/pointer not 16-byte aligned, or a row longer
// than 16384 elements takes a slower scalar path (also for quantize_rows); it is still correct.

// LayerNorm without affine, then adaLN modulation, then quantization (DiT qkv / fc1 inputs):
//   x_hat = (x - mean) / sqrt(var + eps)        (biased variance over the row)
//   v     = x_hat * (1 + mod_scale[b][k]) + mod_shift[b][k],   b = row / tokens_per_batch
struct LayerNormModulateQuantizeParams {
  int64_t rows = 0;             // M = batches * tokens_per_batch
  int64_t cols = 0;             // K (hidden size)
  const void* x = nullptr;      // [rows, cols], row stride ldx
  DType x_type = DType::kBF16;  // kBF16 or kFP16
  int64_t ldx = 0;
  float eps = 1e-6f;
  int64_t tokens_per_batch = 0;      // rows per batch element; rows must be a multiple of it
  const void* mod_shift = nullptr;   // [rows / tokens_per_batch, cols] of x_type, row stride ld_mod
  const void* mod_scale = nullptr;   // same layout (e.g. chunks of the adaLN linear's output)
  int64_t ld_mod = 0;                // >= cols
  const float* smooth = nullptr;     // optional SmoothQuant divisor s_k (length cols)
  int8_t* q = nullptr;               // [rows, cols], row stride ldq
  int64_t ldq = 0;
  float* scale = nullptr;            // [rows] fp32
  void* y = nullptr;                 // optional: v (before smoothing) as x_type, row stride ldy
  int64_t ldy = 0;
  // Optional gated residual update ahead of the norm (a DiT block's h = h + gate_b * attention, right
  // before its MLP's norm): where `update` is set, the row normalized is r = x + gate[b][k] * update
  // (gate 1 where null), one fp32 fused multiply-add rounded once to x_type, and r is also written to
  // x_out, the new residual stream. The GPU kernels take it where cols % 8 == 0, cols <= 16384, every
  // row of x, update, gate, x_out, y, mod_shift and mod_scale starts 16-byte aligned (pointers and
  // strides), q's rows 8-byte aligned and smooth (if any) 16-byte aligned; elsewhere they refuse it
  // with a message (the reference takes any layout). x_out may be x itself or the update (the same
  // pointer and stride: each element is read before it is written), never a partial overlap.
  const void* update = nullptr;      // [rows, cols] of x_type, row stride ld_update
  int64_t ld_update = 0;
  const void* gate = nullptr;        // optional [rows / tokens_per_batch, cols] of x_type, row stride ld_gate
  int64_t ld_gate = 0;
  void* x_out = nullptr;             // [rows, cols] of x_type, row stride ld_x_out; required with update
  int64_t ld_x_out = 0;
  // RMSNorm's statistics instead of LayerNorm's (LTX-Video's norms): no mean subtracted,
  // v = x / sqrt(mean(x^2) + eps) * (1 + scale_b[k]) + shift_b[k]; everything else as above.
  bool rms_norm = false;
  // mod_scale is the norm's own weight and mod_shift its bias: v = x_hat * mod_scale[b][k] +
  // mod_shift[b][k], without the modulation's 1 + (a LayerNorm with elementwise affine, such as Wan's
  // norm before its cross-attention, given its weight and bias as the rows).
  bool scale_is_weight = false;
};

// RMSNorm with weight, then quantization: v = x / sqrt(mean(x^2) + eps) * weight[k].
struct RmsNormQuantizeParams {
  int64_t rows = 0;
  int64_t cols = 0;
  const void* x = nullptr;      // [rows, cols], row stride ldx
  DType x_type = DType::kBF16;  // kBF16 or kFP16
  int64_t ldx = 0;
  float eps = 1e-6f;
  const void* weight = nullptr;  // [cols] of x_type
  const float* smooth = nullptr;
  int8_t* q = nullptr;
  int64_t ldq = 0;
  float* scale = nullptr;
  void* y = nullptr;             // optional: v (before smoothing) as x_type
  int64_t ldy = 0;
};

// GELU (tanh approximation), then quantization (the MLP's second linear):
//   v = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
struct GeluQuantizeParams {
  int64_t rows = 0;
  int64_t cols = 0;
  const void* x = nullptr;      // [rows, cols], row stride ldx
  DType x_type = DType::kBF16;  // kBF16 or kFP16
  int64_t ldx = 0;
  const float* smooth = nullptr;
  int8_t* q = nullptr;
  int64_t ldq = 0;
  float* scale = nullptr;
  void* y = nullptr;             // optional: v (before smoothing) as x_type
  int64_t ldy = 0;
};

// GELU of one input concatenated after another, then quantization: Flux's single-stream block feeds
// proj_out with cat([attention output, GELU(proj_mlp output)], -1), which in PyTorch is a GELU pass, a
// concatenation pass and proj_out's own quantization pass. Here one pass reads both inputs once:
//   v = [a_0, ..., a_{a_cols - 1}, GELU(h_0), ..., GELU(h_{h_cols - 1})]     (cols = a_cols + h_cols)
// a and h share x_type. No y output: the concatenated bf16 row is what this op exists to not write.
// The vector kernels run (each 8-column vector from one input) where a_cols and a_cols + h_cols are
// multiples of 8, a_cols + h_cols <= 16384, a and h and their strides allow 16-byte loads, q and ldq
// 8-byte stores, and smooth (if any) is 16-byte aligned; otherwise the scalar path, still correct.
struct ConcatGeluQuantizeParams {
  int64_t rows = 0;
  const void* a = nullptr;      // [rows, a_cols], row stride lda: quantized as it is
  int64_t a_cols = 0;
  int64_t lda = 0;              // >= a_cols
  const void* h = nullptr;      // [rows, h_cols], row stride ldh: GELU (tanh form) applied
  int64_t h_cols = 0;
  int64_t ldh = 0;              // >= h_cols
  DType x_type = DType::kBF16;  // of a and h: kBF16 or kFP16
  const float* smooth = nullptr;  // optional SmoothQuant divisor s_k (length a_cols + h_cols)
  int8_t* q = nullptr;          // [rows, a_cols + h_cols], row stride ldq
  int64_t ldq = 0;              // >= a_cols + h_cols
  float* scale = nullptr;       // [rows] fp32
};

// SwiGLU, then quantization: the second linear's input of a gated MLP (FLUX.2's feed-forward, Z-Image's
// w2), which in PyTorch is a SiLU pass, a product pass and the linear's own quantization pass. Here one
// pass reads both inputs once:
//   v_k = silu(gate_k) * up_k,   silu(g) = g / (1 + e^-g)       (in fp32; the product is not rounded)
// gate and up are two GEMM outputs, or the two halves of one ([rows, 2 cols], gate first: ld = 2 cols).
// GPU: the vector kernels only: cols % 8 == 0 and <= 24576 (FLUX.2-dev's 18432 included; rows over
// 16384 run a 512-thread kernel, not yet run on a GPU), gate, up and their strides 16-byte loads,
// q and ldq 8-byte stores, smooth (if any) 16-byte aligned; other layouts are refused with
// kNotSupported before anything runs (the CPU reference takes any).
struct SwigluQuantizeParams {
  int64_t rows = 0;
  int64_t cols = 0;             // of gate, up and q
  const void* gate = nullptr;   // [rows, cols], row stride ld_gate: SiLU applied
  int64_t ld_gate = 0;          // >= cols
  const void* up = nullptr;     // [rows, cols], row stride ld_up
  int64_t ld_up = 0;            // >= cols
  DType x_type = DType::kBF16;  // of gate and up: kBF16 or kFP16
  const float* smooth = nullptr;  // optional SmoothQuant divisor s_k [cols]
  int8_t* q = nullptr;          // [rows, cols], row stride ldq
  int64_t ldq = 0;              // >= cols
  float* scale = nullptr;       // [rows] fp32
};

// The SwiGLU of a gated MLP concatenated after another input, then quantization: FLUX.2's single-stream
// blocks (48 of FLUX.2-dev's 56) feed to_out with cat([attention output, silu(gate) * up], -1), gate
// and up the two halves of the MLP part of one fused projection. In PyTorch that is a SiLU pass, a
// product pass, a concatenation pass and to_out's quantization pass; here one pass reads a, gate and
// up once:
//   v = [a_0, ..., a_{a_cols - 1}, silu(gate_0) * up_0, ..., silu(gate_{h_cols - 1}) * up_{h_cols - 1}]
// (cols = a_cols + h_cols; the product in fp32, not rounded). a, gate and up share x_type.
// GPU: the vector kernels only: a_cols and h_cols multiples of 8, cols <= 24576 (FLUX.2-dev: 6144 +
// 18432, the 512-thread kernel), a, gate, up and their strides 16-byte loads, q and ldq 8-byte stores,
// smooth (if any) 16-byte aligned; other layouts are refused with kNotSupported before anything runs
// (the CPU reference takes any). NOTE: new on 2026-12-05, not yet run on a GPU.
struct ConcatSwigluQuantizeParams {
  int64_t rows = 0;
  const void* a = nullptr;      // [rows, a_cols], row stride lda: quantized as it is
  int64_t a_cols = 0;
  int64_t lda = 0;              // >= a_cols
  const void* gate = nullptr;   // [rows, h_cols], row stride ld_gate: SiLU applied
  int64_t ld_gate = 0;          // >= h_cols
  const void* up = nullptr;     // [rows, h_cols], row stride ld_up
  int64_t ld_up = 0;            // >= h_cols
  int64_t h_cols = 0;
  DType x_type = DType::kBF16;  // of a, gate and up: kBF16 or kFP16
  const float* smooth = nullptr;  // optional SmoothQuant divisor s_k [a_cols + h_cols]
  int8_t* q = nullptr;          // [rows, a_cols + h_cols], row stride ldq
  int64_t ldq = 0;              // >= a_cols + h_cols
  float* scale = nullptr;       // [rows] fp32
};

// GPU entry points (device pointers). Every argument is checked before anything is launched, so
// on an error nothing is written.
Status layernorm_modulate_quantize(const LayerNormModulateQuantizeParams& p, cudaStream_t stream);
Status rmsnorm_quantize(const RmsNormQuantizeParams& p, cudaStream_t stream);
Status gelu_quantize(const GeluQuantizeParams& p, cudaStream_t stream);
Status concat_gelu_quantize(const ConcatGeluQuantizeParams& p, cudaStream_t stream);
Status swiglu_quantize(const SwigluQuantizeParams& p, cudaStream_t stream);
Status concat_swiglu_quantize(const ConcatSwigluQuantizeParams& p, cudaStream_t stream);

Status validate(const LayerNormModulateQuantizeParams& p);
Status validate(const RmsNormQuantizeParams& p);
Status validate(const GeluQuantizeParams& p);
Status validate(const ConcatGeluQuantizeParams& p);
Status validate(const SwigluQuantizeParams& p);
Status validate(const ConcatSwigluQuantizeParams& p);

}  // namespace int8dit
