#include "gemm_runner.h"

#include <algorithm>
#include <chrono>

#include "check.h"
#include "kernels.h"

namespace bench_tune {

GemmRunner::GemmRunner(int64_t max_m, int64_t n, int64_t k, size_t l2_bytes, cudaStream_t stream, double warmup_ms)
    : max_m_(max_m), n_(n), k_(k), stream_(stream), timer_(stream), warmup_ms_(warmup_ms) {
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

std::string GemmRunner::selected_config(int64_t m, int8dit::TuneMode mode, double* select_seconds) {
  int8dit::set_tune_mode(mode);
  const auto start = std::chrono::steady_clock::now();
  const std::string config = int8dit::gemm_selected_config(params(m, 0));  // tunes here in kTuneOnFirstUse
  if (select_seconds) *select_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (config.empty()) throw bench::BenchError("no configuration serves M=" + std::to_string(m));
  return config;
}

void GemmRunner::prepare(int64_t m, const std::vector<std::string>& configs) {
  if (m > max_m_) throw bench::BenchError("M = " + std::to_string(m) + " exceeds the runner's " + std::to_string(max_m_));
  for (const std::string& c : configs) {
    int8dit::GemmOptions forced;
    forced.config = c.c_str();
    const size_t need = int8dit::gemm_workspace_size(params(m, 0), &forced);
    if (need > workspace_.bytes()) {
      BENCH_CUDA(cudaStreamSynchronize(stream_));  // the old workspace may still be in use
      workspace_ = bench::DeviceBuffer(need);
    }
  }
  for (const std::string& c : configs) {  // checked once here, so the timed calls can skip the checks
    int8dit::GemmOptions checked;
    checked.config = c.c_str();
    checked.check_pointers = true;
    const int8dit::Status st = int8dit::gemm_w8a8(params(m, 0), stream_, &checked);
    if (!st.ok()) throw bench::BenchError("gemm_w8a8 M=" + std::to_string(m) + " (" + c + "): " + st.to_string());
  }
}

bool GemmRunner::visit(int64_t m, const std::string& config, int warmup, int runs, bool warm_clock,
                       std::vector<double>* samples) {
  int8dit::GemmOptions forced;
  forced.config = config.c_str();
  forced.check_pointers = false;  // prepare() checked this (M, configuration)
  // NOTE: the warm-up measured in GPU time brings the clock back after host-side work; a visit that
  // follows another visit's GPU load does not need it. Warming every visit for 30 ms made
  // --all-configs sweeps take 10x their timed work (467 s on the H200).
  timer_.set_min_warmup_ms(warm_clock ? warmup_ms_ : 0);
  const bench::Timing t = timer_.time(
      [&](int i) {
        const int8dit::Status s = int8dit::gemm_w8a8(params(m, i), stream_, &forced);
        if (!s.ok()) throw bench::BenchError("gemm_w8a8 M=" + std::to_string(m) + ": " + s.to_string());
      },
      warmup, runs, samples);
  return t.held;
}

std::vector<Measurement> GemmRunner::time_interleaved(int64_t m, const std::vector<std::string>& configs, int warmup,
                                                      int runs, int rounds) {
  prepare(m, configs);
  rounds = std::max(1, rounds);
  const int per_round = std::max(1, (runs + rounds - 1) / rounds);
  std::vector<std::vector<double>> samples(configs.size());
  std::vector<Measurement> out(configs.size());
  for (int r = 0; r < rounds; ++r)
    for (size_t c = 0; c < configs.size(); ++c)
      out[c].held = visit(m, configs[c], warmup, per_round, r == 0 && c == 0, &samples[c]) && out[c].held;
  for (size_t c = 0; c < configs.size(); ++c) {
    out[c].config = configs[c];
    out[c].us = 1e3 * bench::sorted_median(samples[c]);
  }
  return out;
}

}  // namespace bench_tune
