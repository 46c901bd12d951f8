// int8dit_bench_tune (issue 5): does tuning pay, how long does it take, and does time ever drop
// when M grows (a "cliff" at a dispatch bucket edge), with tuning on and with the heuristic alone?
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bench_cli.h"
#include "check.h"
#include "gpu_info.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "int8dit/tune.h"
#include "kernels.h"
#include "report.h"
#include "shapes.h"

namespace bench_tune {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void remove_cache(const std::string& path) {
  std::remove(path.c_str());
  std::remove((path + ".lock").c_str());
}

// Wall time of `int8dit tune --preset flux-dev` from an empty cache of its own.
double time_cli_tune(const std::string& cli, const std::string& out_dir) {
  const std::string cache = out_dir + "/cli_tune_cache.json";
  remove_cache(cache);
  const std::string cmd = "INT8DIT_CACHE='" + cache + "' '" + cli + "' tune --preset flux-dev > '" + out_dir +
                          "/cli_tune_flux_dev.txt' 2>&1";
  const auto start = Clock::now();
  const int rc = std::system(cmd.c_str());
  const double s = seconds_since(start);
  if (rc != 0) throw bench::BenchError("`" + cmd + "` failed (exit status " + std::to_string(rc) + ")");
  return s;
}

// The heuristic's and the tuner's picks at M (tuning first where `tuned_mode` says so), timed
// interleaved together with `others` (their results in *others_out, in order). Where the two picks
// are the same configuration, both get the one figure.
std::pair<Measurement, Measurement> heuristic_and_tuned(GemmRunner& runner, int64_t m, int8dit::TuneMode tuned_mode,
                                                        const std::vector<std::string>& others, const Options& o,
                                                        std::vector<Measurement>* others_out = nullptr) {
  Measurement h, t;
  h.config = runner.selected_config(m, int8dit::TuneMode::kHeuristic);
  t.config = runner.selected_config(m, tuned_mode, &t.select_seconds);
  std::vector<std::string> names = others;
  for (const std::string& c : {h.config, t.config})
    if (std::find(names.begin(), names.end(), c) == names.end()) names.push_back(c);
  const std::vector<Measurement> timed = runner.time_interleaved(m, names, o.warmup, o.runs, o.rounds);
  auto figure = [&](Measurement& x) {
    const size_t i = size_t(std::find(names.begin(), names.end(), x.config) - names.begin());
    x.us = timed[i].us;
    x.held = timed[i].held;
  };
  figure(h);
  figure(t);
  if (others_out) others_out->assign(timed.begin(), timed.begin() + long(others.size()));
  return {h, t};
}

void run_presets(const Options& o, const bench::GpuInfo& gpu, cudaStream_t stream, Report* r) {
  for (const std::string& preset : o.presets) {
    for (const bench::Shape& s : bench::load_preset(o.shapes_dir, preset)) {
      PresetRow row;
      row.preset = preset, row.layer = s.layer, row.m = s.m, row.n = s.n, row.k = s.k;
      row.bucket_hi = int8dit::m_bucket(s.m).hi;
      GemmRunner runner(s.m, s.n, s.k, gpu.l2_bytes, stream, o.warmup_ms);
      int8dit::TuneResult tuned;
      const auto start = Clock::now();
      int8dit::Status st = int8dit::tune_gemm(int8dit::TuneProblem{s.m, s.n, s.k, int8dit::DType::kBF16, true}, &tuned);
      row.tune_seconds = seconds_since(start);
      if (!st.ok()) throw bench::BenchError("tuning " + preset + " " + s.layer + ": " + st.to_string());
      row.candidates = tuned.candidates;
      std::tie(row.heuristic, row.tuned) = heuristic_and_tuned(runner, s.m, int8dit::TuneMode::kUseCache, {}, o);
      std::fprintf(stderr, "%-12s M=%-5lld N=%-5lld K=%-5lld heuristic %8.1f us (%s)  tuned %8.1f us (%s)\n",
                   preset.c_str(), (long long)s.m, (long long)s.n, (long long)s.k, row.heuristic.us,
                   row.heuristic.config.c_str(), row.tuned.us, row.tuned.config.c_str());
      r->presets.push_back(row);
    }
  }
}

// The bf16-output configurations of this GPU's kernel family (what the bf16 heuristic chooses from).
std::vector<std::string> bf16_config_names() {
  std::vector<std::string> names;
  for (const std::string& name : split_commas(int8dit::gemm_config_names()))
    if (name.find("_bf16_") != std::string::npos) names.push_back(name);
  if (names.empty()) throw bench::BenchError("--all-configs: this build has no bf16 configuration for this GPU");
  return names;
}

// NOTE: the cliff criterion compares times at different M, so in a sweep the M points, not only the
// configurations of one M, must share the GPU's clock. Timed one M after the other, the power-capped
// H200 read 590 us at M = 8064 and 479 us at M = 8192 (N = 12288) with the same kernel, a 1.23
// "cliff" that was the clock. So the sweep first picks (and tunes) at every M, then times in rounds
// that each visit every M and every configuration once, and takes the median over all rounds.
void run_sweeps(const Options& o, const bench::GpuInfo& gpu, cudaStream_t stream, Report* r) {
  const std::vector<int64_t> ms = sweep_m_values(o.max_m);
  const std::vector<std::string> configs = o.all_configs ? bf16_config_names() : std::vector<std::string>{};
  const int rounds = std::max(1, o.rounds);
  const int per_round = std::max(1, (o.runs + rounds - 1) / rounds);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{3072, 3072}, {12288, 3072}}) {
    Sweep sw;
    sw.n = n, sw.k = k;
    GemmRunner runner(o.max_m, n, k, gpu.l2_bytes, stream, o.warmup_ms);
    // Per point: the configurations timed there (`configs`, then the heuristic's and the tuner's
    // picks where not among them) and every run's milliseconds of each.
    std::vector<std::vector<std::string>> names(ms.size());
    std::vector<std::vector<std::vector<double>>> samples(ms.size());
    std::vector<std::vector<bool>> held(ms.size());
    for (size_t i = 0; i < ms.size(); ++i) {
      SweepPoint p;
      p.m = ms[i];
      p.bucket_hi = int8dit::m_bucket(p.m).hi;
      p.heuristic.config = runner.selected_config(p.m, int8dit::TuneMode::kHeuristic);
      p.tuned.config = runner.selected_config(p.m, int8dit::TuneMode::kTuneOnFirstUse, &p.tuned.select_seconds);
      sw.tune_seconds += p.tuned.select_seconds;
      names[i] = configs;
      for (const std::string& c : {p.heuristic.config, p.tuned.config})
        if (std::find(names[i].begin(), names[i].end(), c) == names[i].end()) names[i].push_back(c);
      runner.prepare(p.m, names[i]);
      samples[i].resize(names[i].size());
      held[i].assign(names[i].size(), true);
      sw.points.push_back(p);
      std::fprintf(stderr, "\rsweep N=%lld K=%lld: picked at M=%-5lld", (long long)n, (long long)k, (long long)p.m);
    }
    for (int round = 0; round < rounds; ++round) {
      for (size_t i = 0; i < ms.size(); ++i)
        for (size_t c = 0; c < names[i].size(); ++c)
          held[i][c] = runner.visit(ms[i], names[i][c], o.warmup, per_round, round == 0 && i == 0 && c == 0,
                                    &samples[i][c]) && held[i][c];
      std::fprintf(stderr, "\rsweep N=%lld K=%lld: round %d of %d timed   ", (long long)n, (long long)k, round + 1, rounds);
    }
    std::fprintf(stderr, "\n");
    for (size_t i = 0; i < ms.size(); ++i) {
      SweepPoint& p = sw.points[i];
      auto measured = [&](size_t c) {
        Measurement x;
        x.config = names[i][c];
        x.us = 1e3 * bench::sorted_median(samples[i][c]);
        x.held = held[i][c];
        return x;
      };
      auto index_of = [&](const std::string& c) {
        return size_t(std::find(names[i].begin(), names[i].end(), c) - names[i].begin());
      };
      const double select_seconds = p.tuned.select_seconds;
      p.heuristic = measured(index_of(p.heuristic.config));
      p.tuned = measured(index_of(p.tuned.config));
      p.tuned.select_seconds = select_seconds;
      for (size_t c = 0; c < configs.size(); ++c) p.all_configs.push_back(measured(c));
      std::fprintf(stderr, "sweep N=%lld K=%lld: M=%-5lld heuristic %8.1f us  tuned %8.1f us\n", (long long)n,
                   (long long)k, (long long)p.m, p.heuristic.us, p.tuned.us);
    }
    r->sweeps.push_back(std::move(sw));
  }
}

