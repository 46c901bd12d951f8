#include "report.h"

#include <cmath>
#include <cstdio>
#include <fstream>

#include "check.h"
#include "json.h"

namespace bench_tune {
namespace {

constexpr double kTargetGeomean = 1.0, kTargetTuneSeconds = 600, kTargetCliff = 1.15;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

bench::Json measurement_json(const Measurement& m) {
  bench::Json j = bench::Json::object();
  j["us"] = m.us;
  j["config"] = m.config;
  if (!m.held) j["held"] = false;
  return j;
}

bench::Json cliff_json(const Cliff& c) {
  bench::Json j = bench::Json::object();
  j["ratio"] = c.ratio;
  j["m_small"] = c.m_small;
  j["m_large"] = c.m_large;
  return j;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw bench::BenchError("cannot write " + path);
}

}  // namespace

void summarize(Report* r) {
  double log_sum = 0;
  for (const PresetRow& row : r->presets) log_sum += std::log(row.heuristic.us / row.tuned.us);
  r->summary.geomean_tuned_vs_heuristic = r->presets.empty() ? 0 : std::exp(log_sum / double(r->presets.size()));
  for (Sweep& s : r->sweeps) {
    std::vector<int64_t> m;
    std::vector<double> th, tt;
    for (const SweepPoint& p : s.points) {
      m.push_back(p.m);
      th.push_back(p.heuristic.us);
      tt.push_back(p.tuned.us);
    }
    s.cliff_heuristic = max_cliff(m, th);
    s.cliff_tuned = max_cliff(m, tt);
    r->summary.max_cliff_ratio_heuristic = std::max(r->summary.max_cliff_ratio_heuristic, s.cliff_heuristic.ratio);
    r->summary.max_cliff_ratio_tuned = std::max(r->summary.max_cliff_ratio_tuned, s.cliff_tuned.ratio);
  }
}

static bench::Json report_json(const Report& r) {
  bench::Json j = bench::Json::object();
  j["benchmark"] = "int8dit_bench_tune";
  j["command"] = r.command;
  j["date"] = r.date;
  j["library_version"] = r.library_version;
  bench::Json& gpu = j["gpu"];
  gpu["name"] = r.gpu.name;
  gpu["sm_count"] = r.gpu.sm_count;
  gpu["driver"] = r.gpu.driver_version;
  gpu["cuda_runtime"] = r.gpu.cuda_runtime_version;
  gpu["max_sm_clock_mhz"] = r.gpu.max_sm_clock_mhz;
  gpu["sm_clock_mhz_seen"] = r.sm_clock_mhz;
  bench::Json& settings = j["settings"];
  settings["output"] = "bf16";
  settings["bias"] = true;
  settings["warmup"] = r.options.warmup;
  settings["warmup_ms"] = r.options.warmup_ms;
  settings["rounds"] = r.options.rounds;
  settings["runs"] = r.options.runs;
  settings["timing"] = "CUDA events around each launch behind a held stream, median over interleaved rounds "
                       "(M sweeps: each round visits every M); inputs rotated over sets spanning 3x L2";
  settings["tuning_cache"] = r.cache_path;

  bench::Json& s = j["summary"];
  s["geomean_tuned_vs_heuristic"] = r.summary.geomean_tuned_vs_heuristic;
  s["tune_seconds_flux_dev"] = r.summary.tune_seconds_flux_dev;
  s["tune_seconds_flux_dev_how"] = r.summary.tune_seconds_flux_dev_how;
  s["max_cliff_ratio_tuned"] = r.summary.max_cliff_ratio_tuned;
  s["max_cliff_ratio_heuristic"] = r.summary.max_cliff_ratio_heuristic;
  bench::Json& targets = s["targets"];
  targets["geomean_tuned_vs_heuristic_min"] = kTargetGeomean;
  targets["tune_seconds_flux_dev_max"] = kTargetTuneSeconds;
  targets["max_cliff_ratio_max"] = kTargetCliff;
  s["targets_met"] = r.summary.geomean_tuned_vs_heuristic >= kTargetGeomean &&
                     r.summary.tune_seconds_flux_dev <= kTargetTuneSeconds &&
                     (r.sweeps.empty() || (r.summary.max_cliff_ratio_tuned <= kTargetCliff &&
                                           r.summary.max_cliff_ratio_heuristic <= kTargetCliff));

  bench::Json& presets = j["presets"];
  presets = bench::Json::array();
  for (const PresetRow& row : r.presets) {
    bench::Json p = bench::Json::object();
    p["preset"] = row.preset;
    p["layer"] = row.layer;
    p["m"] = row.m;
    p["n"] = row.n;
    p["k"] = row.k;
    p["bucket_hi"] = row.bucket_hi;
    p["candidates"] = row.candidates;
    p["tune_seconds"] = row.tune_seconds;
    p["heuristic"] = measurement_json(row.heuristic);
    p["tuned"] = measurement_json(row.tuned);
    p["speedup_tuned_vs_heuristic"] = row.heuristic.us / row.tuned.us;
    presets.push_back(std::move(p));
  }
  bench::Json& sweeps = j["m_sweeps"];
  sweeps = bench::Json::array();
  for (const Sweep& sw : r.sweeps) {
    bench::Json o = bench::Json::object();
    o["n"] = sw.n;
    o["k"] = sw.k;
    o["tune_seconds"] = sw.tune_seconds;
    o["max_cliff_heuristic"] = cliff_json(sw.cliff_heuristic);
    o["max_cliff_tuned"] = cliff_json(sw.cliff_tuned);
    bench::Json& points = o["points"];
    points = bench::Json::array();
    for (const SweepPoint& p : sw.points) {
      bench::Json q = bench::Json::object();
      q["m"] = p.m;
      q["bucket_hi"] = p.bucket_hi;
      q["heuristic"] = measurement_json(p.heuristic);
      q["tuned"] = measurement_json(p.tuned);
      if (!p.all_configs.empty()) {
        bench::Json& configs = q["configs"];
        configs = bench::Json::object();
        for (const Measurement& c : p.all_configs) configs[c.config] = c.us;
      }
      points.push_back(std::move(q));
    }
    sweeps.push_back(std::move(o));
  }
  return j;
}

std::string markdown(const Report& r) {
  std::string md = "# int8dit: tuned vs heuristic GEMM configurations\n\n";
  md += "GPU: " + r.gpu.name + " (" + std::to_string(r.gpu.sm_count) + " SMs, driver " + r.gpu.driver_version +
        ", SM clock seen " + fmt("%.0f", r.sm_clock_mhz) + " MHz), int8dit " + r.library_version + ", " + r.date +
        ".\nCommand: `" + r.command + "`\n\n";
  md += "bf16 output with bias; CUDA-event median of " + std::to_string(r.options.runs) + " runs per configuration, " +
        "taken in " + std::to_string(r.options.rounds) + " rounds that visit every configuration compared at an M " +
        "in turn (in the M sweeps, every M of the sweep and its configurations in each round, so that times at " +
        "different M share the clock's ups and downs), each visit after " + std::to_string(r.options.warmup) +
        " warm-up runs (the first also after " + fmt("%.0f", r.options.warmup_ms) +
        " ms of warm-up GPU time); inputs rotated over sets spanning 3x L2.\n\n";
  md += "## Summary\n\n| metric | value | target |\n| --- | --- | --- |\n";
  md += "| geomean heuristic time / tuned time (preset shapes) | " + fmt("%.3f", r.summary.geomean_tuned_vs_heuristic) +
        " | >= 1.0 |\n";
  md += "| `int8dit tune --preset flux-dev` wall time | " + fmt("%.1f s", r.summary.tune_seconds_flux_dev) +
        " | <= 600 s |\n";
  md += "| max cliff t(smaller M) / t(larger M), tuned | " + fmt("%.3f", r.summary.max_cliff_ratio_tuned) + " | <= 1.15 |\n";
  md += "| max cliff, heuristic alone | " + fmt("%.3f", r.summary.max_cliff_ratio_heuristic) + " | <= 1.15 |\n\n";
  md += "Tuning time measured as: " + r.summary.tune_seconds_flux_dev_how + ".\n\n";

  md += "## Preset shapes\n\n| preset | M | N | K | heuristic config | heuristic us | tuned config | tuned us | speedup |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const PresetRow& row : r.presets)
    md += "| " + row.preset + " | " + std::to_string(row.m) + " | " + std::to_string(row.n) + " | " +
          std::to_string(row.k) + " | " + row.heuristic.config + " | " + fmt("%.1f", row.heuristic.us) + " | " +
          row.tuned.config + " | " + fmt("%.1f", row.tuned.us) + " | " + fmt("%.3f", row.heuristic.us / row.tuned.us) +
          " |\n";
  for (const Sweep& sw : r.sweeps) {
    md += "\n## M sweep at N = " + std::to_string(sw.n) + ", K = " + std::to_string(sw.k) + "\n\n";
    md += "Worst cliff, heuristic: " + fmt("%.3f", sw.cliff_heuristic.ratio) + " (t(M=" +
          std::to_string(sw.cliff_heuristic.m_small) + ") / t(M=" + std::to_string(sw.cliff_heuristic.m_large) +
          ")); tuned: " + fmt("%.3f", sw.cliff_tuned.ratio) + " (t(M=" + std::to_string(sw.cliff_tuned.m_small) +
          ") / t(M=" + std::to_string(sw.cliff_tuned.m_large) + ")). Tuning on first use took " +
          fmt("%.1f s", sw.tune_seconds) + ".\n\n";
    md += "| M | bucket hi | heuristic us | heuristic config | tuned us | tuned config |\n| --- | --- | --- | --- | --- | --- |\n";
    for (const SweepPoint& p : sw.points)
      md += "| " + std::to_string(p.m) + " | " + std::to_string(p.bucket_hi) + " | " + fmt("%.1f", p.heuristic.us) +
            " | " + p.heuristic.config + " | " + fmt("%.1f", p.tuned.us) + " | " + p.tuned.config + " |\n";
  }
  return md;
}

void write_report(const Report& r, const std::string& dir) {
  write_file(dir + "/tune.json", report_json(r).dump());
  write_file(dir + "/tune.md", markdown(r));
}

}  // namespace bench_tune
