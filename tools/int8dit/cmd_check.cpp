// `int8dit check`: verifies the install. Runs the CPU reference on a small problem (quantize X and
// W, GEMM with bf16 output and bias, raw int32) and checks it against exact integer / double
// arithmetic; then, on a CUDA GPU, runs the GPU path on the same inputs and compares it with the
// reference (quantized values, scales and int32 bit-exact; bf16 within 1 ulp), and the fused producers
// against the reference within their tolerance (check_fused.h), and the block ops beside them
// (gated_add, qk_norm_rope) bit for bit (check_block_ops.h).
//
// Exit codes: 0 = everything that ran agrees (a GPU path that answers "not implemented" or "not
// supported" is reported, not counted as a failure, unless --require-gpu); 1 = a mismatch or an
// error; 2 = usage error; 3 = --require-gpu and the GPU path could not run.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check_compare.h"
#include "check_block_ops.h"
#include "check_device.h"
#include "check_fused.h"
#include "commands.h"
#include "int8dit/check.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "ref/half_bits.h"

namespace {

using namespace int8dit;
using cli::Comparison;
using cli::report;
using cli::classify;
using cli::DeviceBuffer;
using cli::GpuResult;
using cli::synchronize;

const char* kHelp = R"(usage: int8dit check [--m M] [--n N] [--k K] [--seed S] [--require-gpu]

Verifies the install on a small problem, fresh random bf16 inputs with one row holding a NaN:
  1. the CPU reference: quantize X [M, K] per token and W [N, K] per channel, GEMM with bf16 output
     and bias, and raw int32; checked against exact integer sums and a double epilogue (<= 1 ulp),
     the NaN row must give a NaN output row and be reported by the checking mode;
  2. on a CUDA GPU, the GPU path on the same inputs against the reference: quantized values, scales
     and int32 bit-exact, bf16 within 1 ulp;
  3. on a CUDA GPU, the fused producers on X against the reference (LayerNorm + adaLN modulation,
     with and without a gated residual update ahead of it, RMSNorm, GELU, Flux's [a | GELU(h)],
     a gated MLP's silu(gate) * up):
     scales within 1e-5 relative, int8 values within 1 on at most 0.1% of them (they reduce in
     another order), bf16 outputs within 1 ulp (or 1e-6), the residual stream bit-exact;
  4. on a CUDA GPU, the block ops on X against the reference, bit-exact: the gated residual update
     (gated_add) and attention's per-head RMSNorm + rotary embedding (qk_norm_rope, X as tokens of
     heads of up to 128).

  --m M, --n N, --k K   problem size (default 77 x 200 x 512; K a multiple of 16)
  --seed S              random seed (default: a fresh one, printed)
  --require-gpu         fail (exit 3) when the GPU path cannot run here
  --help

Exit codes: 0 all that ran agrees ("not implemented on this GPU yet" is reported, not a failure);
1 mismatch or error; 2 usage; 3 --require-gpu and no GPU result.
)";

struct Args {
  int64_t m = 77, n = 200, k = 512;
  uint32_t seed = std::random_device{}();
  bool require_gpu = false;
};

struct Problem {
  int64_t m, n, k, ldd;
  int64_t nan_row;
  std::vector<uint16_t> x, w;  // bf16
  std::vector<float> bias;
  // The reference's results.
  std::vector<int8_t> qx, qw;
  std::vector<float> sx, sw;
  std::vector<uint16_t> y;   // bf16 [M, ldd]
  std::vector<int32_t> acc;  // [M, ldd]
};

bool parse(const std::vector<std::string>& args, Args* a, int* exit_code) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& f = args[i];
    if (f == "--help" || f == "-h") {
      std::fputs(kHelp, stdout);
      *exit_code = 0;
      return false;
    }
    if (f == "--require-gpu") {
      a->require_gpu = true;
      continue;
    }
    if ((f == "--m" || f == "--n" || f == "--k" || f == "--seed") && i + 1 < args.size()) {
      const std::string& value = args[++i];
      char* end = nullptr;
      const long long v = std::strtoll(value.c_str(), &end, 10);
      const long long most = f == "--seed" ? 0xffffffffLL : (f == "--k" ? kMaxK : 1 << 16);
      if (value.empty() || *end != '\0' || v < (f == "--seed" ? 0 : 1) || v > most) {
        std::fprintf(stderr, "int8dit check: %s %s is not a valid value (1..%lld; see --help)\n", f.c_str(),
                     value.c_str(), most);
        *exit_code = 2;
        return false;
      }
      if (f == "--seed")
        a->seed = static_cast<uint32_t>(v);
      else if (f == "--m")
        a->m = v;
      else if (f == "--n")
        a->n = v;
      else
        a->k = v;
      continue;
    }
    std::fprintf(stderr, "int8dit check: unknown option or missing value \"%s\" (see int8dit check --help)\n",
                 f.c_str());
    *exit_code = 2;
    return false;
  }
  return true;
}

