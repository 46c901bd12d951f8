#include "host_overhead.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <utility>
#include <vector>

#include "check.h"
#include "device_buffer.h"
#include "int8dit/gemm.h"
#include "kernels.h"
#include "timing.h"

namespace bench {
namespace {

// Median over rounds of (host time of `calls` back-to-back calls) / calls, in microseconds. Each
// round starts on an idle stream and ends before its sync, so the sync is not counted, and a round
// (a few hundred launches) stays well below the launch-queue depth, so calls never block on the GPU.
double median_us_per_call(const int8dit::GemmParams& p, const int8dit::GemmOptions* o, cudaStream_t stream,
                          int calls, int rounds) {
  std::vector<double> per_call;
  for (int r = 0; r < rounds; ++r) {
    BENCH_CUDA(cudaStreamSynchronize(stream));
    const auto t0 = std::chrono::steady_clock::now();
    int8dit::Status st;
    for (int c = 0; c < calls && st.ok(); ++c) st = int8dit::gemm_w8a8(p, stream, o);
    const auto t1 = std::chrono::steady_clock::now();
    if (!st.ok()) throw BenchError("int8dit::gemm_w8a8 at M = 1: " + st.to_string());
    per_call.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / calls);
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

// The same for gemm_can_implement (validation and the configuration choice, no launch).
double median_us_per_select(const int8dit::GemmParams& p, int calls, int rounds) {
  std::vector<double> per_call;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    int8dit::Status st;
    for (int c = 0; c < calls && st.ok(); ++c) st = int8dit::gemm_can_implement(p);
    const auto t1 = std::chrono::steady_clock::now();
    if (!st.ok()) throw BenchError("int8dit::gemm_can_implement at M = 1: " + st.to_string());
    per_call.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / calls);
  }
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace

HostOverhead measure_host_overhead(const Options& opts, cudaStream_t stream) {
  HostOverhead h;
  DeviceBuffer a(size_t(h.m * h.k)), b(size_t(h.n * h.k)), sa(4 * size_t(h.m)), sb(4 * size_t(h.n)),
      bias(4 * size_t(h.n)), d(2 * size_t(h.m * h.n));
  fill_int8(a.as<int8_t>(), a.bytes(), opts.seed + 21, stream);
  fill_int8(b.as<int8_t>(), b.bytes(), opts.seed + 22, stream);
  fill_f32(sa.as<float>(), size_t(h.m), opts.seed + 23, 0.5f / 127, 2.0f / 127, stream);
  fill_f32(sb.as<float>(), size_t(h.n), opts.seed + 24, 0.5f / 127, 2.0f / 127, stream);
  fill_f32(bias.as<float>(), size_t(h.n), opts.seed + 25, -1.0f, 1.0f, stream);
  int8dit::GemmParams p;
  p.m = h.m;
  p.n = h.n;
  p.k = h.k;
  p.a = a.as<int8_t>();
  p.lda = h.k;
  p.b = b.as<int8_t>();
  p.ldb = h.k;
  p.scale_a = sa.as<float>();
  p.scale_b = sb.as<float>();
  p.bias = bias.as<float>();
  p.d = d.as<void>();
  p.d_type = int8dit::DType::kBF16;
  p.ldd = h.n;
  const int8dit::Status can = int8dit::gemm_can_implement(p);
  if (!can.ok()) {
    h.status = can.to_string();
    return h;
  }
  DeviceBuffer ws(int8dit::gemm_workspace_size(p));
  p.workspace = ws.as<void>();
  p.workspace_bytes = ws.bytes();
  h.config = int8dit::gemm_selected_config(p);
  h.calls = opts.host_calls;
  h.rounds = opts.host_rounds;
  median_us_per_call(p, nullptr, stream, h.calls, 2);  // warm-up: first-call costs (module load, caches)
  int8dit::GemmOptions no_check;
  no_check.check_pointers = false;
  const int calls = h.calls;
  // Every round times each figure once, in alternating order, and each figure is the median of its
  // rounds: the host's own speed moved the floor by up to a microsecond between runs minutes apart
  // (bench/results/h200/README.md), and figures timed one after another in blocks of rounds could each
  // see a different host; interleaved, every comparison in the report is between neighbours in time.
  const std::vector<std::pair<double*, std::function<double()>>> figures = {
      {&h.us_per_call, [&] { return median_us_per_call(p, nullptr, stream, calls, 1); }},
      {&h.us_per_call_no_pointer_check, [&] { return median_us_per_call(p, &no_check, stream, calls, 1); }},
      {&h.us_per_select, [&] { return median_us_per_select(p, calls, 1); }},
      {&h.us_per_empty_launch,
       [&] { return measure_empty_launch_us(stream, calls, 1, kLaunchFloorSmallParamBytes, 0); }},
      {&h.us_per_empty_launch_gemm_params,
       [&] { return measure_empty_launch_us(stream, calls, 1, kLaunchFloorGemmParamBytes, 0); }},
      {&h.us_per_empty_launch_gemm_params_smem,
       [&] { return measure_empty_launch_us(stream, calls, 1, kLaunchFloorGemmParamBytes, 200 * 1024); }},
      {&h.us_per_empty_driver_launch_gemm_params_smem,
       [&] { return measure_empty_launch_us(stream, calls, 1, kLaunchFloorGemmParamBytes, 200 * 1024, true); }},
  };
  std::vector<std::vector<double>> samples(figures.size());
  for (int r = 0; r < h.rounds; ++r) {
    for (size_t i = 0; i < figures.size(); ++i) {
      const size_t f = r % 2 == 0 ? i : figures.size() - 1 - i;
      samples[f].push_back(figures[f].second());
    }
  }
  for (size_t f = 0; f < figures.size(); ++f) *figures[f].first = sorted_median(samples[f]);
  h.status = "ok";
  return h;
}

}  // namespace bench
