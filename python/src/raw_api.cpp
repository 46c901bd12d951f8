#include "raw_api.h"

#include <cstdint>

#include "errors.h"
#include "int8dit/attention.h"
#include "int8dit/gemm.h"
#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "int8dit/residual.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace int8dit_py {
namespace {

using int8dit::DType;
using int8dit::GemmParams;
using int8dit::QuantizeRowsParams;
using int8dit::ScaleMode;
using int8dit::Status;

template <typename T>
T* ptr(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

// The fields that quantize_rows and the fused row ops (GELU) share, by name.
template <typename Params>
Params row_params(uintptr_t x, DType x_type, int64_t rows, int64_t cols, int64_t ldx, uintptr_t smooth, uintptr_t q,
                  int64_t ldq, uintptr_t scale) {
  Params p;
  p.rows = rows;
  p.cols = cols;
  p.x = ptr<const void>(x);
  p.x_type = x_type;
  p.ldx = ldx;
  p.smooth = ptr<const float>(smooth);
  p.q = ptr<int8_t>(q);
  p.ldq = ldq;
  p.scale = ptr<float>(scale);
  return p;
}

QuantizeRowsParams quantize_params(uintptr_t x, DType x_type, int64_t rows, int64_t cols, int64_t ldx,
                                   uintptr_t smooth, uintptr_t q, int64_t ldq, uintptr_t scale) {
  return row_params<QuantizeRowsParams>(x, x_type, rows, cols, ldx, smooth, q, ldq, scale);
}

Status run_quantize(bool host, const QuantizeRowsParams& p, uintptr_t stream) {
  if (host) {
    nb::gil_scoped_release release;
    return int8dit::ref::quantize_rows(p);
  }
  return int8dit::quantize_rows(p, ptr<CUstream_st>(stream));
}

Status run_gemm(bool host, const GemmParams& p, uintptr_t stream) {
  if (host) {
    nb::gil_scoped_release release;
    return int8dit::ref::gemm_w8a8(p);
  }
  int8dit::GemmOptions opts;
  // NOTE: torch already placed every tensor on this device; skipping cudaPointerGetAttributes saves a
  // driver call per pointer and keeps the call free of anything but the kernel launch (graph capture).
  opts.check_pointers = false;
  return int8dit::gemm_w8a8(p, ptr<CUstream_st>(stream), &opts);
}

void quantize_raw(bool host, uintptr_t x, DType x_type, int64_t rows, int64_t cols, int64_t ldx, uintptr_t smooth,
                  uintptr_t q, int64_t ldq, uintptr_t scale, uintptr_t stream) {
  throw_if_error(run_quantize(host, quantize_params(x, x_type, rows, cols, ldx, smooth, q, ldq, scale), stream),
                 "quantize_rows");
}

GemmParams gemm_params(int64_t m, int64_t n, int64_t k, uintptr_t a, int64_t lda, uintptr_t b, int64_t ldb,
                       uintptr_t scale_a, bool scale_a_per_tensor, uintptr_t scale_b, bool scale_b_per_tensor,
                       uintptr_t bias, uintptr_t d, DType d_type, int64_t ldd) {
  GemmParams p;
  p.m = m;
  p.n = n;
  p.k = k;
  p.a = ptr<const int8_t>(a);
  p.lda = lda;
  p.b = ptr<const int8_t>(b);
  p.ldb = ldb;
  p.scale_a = ptr<const float>(scale_a);
  p.scale_a_mode = scale_a_per_tensor ? ScaleMode::kPerTensor : ScaleMode::kPerRow;
  p.scale_b = ptr<const float>(scale_b);
  p.scale_b_mode = scale_b_per_tensor ? ScaleMode::kPerTensor : ScaleMode::kPerCol;
  p.bias = ptr<const float>(bias);
  p.d = ptr<void>(d);
  p.d_type = d_type;
  p.ldd = ldd;
  return p;
}

void gemm_raw(bool host, int64_t m, int64_t n, int64_t k, uintptr_t a, int64_t lda, uintptr_t b, int64_t ldb,
              uintptr_t scale_a, bool scale_a_per_tensor, uintptr_t scale_b, bool scale_b_per_tensor, uintptr_t bias,
              uintptr_t d, DType d_type, int64_t ldd, uintptr_t workspace, size_t workspace_bytes, uintptr_t stream) {
  GemmParams p = gemm_params(m, n, k, a, lda, b, ldb, scale_a, scale_a_per_tensor, scale_b, scale_b_per_tensor, bias,
                             d, d_type, ldd);
  p.workspace = ptr<void>(workspace);
  p.workspace_bytes = workspace_bytes;
  throw_if_error(run_gemm(host, p, stream), "gemm_w8a8");
}

size_t gemm_workspace_size_raw(int64_t m, int64_t n, int64_t k, uintptr_t a, uintptr_t b, uintptr_t scale_a,
                               uintptr_t scale_b, uintptr_t bias, uintptr_t d, DType d_type) {
  const GemmParams p = gemm_params(m, n, k, a, k, b, k, scale_a, false, scale_b, false, bias, d, d_type, n);
  int8dit::GemmOptions opts;
  opts.check_pointers = false;
  throw_if_error(int8dit::gemm_can_implement(p, &opts), "gemm_w8a8");
  return int8dit::gemm_workspace_size(p, &opts);
}

// The dynamic W8A8 linear layer: per-token quantization of x [M, K] (ldx), then the GEMM with the
// per-channel weight [N, K] and bias into d [M, N]. q [M, K] and scale_x [M] are caller scratch.
void linear_raw(bool host, uintptr_t x, DType x_type, int64_t m, int64_t k, int64_t ldx, uintptr_t smooth,
                uintptr_t q, uintptr_t scale_x, uintptr_t w, int64_t n, uintptr_t scale_w, uintptr_t bias,
                uintptr_t d, DType d_type, uintptr_t workspace, size_t workspace_bytes, uintptr_t stream) {
  throw_if_error(run_quantize(host, quantize_params(x, x_type, m, k, ldx, smooth, q, k, scale_x), stream),
                 "linear (quantize_rows)");
  GemmParams p = gemm_params(m, n, k, q, k, w, k, scale_x, false, scale_w, false, bias, d, d_type, n);
  p.workspace = ptr<void>(workspace);
  p.workspace_bytes = workspace_bytes;
  throw_if_error(run_gemm(host, p, stream), "linear (gemm_w8a8)");
}

// A fused producer on the CPU reference (host pointers, the GIL released) or the GPU; raises on error.
template <typename Params>
void run_fused_op(bool host, const Params& p, uintptr_t stream, Status (*on_host)(const Params&),
                  Status (*on_gpu)(const Params&, cudaStream_t), const char* name) {
  Status st;
  if (host) {
    nb::gil_scoped_release release;
    st = on_host(p);
  } else {
    st = on_gpu(p, ptr<CUstream_st>(stream));
  }
  throw_if_error(st, name);
}

// LayerNorm (no affine) + adaLN modulation + per-token quantization: the producer of the qkv / fc1
// inputs of a DiT block, fused so that the GEMMs read int8 directly. shift/scale: [batches, cols] of
// x_type with row stride ld_mod; y (optional, [rows, cols]) receives the modulated activations.
// Optionally with the gated residual update ahead of the norm: update (row stride ld_update), gate
// ([batches, cols], row stride ld_gate; 0: none) and x_out (row stride ld_x_out) receive r = x + gate * update.
// scale_is_weight: scale and shift are a LayerNorm's own weight and bias (no 1 + scale).
void layernorm_modulate_quantize_raw(bool host, uintptr_t x, DType x_type, int64_t rows, int64_t cols, int64_t ldx,
                                     float eps, int64_t tokens_per_batch, uintptr_t shift, uintptr_t scale,
                                     int64_t ld_mod, uintptr_t smooth, uintptr_t q, uintptr_t q_scale, uintptr_t y,
                                     uintptr_t stream, uintptr_t update, int64_t ld_update, uintptr_t gate,
                                     int64_t ld_gate, uintptr_t x_out, int64_t ld_x_out, bool rms_norm,
                                     bool scale_is_weight) {
  int8dit::LayerNormModulateQuantizeParams p;
  p.rms_norm = rms_norm;
  p.scale_is_weight = scale_is_weight;
  p.rows = rows;
  p.cols = cols;
  p.x = ptr<const void>(x);
  p.x_type = x_type;
  p.ldx = ldx;
  p.eps = eps;
  p.tokens_per_batch = tokens_per_batch;
  p.mod_shift = ptr<const void>(shift);
  p.mod_scale = ptr<const void>(scale);
  p.ld_mod = ld_mod;
  p.smooth = ptr<const float>(smooth);
  p.q = ptr<int8_t>(q);
  p.ldq = cols;
  p.scale = ptr<float>(q_scale);
  p.y = ptr<void>(y);
  p.ldy = cols;
  p.update = ptr<const void>(update);
  p.ld_update = ld_update;
  p.gate = ptr<const void>(gate);
  p.ld_gate = ld_gate;
  p.x_out = ptr<void>(x_out);
  p.ld_x_out = ld_x_out;
  run_fused_op(host, p, stream, &int8dit::ref::layernorm_modulate_quantize, &int8dit::layernorm_modulate_quantize,
               "layernorm_modulate_quantize");
}

// GELU (tanh form) + per-token quantization: the producer of the MLP's second linear input (fc2),
// so that fc1's bf16 output is read once and the GELU output never written.
void gelu_quantize_raw(bool host, uintptr_t x, DType x_type, int64_t rows, int64_t cols, int64_t ldx, uintptr_t smooth,
                       uintptr_t q, uintptr_t q_scale, uintptr_t stream) {
  const auto p = row_params<int8dit::GeluQuantizeParams>(x, x_type, rows, cols, ldx, smooth, q, cols, q_scale);
  run_fused_op(host, p, stream, &int8dit::ref::gelu_quantize, &int8dit::gelu_quantize, "gelu_quantize");
}

// RMSNorm with its weight + per-token quantization (quantize.h): the producer for linears after an RMSNorm;
// y (optional, [rows, cols] contiguous): the normalized rows themselves, rounded once to x_type.
void rmsnorm_quantize_raw(bool host, uintptr_t x, DType x_type, int64_t rows, int64_t cols, int64_t ldx, float eps,
                          uintptr_t weight, uintptr_t smooth, uintptr_t q, uintptr_t q_scale, uintptr_t stream,
                          uintptr_t y) {
  auto p = row_params<int8dit::RmsNormQuantizeParams>(x, x_type, rows, cols, ldx, smooth, q, cols, q_scale);
  p.eps = eps;
  p.weight = ptr<const void>(weight);
  p.y = ptr<void>(y);
  p.ldy = cols;
  run_fused_op(host, p, stream, &int8dit::ref::rmsnorm_quantize, &int8dit::rmsnorm_quantize, "rmsnorm_quantize");
}

// [a | GELU(h)] + per-token quantization: Flux's single-stream proj_out input, read from the attention
// output and proj_mlp's output, so that neither GELU's output nor the concatenation is written.
void concat_gelu_quantize_raw(bool host, uintptr_t a, int64_t a_cols, int64_t lda, uintptr_t h, int64_t h_cols,
                              int64_t ldh, DType x_type, int64_t rows, uintptr_t smooth, uintptr_t q, uintptr_t q_scale,
                              uintptr_t stream) {
  int8dit::ConcatGeluQuantizeParams p;
  p.rows = rows;
  p.a = ptr<const void>(a);
  p.a_cols = a_cols;
  p.lda = lda;
  p.h = ptr<const void>(h);
  p.h_cols = h_cols;
  p.ldh = ldh;
  p.x_type = x_type;
  p.smooth = ptr<const float>(smooth);
  p.q = ptr<int8_t>(q);
  p.ldq = a_cols + h_cols;
  p.scale = ptr<float>(q_scale);
  run_fused_op(host, p, stream, &int8dit::ref::concat_gelu_quantize, &int8dit::concat_gelu_quantize,
               "concat_gelu_quantize");
}

// silu(gate) * up + per-token quantization: a gated MLP's second-linear input (FLUX.2, Z-Image), read
// from the two inputs so that neither the SiLU nor the product is written.
void swiglu_quantize_raw(bool host, uintptr_t gate, int64_t ld_gate, uintptr_t up, int64_t ld_up, DType x_type,
                         int64_t rows, int64_t cols, uintptr_t smooth, uintptr_t q, uintptr_t q_scale, uintptr_t stream) {
  int8dit::SwigluQuantizeParams p;
  p.rows = rows;
  p.cols = cols;
  p.gate = ptr<const void>(gate);
  p.ld_gate = ld_gate;
  p.up = ptr<const void>(up);
  p.ld_up = ld_up;
  p.x_type = x_type;
  p.smooth = ptr<const float>(smooth);
  p.q = ptr<int8_t>(q);
  p.ldq = cols;
  p.scale = ptr<float>(q_scale);
  run_fused_op(host, p, stream, &int8dit::ref::swiglu_quantize, &int8dit::swiglu_quantize, "swiglu_quantize");
}

// [a | silu(gate) * up] quantized (quantize.h): FLUX.2's single-stream to_out input. q is [rows, a_cols + h_cols].
void concat_swiglu_quantize_raw(bool host, uintptr_t a, int64_t a_cols, int64_t lda, uintptr_t gate, int64_t ld_gate,
                                uintptr_t up, int64_t ld_up, int64_t h_cols, DType x_type, int64_t rows,
                                uintptr_t smooth, uintptr_t q, uintptr_t q_scale, uintptr_t stream) {
  int8dit::ConcatSwigluQuantizeParams p;
  p.rows = rows;
  p.a = ptr<const void>(a);
  p.a_cols = a_cols;
  p.lda = lda;
  p.gate = ptr<const void>(gate);
  p.ld_gate = ld_gate;
  p.up = ptr<const void>(up);
  p.ld_up = ld_up;
  p.h_cols = h_cols;
  p.x_type = x_type;
  p.smooth = ptr<const float>(smooth);
  p.q = ptr<int8_t>(q);
  p.ldq = a_cols + h_cols;
  p.scale = ptr<float>(q_scale);
  run_fused_op(host, p, stream, &int8dit::ref::concat_swiglu_quantize, &int8dit::concat_swiglu_quantize,
               "concat_swiglu_quantize");
}

// The gated residual update out = x + gate[b] * update (residual.h): the end of a DiT block, where
// PyTorch's broadcasting addcmul does not vectorize. gate 0: none (1); out may be x or update itself.
// gate_fp32: the gate in fp32 instead; update 0: 1 (out = x + gate: a modulation table added to rows).
void gated_add_raw(bool host, DType type, int64_t rows, int64_t cols, uintptr_t x, int64_t ldx, uintptr_t update,
                   int64_t ld_update, uintptr_t gate, int64_t ld_gate, int64_t tokens_per_batch, uintptr_t out,
                   int64_t ld_out, uintptr_t stream, uintptr_t gate_fp32) {
  int8dit::GatedAddParams p;
  p.rows = rows;
  p.cols = cols;
  p.type = type;
  p.x = ptr<const void>(x);
  p.ldx = ldx;
  p.update = ptr<const void>(update);
  p.ld_update = ld_update;
  p.gate = ptr<const void>(gate);
  p.gate_fp32 = ptr<const float>(gate_fp32);
  p.ld_gate = ld_gate;
  p.tokens_per_batch = tokens_per_batch;
  p.out = ptr<void>(out);
  p.ld_out = ld_out;
  run_fused_op(host, p, stream, &int8dit::ref::gated_add, &int8dit::gated_add, "gated_add");
}

// Per-head RMSNorm + rotary embedding of queries or keys (attention.h): x and out [batches, tokens,
// heads, head_dim] with element strides; weight (of `type`), weight_fp32, cos and sin 0 where absent;
// normalize false: no norm; subtract_mean: LayerNorm statistics; split_halves: (i, i + D/2) rotary pairs;
// bias (of `type`) 0 where absent; norm_heads: the heads a norm spans; rope_head_stride: the cos/sin
// offset from one head of a token to the next.
void qk_norm_rope_raw(bool host, DType type, int64_t batches, int64_t tokens, int64_t heads, int64_t head_dim,
                      uintptr_t x, int64_t x_batch_stride, int64_t x_token_stride, int64_t x_head_stride,
                      uintptr_t weight, float eps, uintptr_t cos, uintptr_t sin, int64_t ld_rope, int64_t rope_rows,
                      int64_t rope_offset, uintptr_t out, int64_t out_batch_stride, int64_t out_token_stride,
                      int64_t out_head_stride, uintptr_t stream, bool normalize, uintptr_t weight_fp32,
                      bool subtract_mean, bool split_halves, uintptr_t bias, int64_t norm_heads,
                      int64_t rope_head_stride) {
  int8dit::QKNormRopeParams p;
  p.norm_heads = norm_heads;
  p.rope_head_stride = rope_head_stride;
  p.bias = ptr<const void>(bias);
  p.normalize = normalize;
  p.subtract_mean = subtract_mean;
  p.rope_split_halves = split_halves;
  p.weight_fp32 = ptr<const float>(weight_fp32);
  p.batches = batches;
  p.tokens = tokens;
  p.heads = heads;
  p.head_dim = head_dim;
  p.type = type;
  p.x = ptr<const void>(x);
  p.x_batch_stride = x_batch_stride;
  p.x_token_stride = x_token_stride;
  p.x_head_stride = x_head_stride;
  p.weight = ptr<const void>(weight);
  p.eps = eps;
  p.cos = ptr<const float>(cos);
  p.sin = ptr<const float>(sin);
  p.ld_rope = ld_rope;
  p.rope_rows = rope_rows;
  p.rope_offset = rope_offset;
  p.out = ptr<void>(out);
  p.out_batch_stride = out_batch_stride;
  p.out_token_stride = out_token_stride;
  p.out_head_stride = out_head_stride;
  run_fused_op(host, p, stream, &int8dit::ref::qk_norm_rope, &int8dit::qk_norm_rope, "qk_norm_rope");
}

}  // namespace

void register_raw_api(nb::module_& m) {
  nb::module_ r = m.def_submodule("raw", "pointer-level entry points used by int8dit.torch (pointers are ints)");
  r.def("quantize_rows", &quantize_raw, "host"_a, "x"_a, "x_type"_a, "rows"_a, "cols"_a, "ldx"_a, "smooth"_a, "q"_a,
        "ldq"_a, "scale"_a, "stream"_a);
  r.def("gemm_w8a8", &gemm_raw, "host"_a, "m"_a, "n"_a, "k"_a, "a"_a, "lda"_a, "b"_a, "ldb"_a, "scale_a"_a,
        "scale_a_per_tensor"_a, "scale_b"_a, "scale_b_per_tensor"_a, "bias"_a, "d"_a, "d_type"_a, "ldd"_a,
        "workspace"_a, "workspace_bytes"_a, "stream"_a);
  r.def("gemm_workspace_size", &gemm_workspace_size_raw, "m"_a, "n"_a, "k"_a, "a"_a, "b"_a, "scale_a"_a, "scale_b"_a,
        "bias"_a, "d"_a, "d_type"_a);
  r.def("linear", &linear_raw, "host"_a, "x"_a, "x_type"_a, "m"_a, "k"_a, "ldx"_a, "smooth"_a, "q"_a, "scale_x"_a,
        "w"_a, "n"_a, "scale_w"_a, "bias"_a, "d"_a, "d_type"_a, "workspace"_a, "workspace_bytes"_a, "stream"_a);
  r.def("layernorm_modulate_quantize", &layernorm_modulate_quantize_raw, "host"_a, "x"_a, "x_type"_a, "rows"_a,
        "cols"_a, "ldx"_a, "eps"_a, "tokens_per_batch"_a, "shift"_a, "scale"_a, "ld_mod"_a, "smooth"_a, "q"_a,
        "q_scale"_a, "y"_a, "stream"_a, "update"_a = 0, "ld_update"_a = 0, "gate"_a = 0, "ld_gate"_a = 0,
        "x_out"_a = 0, "ld_x_out"_a = 0, "rms_norm"_a = false, "scale_is_weight"_a = false);
  r.def("gelu_quantize", &gelu_quantize_raw, "host"_a, "x"_a, "x_type"_a, "rows"_a, "cols"_a, "ldx"_a, "smooth"_a,
        "q"_a, "q_scale"_a, "stream"_a);
  r.def("rmsnorm_quantize", &rmsnorm_quantize_raw, "host"_a, "x"_a, "x_type"_a, "rows"_a, "cols"_a, "ldx"_a, "eps"_a,
        "weight"_a, "smooth"_a, "q"_a, "q_scale"_a, "stream"_a, "y"_a = 0);
  r.def("concat_gelu_quantize", &concat_gelu_quantize_raw, "host"_a, "a"_a, "a_cols"_a, "lda"_a, "h"_a, "h_cols"_a,
        "ldh"_a, "x_type"_a, "rows"_a, "smooth"_a, "q"_a, "q_scale"_a, "stream"_a);
  r.def("swiglu_quantize", &swiglu_quantize_raw, "host"_a, "gate"_a, "ld_gate"_a, "up"_a, "ld_up"_a, "x_type"_a,
        "rows"_a, "cols"_a, "smooth"_a, "q"_a, "q_scale"_a, "stream"_a);
  r.def("concat_swiglu_quantize", &concat_swiglu_quantize_raw, "host"_a, "a"_a, "a_cols"_a, "lda"_a, "gate"_a,
        "ld_gate"_a, "up"_a, "ld_up"_a, "h_cols"_a, "x_type"_a, "rows"_a, "smooth"_a, "q"_a, "q_scale"_a, "stream"_a);
  r.def("gated_add", &gated_add_raw, "host"_a, "type"_a, "rows"_a, "cols"_a, "x"_a, "ldx"_a, "update"_a, "ld_update"_a,
        "gate"_a, "ld_gate"_a, "tokens_per_batch"_a, "out"_a, "ld_out"_a, "stream"_a, "gate_fp32"_a = 0);
  r.def("qk_norm_rope", &qk_norm_rope_raw, "host"_a, "type"_a, "batches"_a, "tokens"_a, "heads"_a, "head_dim"_a,
        "x"_a, "x_batch_stride"_a, "x_token_stride"_a, "x_head_stride"_a, "weight"_a, "eps"_a, "cos"_a, "sin"_a,
        "ld_rope"_a, "rope_rows"_a, "rope_offset"_a, "out"_a, "out_batch_stride"_a, "out_token_stride"_a,
        "out_head_stride"_a, "stream"_a, "normalize"_a = true, "weight_fp32"_a = 0, "subtract_mean"_a = false,
        "split_halves"_a = false, "bias"_a = 0, "norm_heads"_a = 1, "rope_head_stride"_a = 0);
}

}  // namespace int8dit_py