Problem make_problem(const Args& a) {
  Problem p;
  p.m = a.m, p.n = a.n, p.k = a.k, p.ldd = (a.n + 7) / 8 * 8;
  p.nan_row = a.m > 1 ? 1 : -1;
  std::mt19937 rng(a.seed);
  std::normal_distribution<float> act(0.0f, 2.0f), wgt(0.0f, 0.05f), b(0.0f, 0.5f);
  p.x.resize(p.m * p.k), p.w.resize(p.n * p.k), p.bias.resize(p.n);
  for (uint16_t& v : p.x) v = ref::float_to_bf16(act(rng));
  for (uint16_t& v : p.w) v = ref::float_to_bf16(wgt(rng));
  for (float& v : p.bias) v = b(rng);
  if (p.nan_row >= 0) p.x[p.nan_row * p.k + p.k / 3] = 0x7fc0;  // bf16 NaN
  return p;
}

QuantizeRowsParams quantize_params(int64_t rows, int64_t k, const void* x, int8_t* q, float* scale) {
  QuantizeRowsParams qp;
  qp.rows = rows, qp.cols = k, qp.x = x, qp.x_type = DType::kBF16, qp.ldx = k;
  qp.q = q, qp.ldq = k, qp.scale = scale;
  return qp;
}

GemmParams gemm_params(const Problem& p, const int8_t* a, const int8_t* b, const float* sa, const float* sb,
                       const float* bias, void* d, DType out) {
  GemmParams g;
  g.m = p.m, g.n = p.n, g.k = p.k;
  g.a = a, g.lda = p.k, g.b = b, g.ldb = p.k;
  if (out != DType::kInt32) g.scale_a = sa, g.scale_b = sb, g.bias = bias;
  g.d = d, g.d_type = out, g.ldd = p.ldd;
  return g;
}

bool status_ok(const char* what, const Status& st) {
  if (st.ok()) return true;
  std::printf("  FAIL  %s: %s\n", what, st.to_string().c_str());
  return false;
}

std::string show_u16(uint16_t h) { return std::to_string(ref::bf16_to_float(h)); }
std::string show_i32(int32_t v) { return std::to_string(v); }
std::string show_i8(int8_t v) { return std::to_string(int(v)); }
std::string show_f32(float v) { return std::to_string(v); }

// Step 1: the reference, and its check against exact integer sums and a double-precision epilogue.
bool run_reference(Problem& p) {
  std::printf("CPU reference (M = %lld, N = %lld, K = %lld, bf16 inputs, row %lld holds a NaN):\n", (long long)p.m,
              (long long)p.n, (long long)p.k, (long long)p.nan_row);
  p.qx.resize(p.m * p.k), p.qw.resize(p.n * p.k), p.sx.resize(p.m), p.sw.resize(p.n);
  p.y.assign(p.m * p.ldd, 0), p.acc.assign(p.m * p.ldd, 0);
  bool ok =
      status_ok("quantize X", ref::quantize_rows(quantize_params(p.m, p.k, p.x.data(), p.qx.data(), p.sx.data())));
  ok = ok &&
       status_ok("quantize W", ref::quantize_rows(quantize_params(p.n, p.k, p.w.data(), p.qw.data(), p.sw.data())));
  ok = ok && status_ok("GEMM bf16", ref::gemm_w8a8(gemm_params(p, p.qx.data(), p.qw.data(), p.sx.data(), p.sw.data(),
                                                               p.bias.data(), p.y.data(), DType::kBF16)));
  ok = ok && status_ok("GEMM int32", ref::gemm_w8a8(gemm_params(p, p.qx.data(), p.qw.data(), nullptr, nullptr, nullptr,
                                                                p.acc.data(), DType::kInt32)));
  if (!ok) return false;

  // Independent arithmetic: int64 sums, and the epilogue in double rounded to bf16.
  std::vector<int32_t> acc64(p.m * p.ldd, 0);
  std::vector<uint16_t> y64(p.m * p.ldd, 0);
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      int64_t s = 0;
      for (int64_t kk = 0; kk < p.k; ++kk) s += int64_t{p.qx[i * p.k + kk]} * p.qw[j * p.k + kk];
      acc64[i * p.ldd + j] = static_cast<int32_t>(s);
      const double y = double(s) * (double(p.sx[i]) * double(p.sw[j])) + double(p.bias[j]);
      y64[i * p.ldd + j] = ref::float_to_bf16(static_cast<float>(y));
    }
  ok = report("int32 accumulator vs int64 sums",
              cli::compare_block(p.acc.data(), acc64.data(), p.m, p.n, p.ldd, 0, cli::exact_distance_i32, show_i32),
              "bit-exact");
  ok = report("bf16 output vs double epilogue",
              cli::compare_block(p.y.data(), y64.data(), p.m, p.n, p.ldd, 1, cli::bf16_distance, show_u16),
              "<= 1 ulp") &&
       ok;

  std::vector<int64_t> bad;
  find_nonfinite_rows(p.sx.data(), p.m, &bad);
  const bool nan_reported = p.nan_row < 0 ? bad.empty() : bad == std::vector<int64_t>{p.nan_row};
  bool nan_row_is_nan = true;
  for (int64_t j = 0; p.nan_row >= 0 && j < p.n; ++j) nan_row_is_nan &= cli::bf16_is_nan(p.y[p.nan_row * p.ldd + j]);
  std::printf("  %s  %-34s %s; output row %s\n", nan_reported && nan_row_is_nan ? "ok  " : "FAIL", "checking mode",
              describe_nonfinite_rows(bad, p.m).c_str(), nan_row_is_nan ? "is NaN" : "is NOT all NaN");
  return ok && nan_reported && nan_row_is_nan;
}

