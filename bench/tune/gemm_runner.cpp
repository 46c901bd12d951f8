#include "gemm_runner.h"

#include <algorithm>
#include <chrono>

#include "check.h"
#include "kernels.h"

namespace bench_tune {

GemmRunner::GemmRunner(int64_t max_m, int64_t n, int64_t k, size_t l2_bytes, cudaStream_t stream, double warmup_ms)
    : max_m_(max_m), n_(n), k_(k), stream_(stream), timer_(stream) {
  timer_.set_min_warmup_ms(warmup_ms);
  // NOTE: the weights are what a small-M GEMM reads most; enough sets that the weights alone span
  // three times the L2, so every timed run misses L2 like a real layer does.
  const size_t b_bytes = size_t(n) * size_t(k);
  const size_t sets = std::clamp<size_t>((3 * l2_bytes + b_bytes - 1) / b_bytes, 2, 32);
  sets_.resize(sets);
  uint64_t seed = 1;
  for (Set& s : sets_) {
    s.a = bench::DeviceBuffer(size_t(max_m) * size_t(k));
    s.b = bench::DeviceBuffer(b_bytes);
    s.d = bench::DeviceBuffer(size_t(max_m) * size_t(n) * 2);
    bench::fill_int8(s.a.as<int8_t>(), s.a.bytes(), seed++, stream);
    bench::fill_int8(s.b.as<int8_t>(), s.b.bytes(), seed++, stream);
  }
  scale_a_ = bench::DeviceBuffer(size_t(max_m) * 4);
  scale_b_ = bench::DeviceBuffer(size_t(n) * 4);
  bias_ = bench::DeviceBuffer(size_t(n) * 4);
  bench::fill_f32(scale_a_.as<float>(), size_t(max_m), seed++, 1e-3f, 2e-2f, stream);
  bench::fill_f32(scale_b_.as<float>(), size_t(n), seed++, 1e-3f, 2e-2f, stream);
  bench::fill_f32(bias_.as<float>(), size_t(n), seed++, -1.f, 1.f, stream);
  BENCH_CUDA(cudaStreamSynchronize(stream));
}

int8dit::GemmParams GemmRunner::params(int64_t m, int set) const {
  const Set& s = sets_[size_t(set) % sets_.size()];
  int8dit::GemmParams p;
  p.m = m, p.n = n_, p.k = k_;
  p.a = s.a.as<int8_t>(), p.lda = k_;
  p.b = s.b.as<int8_t>(), p.ldb = k_;
  p.scale_a = scale_a_.as<float>();
  p.scale_b = scale_b_.as<float>();
  p.bias = bias_.as<float>();
  p.d = s.d.as<void>(), p.d_type = int8dit::DType::kBF16, p.ldd = n_;
  p.workspace = workspace_.as<void>();
  p.workspace_bytes = workspace_.bytes();
  return p;
}

Measurement GemmRunner::time(int64_t m, int8dit::TuneMode mode, int warmup, int runs) {
  int8dit::set_tune_mode(mode);
  Measurement out;
  const auto start = std::chrono::steady_clock::now();
  out.config = int8dit::gemm_selected_config(params(m, 0));  // tunes here in kTuneOnFirstUse
  out.select_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (out.config.empty()) throw bench::BenchError("no configuration serves M=" + std::to_string(m));
  return time_selected(m, nullptr, warmup, runs, out);
}

Measurement GemmRunner::time_config(int64_t m, const std::string& config, int warmup, int runs) {
  int8dit::GemmOptions forced;
  forced.config = config.c_str();
  Measurement out;
  out.config = config;
  return time_selected(m, &forced, warmup, runs, out);
}

Measurement GemmRunner::time_selected(int64_t m, const int8dit::GemmOptions* opts, int warmup, int runs,
                                      Measurement out) {
  if (m > max_m_) throw bench::BenchError("M = " + std::to_string(m) + " exceeds the runner's " + std::to_string(max_m_));
  const size_t need = int8dit::gemm_workspace_size(params(m, 0), opts);
  if (need > workspace_.bytes()) {
    BENCH_CUDA(cudaStreamSynchronize(stream_));  // the old workspace may still be in use
    workspace_ = bench::DeviceBuffer(need);
  }
  int8dit::GemmOptions timed = opts ? *opts : int8dit::GemmOptions{};
  timed.check_pointers = false;  // checked once below; the timed loop measures the GEMM, not the checks
  int8dit::Status st = int8dit::gemm_w8a8(params(m, 0), stream_, opts);
  if (!st.ok()) throw bench::BenchError("gemm_w8a8 M=" + std::to_string(m) + " (" + out.config + "): " + st.to_string());
  bench::Timing t = timer_.time(
      [&](int i) {
        int8dit::Status s = int8dit::gemm_w8a8(params(m, i), stream_, &timed);
        if (!s.ok()) throw bench::BenchError("gemm_w8a8 M=" + std::to_string(m) + ": " + s.to_string());
      },
      warmup, runs);
  out.us = t.median_ms * 1e3;
  out.held = t.held;
  return out;
}

}  // namespace bench_tune
