// CPU reference of the fused quantization producers (quantize.h): each row's values v_k are computed
// in double and rounded once to fp32, the optional y output is v rounded to x_type, and the fp32 rows
// then go through ref::quantize_rows (with the SmoothQuant divisor), so quantization is the shared one.
#include <cmath>
#include <cstdint>
#include <vector>

#include "int8dit/reference.h"
#include "ref/half_bits.h"
#include "ref/parallel_rows.h"

namespace int8dit::ref {
namespace {

double load16(const void* base, DType type, int64_t i) {
  const uint16_t h = static_cast<const uint16_t*>(base)[i];
  return type == DType::kBF16 ? bf16_to_float(h) : fp16_to_float(h);
}

void store16(void* base, DType type, int64_t i, float v) {
  static_cast<uint16_t*>(base)[i] = type == DType::kBF16 ? float_to_bf16(v) : float_to_fp16(v);
}

// The op's fp32 values [rows, cols] through the shared quantization (with the SmoothQuant divisor).
Status quantize_values(const std::vector<float>& v, int64_t rows, int64_t cols, const float* smooth, int8_t* q,
                       int64_t ldq, float* scale) {
  QuantizeRowsParams qp;
  qp.rows = rows;
  qp.cols = cols;
  qp.x = v.data();
  qp.x_type = DType::kFP32;
  qp.ldx = cols;
  qp.smooth = smooth;
  qp.q = q;
  qp.ldq = ldq;
  qp.scale = scale;
  return quantize_rows(qp);
}

// Runs `row_values(row, x_row, v)` for every row (filling v[0, cols) from the input row), writes y,
// then quantizes the fp32 values. Common to every fused op.
template <typename P, typename RowValues>
Status fused_quantize(const P& p, RowValues row_values) {
  std::vector<float> v(static_cast<size_t>(p.rows * p.cols));
  parallel_rows(p.rows, p.cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* vr = v.data() + r * p.cols;
      row_values(r, static_cast<const uint16_t*>(p.x) + r * p.ldx, vr);
      if (p.y)
        for (int64_t k = 0; k < p.cols; ++k) store16(p.y, p.x_type, r * p.ldy + k, vr[k]);
    }
  });
  return quantize_values(v, p.rows, p.cols, p.smooth, p.q, p.ldq, p.scale);
}

double gelu_tanh(double x) {
  const double kSqrt2OverPi = 0.79788456080286535588;
  const double u = kSqrt2OverPi * (x + 0.044715 * x * x * x);
  // NOTE: 0.5 * x * (1 + tanh(u)) in that form cancels for x < 0, where tanh(u) -> -1: 0.7% off at
  // x = -7 and exactly 0 below about -7.3. x * sigmoid(2u) is the same function without the
  // cancellation (exp overflows to inf for very negative x, giving -0, correct to double precision).
  return x / (1.0 + std::exp(-2.0 * u));
}

}  // namespace

Status layernorm_modulate_quantize(const LayerNormModulateQuantizeParams& p) {
  Status st = validate(p);
  if (!st.ok() || p.rows == 0) return st;
  return fused_quantize(p, [&p](int64_t r, const uint16_t* x_in, float* v) {
    // With the gated residual update the row is r = x + gate * update (one fp32 FMA, rounded once to
    // x_type and written to x_out), and the norm reads that rounded row.
    const uint16_t* x = x_in;
    std::vector<uint16_t> updated;
    if (p.update) {
      updated.resize(static_cast<size_t>(p.cols));
      const int64_t gate_row = (r / p.tokens_per_batch) * p.ld_gate;
      for (int64_t k = 0; k < p.cols; ++k) {
        const float g = p.gate ? static_cast<float>(load16(p.gate, p.x_type, gate_row + k)) : 1.0f;
        const float u = static_cast<float>(load16(p.update, p.x_type, r * p.ld_update + k));
        store16(p.x_out, p.x_type, r * p.ld_x_out + k, std::fma(g, u, static_cast<float>(load16(x_in, p.x_type, k))));
        updated[static_cast<size_t>(k)] = static_cast<const uint16_t*>(p.x_out)[r * p.ld_x_out + k];
      }
      x = updated.data();
    }
    double sum = 0.0;
    for (int64_t k = 0; k < p.cols; ++k) sum += load16(x, p.x_type, k);
    const double mean = p.rms_norm ? 0.0 : sum / static_cast<double>(p.cols);
    double sq = 0.0;
    for (int64_t k = 0; k < p.cols; ++k) {
      const double d = load16(x, p.x_type, k) - mean;
      sq += d * d;
    }
    const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(p.cols) + static_cast<double>(p.eps));
    const int64_t mod_row = (r / p.tokens_per_batch) * p.ld_mod;
    const double scale_offset = p.scale_is_weight ? 0.0 : 1.0;  // the norm's weight, or 1 + the modulation's scale
    for (int64_t k = 0; k < p.cols; ++k) {
      const double x_hat = (load16(x, p.x_type, k) - mean) * rstd;
      v[k] = static_cast<float>(x_hat * (scale_offset + load16(p.mod_scale, p.x_type, mod_row + k)) +
                                load16(p.mod_shift, p.x_type, mod_row + k));
    }
  });
}