// Step 2: the GPU path on the same inputs, against the reference.
GpuResult run_gpu(const Problem& p, uint32_t seed) {
  DeviceBuffer<uint16_t> x(p.x.size()), w(p.w.size()), y(p.m * p.ldd);
  DeviceBuffer<int8_t> qx(p.qx.size()), qw(p.qw.size());
  DeviceBuffer<float> sx(p.m), sw(p.n), bias(p.n);
  DeviceBuffer<int32_t> acc(p.m * p.ldd);
  for (cudaError_t e : {x.err, w.err, y.err, qx.err, qw.err, sx.err, sw.err, bias.err, acc.err})
    if (e != cudaSuccess) return classify("cudaMalloc", Status(StatusCode::kCudaError, cudaGetErrorString(e)));
  if (!x.upload(p.x) || !w.upload(p.w) || !bias.upload(p.bias))
    return classify("cudaMemcpy", Status(StatusCode::kCudaError, cudaGetErrorString(cudaGetLastError())));

  bool mismatch = false, unavailable = false;
  auto note = [&](GpuResult r) { mismatch |= r == GpuResult::kMismatch, unavailable |= r == GpuResult::kUnavailable; };

  // Quantization. Poison first so an element the kernel skipped cannot pass.
  cudaMemset(qx.ptr, 0x55, p.qx.size()), cudaMemset(sx.ptr, 0xff, p.m * sizeof(float));
  cudaMemset(qw.ptr, 0x55, p.qw.size()), cudaMemset(sw.ptr, 0xff, p.n * sizeof(float));
  GpuResult q = classify("quantize X", quantize_rows(quantize_params(p.m, p.k, x.ptr, qx.ptr, sx.ptr), nullptr));
  if (q == GpuResult::kAgrees)
    q = classify("quantize W", quantize_weights(quantize_params(p.n, p.k, w.ptr, qw.ptr, sw.ptr), nullptr));
  if (q == GpuResult::kAgrees) q = classify("quantize (synchronize)", synchronize());
  if (q == GpuResult::kAgrees) {
    const bool ok =
        report("quantized X (int8)",
               cli::compare_block(qx.download(p.qx.size()).data(), p.qx.data(), p.m, p.k, p.k, 0,
                                  cli::exact_distance_i8, show_i8),
               "bit-exact") &
        report(
            "X scales",
            cli::compare_block(sx.download(p.m).data(), p.sx.data(), p.m, 1, 1, 0, cli::exact_distance_f32, show_f32),
            "bit-exact") &
        report("quantized W (int8)",
               cli::compare_block(qw.download(p.qw.size()).data(), p.qw.data(), p.n, p.k, p.k, 0,
                                  cli::exact_distance_i8, show_i8),
               "bit-exact") &
        report(
            "W scales",
            cli::compare_block(sw.download(p.n).data(), p.sw.data(), p.n, 1, 1, 0, cli::exact_distance_f32, show_f32),
            "bit-exact");
    note(ok ? GpuResult::kAgrees : GpuResult::kMismatch);
    std::vector<int64_t> bad;
    const Status st = find_nonfinite_rows_on_device(sx.ptr, p.m, nullptr, &bad);
    const std::vector<int64_t> want = p.nan_row < 0 ? std::vector<int64_t>{} : std::vector<int64_t>{p.nan_row};
    if (st.ok() && bad == want) {
      std::printf("  ok    %-34s %s\n", "checking mode (device scales)", describe_nonfinite_rows(bad, p.m).c_str());
    } else {
      std::printf("  FAIL  %-34s %s\n", "checking mode (device scales)",
                  st.ok() ? describe_nonfinite_rows(bad, p.m).c_str() : st.to_string().c_str());
      note(GpuResult::kMismatch);
    }
  } else {
    note(q);
  }
  // The GEMMs take the reference's quantized inputs, so they are checked even where quantization is not.
  if (!qx.upload(p.qx) || !qw.upload(p.qw) || !sx.upload(p.sx) || !sw.upload(p.sw))
    return classify("cudaMemcpy", Status(StatusCode::kCudaError, cudaGetErrorString(cudaGetLastError())));

  cudaMemset(acc.ptr, 0xff, p.m * p.ldd * sizeof(int32_t));
  GpuResult g =
      classify("GEMM int32 (raw)",
               gemm_w8a8(gemm_params(p, qx.ptr, qw.ptr, nullptr, nullptr, nullptr, acc.ptr, DType::kInt32), nullptr));
  if (g == GpuResult::kAgrees) g = classify("GEMM int32 (synchronize)", synchronize());
  if (g == GpuResult::kAgrees)
    g = report("GEMM int32 (raw) vs reference",
               cli::compare_block(acc.download(p.m * p.ldd).data(), p.acc.data(), p.m, p.n, p.ldd, 0,
                                  cli::exact_distance_i32, show_i32),
               "bit-exact")
            ? GpuResult::kAgrees
            : GpuResult::kMismatch;
  note(g);

  cudaMemset(y.ptr, 0xff, p.m * p.ldd * sizeof(uint16_t));  // bf16 NaN: a skipped element cannot pass
  const GemmParams bf16 = gemm_params(p, qx.ptr, qw.ptr, sx.ptr, sw.ptr, bias.ptr, y.ptr, DType::kBF16);
  const std::string config = gemm_selected_config(bf16);
  if (!config.empty()) std::printf("  --    %-34s dispatch picks %s\n", "GEMM bf16 + bias", config.c_str());
  g = classify("GEMM bf16 + bias", gemm_w8a8(bf16, nullptr));
  if (g == GpuResult::kAgrees) g = classify("GEMM bf16 (synchronize)", synchronize());
  if (g == GpuResult::kAgrees)
    g = report("GEMM bf16 + bias vs reference",
               cli::compare_block(y.download(p.m * p.ldd).data(), p.y.data(), p.m, p.n, p.ldd, 1, cli::bf16_distance,
                                  show_u16),
               "<= 1 ulp")
            ? GpuResult::kAgrees
            : GpuResult::kMismatch;
  note(g);

  std::printf("  fused producers on X:\n");
  note(cli::check_fused_producers(p.x, p.m, p.k, seed));
  std::printf("  block ops on X:\n");
  note(cli::check_block_ops(p.x, p.m, p.k, seed));
  return mismatch ? GpuResult::kMismatch : unavailable ? GpuResult::kUnavailable : GpuResult::kAgrees;
}

}  // namespace