int run(const Options& o) {
  if (!o.out_dir.empty()) mkdir(o.out_dir.c_str(), 0755);
  const std::string scratch = o.out_dir.empty() ? "/tmp" : o.out_dir;
  Report r;
  r.options = o;
  r.command = o.command_line;
  r.date = bench_cli::utc_now();
  r.library_version = int8dit::version();
  // A private, empty cache: every number here comes from tuning in this run.
  r.cache_path = scratch + "/tune_cache_" + std::to_string(getpid()) + ".json";
  remove_cache(r.cache_path);
  setenv("INT8DIT_CACHE", r.cache_path.c_str(), 1);

  r.gpu = bench::query_gpu(0);
  r.sm_clock_mhz = bench::measure_sm_clock_mhz(r.gpu.sm_count, 50'000'000);
  cudaStream_t stream;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  if (!o.cli.empty()) {
    r.summary.tune_seconds_flux_dev = time_cli_tune(o.cli, scratch);
    r.summary.tune_seconds_flux_dev_how = "wall time of `int8dit tune --preset flux-dev` from an empty cache";
  }
  run_presets(o, r.gpu, stream, &r);
  if (o.cli.empty()) {
    for (const PresetRow& row : r.presets)
      if (row.preset == "flux-dev") r.summary.tune_seconds_flux_dev += row.tune_seconds;
    r.summary.tune_seconds_flux_dev_how =
        "sum of in-process tune_gemm wall times over the flux-dev shapes (what `int8dit tune --preset flux-dev` "
        "runs), from an empty cache";
  }
  if (o.sweep) run_sweeps(o, r.gpu, stream, &r);
  summarize(&r);
  if (!o.out_dir.empty()) write_report(r, o.out_dir);
  std::cout << markdown(r).substr(0, markdown(r).find("## Preset shapes"));
  remove_cache(r.cache_path);
  BENCH_CUDA(cudaStreamDestroy(stream));
  return 0;
}

}  // namespace
}  // namespace bench_tune

int main(int argc, char** argv) {
  try {
    bench_tune::Options o = bench_tune::parse_options(argc, argv);
    if (o.help) {
      std::cout << bench_tune::help_text();
      return 0;
    }
    return bench_tune::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "int8dit_bench_tune: %s\n", e.what());
    return 1;
  }
}