Status rmsnorm_quantize(const RmsNormQuantizeParams& p) {
  Status st = validate(p);
  if (!st.ok() || p.rows == 0) return st;
  return fused_quantize(p, [&p](int64_t, const uint16_t* x, float* v) {
    double sq = 0.0;
    for (int64_t k = 0; k < p.cols; ++k) {
      const double e = load16(x, p.x_type, k);
      sq += e * e;
    }
    const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(p.cols) + static_cast<double>(p.eps));
    for (int64_t k = 0; k < p.cols; ++k)
      v[k] = static_cast<float>(load16(x, p.x_type, k) * rstd * load16(p.weight, p.x_type, k));
  });
}

Status gelu_quantize(const GeluQuantizeParams& p) {
  Status st = validate(p);
  if (!st.ok() || p.rows == 0) return st;
  return fused_quantize(p, [&p](int64_t, const uint16_t* x, float* v) {
    for (int64_t k = 0; k < p.cols; ++k) v[k] = static_cast<float>(gelu_tanh(load16(x, p.x_type, k)));
  });
}

// [a | tail] quantized per row: a's a_cols values as they are, then h_cols values tail(r, k) writes;
// the shared part of the concat_* references.
template <typename Params, typename Tail>
static Status quantize_concatenated(const Params& p, Tail tail) {
  const int64_t cols = p.a_cols + p.h_cols;
  std::vector<float> v(static_cast<size_t>(p.rows * cols));
  parallel_rows(p.rows, cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* vr = v.data() + r * cols;
      for (int64_t k = 0; k < p.a_cols; ++k) vr[k] = static_cast<float>(load16(p.a, p.x_type, r * p.lda + k));
      for (int64_t k = 0; k < p.h_cols; ++k) vr[p.a_cols + k] = tail(r, k);
    }
  });
  return quantize_values(v, p.rows, cols, p.smooth, p.q, p.ldq, p.scale);
}

Status concat_gelu_quantize(const ConcatGeluQuantizeParams& p) {
  Status st = validate(p);
  if (!st.ok() || p.rows == 0) return st;
  return quantize_concatenated(p, [&p](int64_t r, int64_t k) {
    return static_cast<float>(gelu_tanh(load16(p.h, p.x_type, r * p.ldh + k)));
  });
}

// silu(g) * u in double, rounded once to fp32: the value the SwiGLU ops quantize.
static float silu_times(double g, double u) { return static_cast<float>(g / (1.0 + std::exp(-g)) * u); }

Status swiglu_quantize(const SwigluQuantizeParams& p) {
  Status st = validate(p);
  if (!st.ok() || p.rows == 0) return st;
  std::vector<float> v(static_cast<size_t>(p.rows * p.cols));
  parallel_rows(p.rows, p.cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* vr = v.data() + r * p.cols;
      for (int64_t k = 0; k < p.cols; ++k) {
        vr[k] = silu_times(load16(p.gate, p.x_type, r * p.ld_gate + k), load16(p.up, p.x_type, r * p.ld_up + k));
      }
    }
  });
  return quantize_values(v, p.rows, p.cols, p.smooth, p.q, p.ldq, p.scale);
}

Status concat_swiglu_quantize(const ConcatSwigluQuantizeParams& p) {
  Status st = validate(p);
  if (!st.ok() || p.rows == 0) return st;
  return quantize_concatenated(p, [&p](int64_t r, int64_t k) {
    return silu_times(load16(p.gate, p.x_type, r * p.ld_gate + k), load16(p.up, p.x_type, r * p.ld_up + k));
  });
}

}  // namespace int8dit::ref