int cmd_check(const std::vector<std::string>& raw_args) {
  Args args;
  int exit_code = 0;
  if (!parse(raw_args, &args, &exit_code)) return exit_code;
  if (args.k % kKAlignment != 0 || args.k > kMaxK) {
    std::fprintf(stderr, "int8dit check: --k %lld must be a multiple of 16 and at most %lld\n", (long long)args.k,
                 (long long)kMaxK);
    return 2;
  }
  std::printf("int8dit %s check, seed %u\n", version(), args.seed);
  Problem p = make_problem(args);
  const bool reference_ok = run_reference(p);

  DeviceInfo dev;
  const Status st = current_device(&dev);
  GpuResult gpu = GpuResult::kUnavailable;
  if (st.ok()) {
    std::printf("GPU %d: %s (sm_%d, %s%s):\n", dev.index, dev.name.c_str(), dev.cc, to_string(dev.family),
                dev.family_built ? "" : ", NOT built");
    gpu = run_gpu(p, args.seed);
  } else {
    std::printf("GPU: none: %s\n", st.message().c_str());
  }

  if (!reference_ok || gpu == GpuResult::kMismatch) {
    std::printf("check: FAIL (%s)\n", !reference_ok ? "the CPU reference disagrees with exact arithmetic"
                                                    : "the GPU path disagrees with the reference");
    return 1;
  }
  if (gpu == GpuResult::kUnavailable) {
    std::printf("check: PASS for the CPU reference; the GPU path %s\n",
                st.ok() ? "did not run in full here (see \"not run\" above)" : "was not checked (no CUDA GPU)");
    return args.require_gpu ? 3 : 0;
  }
  std::printf("check: PASS (CPU reference and GPU agree)\n");
  return 0;
}
