// `int8dit check`, step 3 (check_fused.h): each fused producer runs once on the CPU reference and once
// on the GPU with the same parameters, pointing at host or device copies of the same buffers.
#include "check_fused.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "check_compare.h"
#include "check_device.h"
#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "ref/half_bits.h"

namespace int8dit::cli {
namespace {

// Where an op's operands live, on the host or the device: the ops' parameter structs are filled from it.
struct Pointers {
  const uint16_t *x, *update, *mod, *gate, *weight;
  int8_t* q;
  float* scale;
  uint16_t *y, *x_out;
};

struct Outputs {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<uint16_t> y, x_out;
};

// The operands of every op: x and its shape, and inputs drawn from the seed.
struct Operands {
  int64_t m, k, batches;
  std::vector<uint16_t> x, update, mod, gate, weight;  // mod: [batches, 2k] (shift | scale); gate: [batches, k]

  Operands(const std::vector<uint16_t>& x_in, int64_t m_in, int64_t k_in, uint32_t seed)
      : m(m_in), k(k_in), batches(m_in % 2 == 0 ? 2 : 1), x(x_in) {
    std::mt19937 rng(seed ^ 0x5eedu);
    auto draw = [&](size_t n, float sigma, float mean) {
      std::normal_distribution<float> d(mean, sigma);
      std::vector<uint16_t> v(n);
      for (uint16_t& e : v) e = ref::float_to_bf16(d(rng));
      return v;
    };
    update = draw(static_cast<size_t>(m * k), 1.0f, 0.0f);
    mod = draw(static_cast<size_t>(batches * 2 * k), 0.3f, 0.0f);
    gate = draw(static_cast<size_t>(batches * k), 0.5f, 0.0f);
    weight = draw(static_cast<size_t>(k), 0.2f, 1.0f);
  }
  // Values the ops never write (int8 -128, a negative scale, bf16 -Inf), so that an element a kernel
  // skipped cannot pass, not even in the NaN row.
  Outputs poisoned() const {
    const size_t mk = static_cast<size_t>(m * k);
    return {std::vector<int8_t>(mk, -128), std::vector<float>(static_cast<size_t>(m), -1.0f),
            std::vector<uint16_t>(mk, 0xff80), std::vector<uint16_t>(mk, 0xff80)};
  }
};

// rms: RMSNorm's statistics (LTX-Video's modulated norms), residual: the gated residual update ahead of the norm.
LayerNormModulateQuantizeParams layernorm_params(const Operands& o, const Pointers& p, bool residual, bool rms = false) {
  LayerNormModulateQuantizeParams lp;
  lp.rms_norm = rms;
  lp.rows = o.m, lp.cols = o.k, lp.x = p.x, lp.x_type = DType::kBF16, lp.ldx = o.k, lp.eps = 1e-6f;
  lp.tokens_per_batch = o.m / o.batches, lp.mod_shift = p.mod, lp.mod_scale = p.mod + o.k, lp.ld_mod = 2 * o.k;
  lp.q = p.q, lp.ldq = o.k, lp.scale = p.scale, lp.y = p.y, lp.ldy = o.k;
  if (residual) {
    lp.update = p.update, lp.ld_update = o.k, lp.gate = p.gate, lp.ld_gate = o.k;
    lp.x_out = p.x_out, lp.ld_x_out = o.k;
  }
  return lp;
}

RmsNormQuantizeParams rmsnorm_params(const Operands& o, const Pointers& p) {
  RmsNormQuantizeParams rp;
  rp.rows = o.m, rp.cols = o.k, rp.x = p.x, rp.x_type = DType::kBF16, rp.ldx = o.k, rp.eps = 1e-6f;
  rp.weight = p.weight, rp.q = p.q, rp.ldq = o.k, rp.scale = p.scale;
  return rp;
}

GeluQuantizeParams gelu_params(const Operands& o, const Pointers& p) {
  GeluQuantizeParams gp;
  gp.rows = o.m, gp.cols = o.k, gp.x = p.x, gp.x_type = DType::kBF16, gp.ldx = o.k;
  gp.q = p.q, gp.ldq = o.k, gp.scale = p.scale;
  return gp;
}

// [a | GELU(h)] with a and h the two column ranges of x, read in place (row stride k): Flux's split, scaled.
ConcatGeluQuantizeParams concat_params(const Operands& o, const Pointers& p) {
  const int64_t a_cols = std::max<int64_t>(8, o.k / 5 / 8 * 8);
  ConcatGeluQuantizeParams cp;
  cp.rows = o.m, cp.a = p.x, cp.a_cols = a_cols, cp.lda = o.k;
  cp.h = p.x + a_cols, cp.h_cols = o.k - a_cols, cp.ldh = o.k, cp.x_type = DType::kBF16;
  cp.q = p.q, cp.ldq = o.k, cp.scale = p.scale;
  return cp;
}

// silu(gate) * up with the activations as the gate and the residual update's operand as up (two inputs
// of their own, as a gated MLP's two GEMM outputs are).
SwigluQuantizeParams swiglu_params(const Operands& o, const Pointers& p) {
  SwigluQuantizeParams sp;
  sp.rows = o.m, sp.cols = o.k, sp.gate = p.x, sp.ld_gate = o.k, sp.up = p.update, sp.ld_up = o.k;
  sp.x_type = DType::kBF16, sp.q = p.q, sp.ldq = o.k, sp.scale = p.scale;
  return sp;
}

// [a | silu(gate) * up] with a and gate the two column ranges of x (a about a quarter, as FLUX.2-dev's
// 6144 of 24576) and up the gated range of the residual update's operand, all read in place (row
// stride k): FLUX.2's single-stream to_out input, scaled.
ConcatSwigluQuantizeParams concat_swiglu_params(const Operands& o, const Pointers& p) {
  const int64_t a_cols = std::max<int64_t>(8, o.k / 4 / 8 * 8);
  ConcatSwigluQuantizeParams cp;
  cp.rows = o.m, cp.a = p.x, cp.a_cols = a_cols, cp.lda = o.k;
  cp.gate = p.x + a_cols, cp.ld_gate = o.k, cp.up = p.update + a_cols, cp.ld_up = o.k, cp.h_cols = o.k - a_cols;
  cp.x_type = DType::kBF16, cp.q = p.q, cp.ldq = o.k, cp.scale = p.scale;
  return cp;
}

// DESIGN.md's tolerance for the fused producers: scales within 1e-5 relative, int8 values within 1 on
// at most 0.1% of them. A NaN row's scale must be NaN and its int8 values the reference's (zeros)
// exactly: there is no reduction order to differ in.
bool report_quantized(const char* what, const Outputs& got, const Outputs& want, int64_t m, int64_t k) {
  int64_t compared = 0, off_by_one = 0, beyond = 0, bad_scales = 0;
  std::string first;
  for (int64_t r = 0; r < m; ++r) {
    const float g = got.scale[r], w = want.scale[r];
    const bool scale_ok = std::isnan(w) ? std::isnan(g) : std::fabs(g - w) <= 1e-5f * std::fabs(w);
    if (!scale_ok && bad_scales++ == 0 && first.empty())
      first = "scale of row " + std::to_string(r) + ": got " + std::to_string(g) + ", want " + std::to_string(w);
    for (int64_t c = 0; c < k; ++c) {
      const int d = std::abs(int(got.q[r * k + c]) - int(want.q[r * k + c]));
      const bool too_far = std::isnan(w) ? d != 0 : d > 1;
      ++compared;
      off_by_one += !too_far && d == 1;
      if (too_far && beyond++ == 0 && first.empty())
        first = "(" + std::to_string(r) + ", " + std::to_string(c) + "): got " + std::to_string(int(got.q[r * k + c])) +
                ", want " + std::to_string(int(want.q[r * k + c]));
    }
  }
  // (one is allowed however few values a small --m/--k leaves: 0.1% of 112 would allow none)
  const bool ok = bad_scales == 0 && beyond == 0 && off_by_one <= std::max<int64_t>(1, compared / 1000);
  if (ok) {
    std::printf("  ok    %-34s %lld int8 values, %lld off by one; %lld scales within 1e-5\n", what,
                (long long)compared, (long long)off_by_one, (long long)m);
  } else {
    std::printf("  FAIL  %-34s %lld scales beyond 1e-5, %lld int8 values off by more than one, %lld by one "
                "(of %lld; at most 0.1%% may be)%s%s\n",
                what, (long long)bad_scales, (long long)beyond, (long long)off_by_one, (long long)compared,
                first.empty() ? "" : "; first: ", first.c_str());
  }
  return ok;
}

// The widest rows the gated residual update takes on the GPU (quantize.h; the vector kernels only).
constexpr int64_t kMaxGatedResidualCols = 16384;
// The widest the SwiGLU ops take (their 512-thread kernel; quantize.h).
constexpr int64_t kMaxSwigluCols = 24576;

std::string show_bf16(uint16_t h) { return std::to_string(ref::bf16_to_float(h)); }

// The fused ops' bf16 output y, row by row: within 1 ulp of the reference, or 1 ulp plus the fp32 slack of
// the row's terms, 16 fp32 ulps of the row's largest |y| (at least 1e-6). A modulated value that is the small
// difference of the normalized term and the shift carries those terms' rounding, more than an ulp of y near
// zero; the GPU tests use the same rule (tests/cpp/quant_gpu_test_support.h).
Comparison compare_y(const uint16_t* got, const uint16_t* want, int64_t m, int64_t k) {
  Comparison c;
  for (int64_t r = 0; r < m; ++r) {
    float largest = 0.0f;
    for (int64_t j = 0; j < k; ++j) {
      const float w = std::fabs(ref::bf16_to_float(want[r * k + j]));
      if (std::isfinite(w)) largest = std::max(largest, w);
    }
    const float slack = std::max(1e-6f, std::ldexp(largest, -20));
    for (int64_t j = 0; j < k; ++j) {
      const uint16_t g = got[r * k + j], w = want[r * k + j];
      ++c.compared;
      const int64_t d = bf16_distance(g, w);  // < 0: NaN on exactly one side
      if (d == 0) ++c.exact;
      c.max_ulp = std::max(c.max_ulp, d);
      const float ulp = std::fabs(ref::bf16_to_float(static_cast<uint16_t>(w + 1)) - ref::bf16_to_float(w));
      const bool ok = d >= 0 && (d <= 1 || std::fabs(ref::bf16_to_float(g) - ref::bf16_to_float(w)) <= ulp + slack);
      if (!ok && c.mismatches++ == 0)
        c.first = "(" + std::to_string(r) + ", " + std::to_string(j) + "): got " + show_bf16(g) + ", want " + show_bf16(w);
    }
  }
  return c;
}

// One op: the reference on host copies, the GPU on device copies of the same operands, compared.
template <typename MakeParams, typename RefCall, typename GpuCall>
GpuResult check_op(const char* what, const Operands& o, MakeParams make, RefCall ref_call, GpuCall gpu_call,
                      bool with_y, bool with_x_out) {
  const size_t mk = static_cast<size_t>(o.m * o.k);
  Outputs want = o.poisoned();
  const Pointers host{o.x.data(), o.update.data(), o.mod.data(), o.gate.data(), o.weight.data(), want.q.data(),
                      want.scale.data(), with_y ? want.y.data() : nullptr, want.x_out.data()};
  if (Status st = ref_call(make(host)); !st.ok()) {
    std::printf("  FAIL  %-34s the reference refused it: %s\n", what, st.to_string().c_str());
    return GpuResult::kMismatch;
  }
  DeviceBuffer<uint16_t> x(mk), update(mk), mod(o.mod.size()), gate(o.gate.size()), weight(o.weight.size()), y(mk),
      x_out(mk);
  DeviceBuffer<int8_t> q(mk);
  DeviceBuffer<float> scale(static_cast<size_t>(o.m));
  for (cudaError_t e : {x.err, update.err, mod.err, gate.err, weight.err, y.err, x_out.err, q.err, scale.err}) {
    if (e != cudaSuccess) {
      std::printf("  FAIL  %-34s cudaMalloc: %s\n", what, cudaGetErrorString(e));
      return GpuResult::kMismatch;
    }
  }
  const Outputs poison = o.poisoned();
  if (!x.upload(o.x) || !update.upload(o.update) || !mod.upload(o.mod) || !gate.upload(o.gate) ||
      !weight.upload(o.weight) || !q.upload(poison.q) || !scale.upload(poison.scale) || !y.upload(poison.y) ||
      !x_out.upload(poison.x_out)) {
    std::printf("  FAIL  %-34s could not copy its operands to the GPU: %s\n", what, cudaGetErrorString(cudaGetLastError()));
    return GpuResult::kMismatch;
  }
  const Pointers dev{x.ptr, update.ptr, mod.ptr, gate.ptr, weight.ptr, q.ptr, scale.ptr, with_y ? y.ptr : nullptr,
                     x_out.ptr};
  Status st = gpu_call(make(dev));
  if (st.ok()) st = synchronize();
  if (const GpuResult r = classify(what, st); r != GpuResult::kAgrees) return r;
  const Outputs got{q.download(mk), scale.download(static_cast<size_t>(o.m)), y.download(mk), x_out.download(mk)};
  bool ok = report_quantized(what, got, want, o.m, o.k);
  if (with_y) {
    const std::string label = std::string(what) + ", bf16 y";
    ok &= report(label.c_str(), compare_y(got.y.data(), want.y.data(), o.m, o.k), "<= 1 ulp + the row's fp32 slack");
  }
  if (with_x_out) {
    const std::string label = std::string(what) + ", new residual";
    ok &= report(label.c_str(),
                      compare_block(got.x_out.data(), want.x_out.data(), o.m, o.k, o.k, 0, bf16_distance, show_bf16),
                      "bit-exact");
  }
  return ok ? GpuResult::kAgrees : GpuResult::kMismatch;
}

}  // namespace

GpuResult check_fused_producers(const std::vector<uint16_t>& x, int64_t m, int64_t k, uint32_t seed) {
  const Operands o(x, m, k, seed);
  bool mismatch = false, unavailable = false;
  auto note = [&](GpuResult v) {
    mismatch |= v == GpuResult::kMismatch, unavailable |= v == GpuResult::kUnavailable;
  };
  auto ln_ref = [](const LayerNormModulateQuantizeParams& p) { return ref::layernorm_modulate_quantize(p); };
  auto ln_gpu = [](const LayerNormModulateQuantizeParams& p) { return layernorm_modulate_quantize(p, nullptr); };
  note(check_op(
      "LayerNorm + modulation", o, [&](const Pointers& p) { return layernorm_params(o, p, false); }, ln_ref,
      ln_gpu, true, false));
  note(check_op(
      "RMSNorm + modulation", o, [&](const Pointers& p) { return layernorm_params(o, p, false, true); }, ln_ref,
      ln_gpu, true, false));
  if (k <= kMaxGatedResidualCols) {
    note(check_op(
        "residual + LayerNorm", o, [&](const Pointers& p) { return layernorm_params(o, p, true); }, ln_ref, ln_gpu,
        false, true));
  } else {
    std::printf("  --    %-34s not run: the GPU kernels take it up to %lld columns, not K = %lld\n",
                "residual + LayerNorm", (long long)kMaxGatedResidualCols, (long long)k);
  }
  note(check_op(
      "RMSNorm", o, [&](const Pointers& p) { return rmsnorm_params(o, p); },
      [](const RmsNormQuantizeParams& p) { return ref::rmsnorm_quantize(p); },
      [](const RmsNormQuantizeParams& p) { return rmsnorm_quantize(p, nullptr); }, false, false));
  note(check_op(
      "GELU", o, [&](const Pointers& p) { return gelu_params(o, p); },
      [](const GeluQuantizeParams& p) { return ref::gelu_quantize(p); },
      [](const GeluQuantizeParams& p) { return gelu_quantize(p, nullptr); }, false, false));
  note(check_op(
      "[a | GELU(h)]", o, [&](const Pointers& p) { return concat_params(o, p); },
      [](const ConcatGeluQuantizeParams& p) { return ref::concat_gelu_quantize(p); },
      [](const ConcatGeluQuantizeParams& p) { return concat_gelu_quantize(p, nullptr); }, false, false));
  if (k % 8 == 0 && k <= kMaxSwigluCols) {
    note(check_op(
        "silu(gate) * up", o, [&](const Pointers& p) { return swiglu_params(o, p); },
        [](const SwigluQuantizeParams& p) { return ref::swiglu_quantize(p); },
        [](const SwigluQuantizeParams& p) { return swiglu_quantize(p, nullptr); }, false, false));
  } else {
    std::printf("  --    %-34s not run: the GPU kernels take a multiple of 8 columns up to %lld, not K = %lld\n",
                "silu(gate) * up", (long long)kMaxSwigluCols, (long long)k);
  }
  if (k % 8 == 0 && k >= 16 && k <= kMaxSwigluCols) {
    note(check_op(
        "[a | silu(gate) * up]", o, [&](const Pointers& p) { return concat_swiglu_params(o, p); },
        [](const ConcatSwigluQuantizeParams& p) { return ref::concat_swiglu_quantize(p); },
        [](const ConcatSwigluQuantizeParams& p) { return concat_swiglu_quantize(p, nullptr); }, false, false));
  } else {
    std::printf("  --    %-34s not run: the GPU kernels take a multiple of 8 columns from 16 to %lld, not K = %lld\n",
                "[a | silu(gate) * up]", (long long)kMaxSwigluCols, (long long)k);
  }
  return mismatch ? GpuResult::kMismatch : unavailable ? GpuResult::kUnavailable : GpuResult::kAgrees;
}

}  // namespace int8dit::cli
