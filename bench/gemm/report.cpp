#include "report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "check.h"
#include "kernels.h"

namespace bench {
namespace {

// Targets of issue 3 on the H100, written next to the figures so a reader sees met / missed.
struct Target {
  const char* key;
  double bound;
  bool at_most;  // true: the figure must be <= bound
};
constexpr Target kTargets[] = {
    {"geomean_vs_bf16_large", 2.0, false}, {"geomean_vs_fp8_large", 1.15, false},
    {"geomean_vs_bf16_small", 1.5, false}, {"tops_flux_single_lin1", 1600, false},
    {"host_us_per_call", 5.0, true},
};

double tops(const Row& row, const PathResult& p) { return p.ok() ? row.flops / (p.ms * 1e-3) / 1e12 : 0; }

const PathResult& ours(const Row& row, Ours which) {
  switch (which) {
    case Ours::kBestConfig: return row.ours_best;
    case Ours::kDispatchStreamOrder: return row.ours_stream_order;
    case Ours::kLinear: return row.linear;
    case Ours::kLinearStreamOrder: return row.linear_stream_order;
    case Ours::kDispatch: break;
  }
  return row.ours_heuristic;
}

double speedup(const PathResult& base, const PathResult& o) { return base.ok() && o.ok() ? base.ms / o.ms : 0; }

Json path_json(const Row& row, const PathResult& p, double peak, const PathResult* bf16, const PathResult* fp8) {
  Json j = Json::object();
  j["status"] = p.status;
  if (!p.what.empty()) j["what"] = p.what;
  if (p.max_rel_err >= 0) j["max_rel_err"] = p.max_rel_err;
  if (!p.ok()) return j;
  j["ms"] = p.ms;
  j["min_ms"] = p.min_ms;
  j["runs"] = p.runs;
  j["tops"] = tops(row, p);
  j["gbps"] = p.bytes / (p.ms * 1e-3) / 1e9;
  j["frac_of_int8_dense_peak"] = peak > 0 ? Json(tops(row, p) / peak) : Json();
  if (bf16) j["speedup_vs_bf16"] = bf16->ok() ? Json(speedup(*bf16, p)) : Json();
  if (fp8) j["speedup_vs_fp8"] = fp8->ok() ? Json(speedup(*fp8, p)) : Json();
  if (p.clock_samples > 0) {
    j["sm_mhz"] = p.sm_mhz;
    j["tops_per_ghz"] = tops(row, p) / (p.sm_mhz / 1e3);
    j["clock_samples"] = p.clock_samples;
  }
  if (!p.held) j["warning"] = "the stream-holding kernel timed out: some runs may include launch gaps";
  return j;
}

Json summary_json(const Summary& s, const HostOverhead* host) {
  Json j = Json::object();
  j["geomean_vs_bf16_large"] = s.large_rows ? Json(s.geomean_vs_bf16_large) : Json();
  j["geomean_vs_fp8_large"] = s.large_rows ? Json(s.geomean_vs_fp8_large) : Json();
  j["geomean_vs_bf16_small"] = s.small_rows ? Json(s.geomean_vs_bf16_small) : Json();
  j["geomean_vs_fp8_per_tensor_large"] =
      s.geomean_vs_fp8_per_tensor_large > 0 ? Json(s.geomean_vs_fp8_per_tensor_large) : Json();
  j["tops_flux_single_lin1"] = s.tops_flux_single_lin1 > 0 ? Json(s.tops_flux_single_lin1) : Json();
  if (host) j["host_us_per_call"] = host->status == "ok" ? Json(host->us_per_call) : Json();
  j["large_rows"] = s.large_rows;
  j["small_rows"] = s.small_rows;
  return j;
}

std::string cell(const Row& row, const PathResult& p) {
  if (!p.ok()) return p.status.rfind("MISMATCH", 0) == 0 || p.status.rfind("WRONG", 0) == 0 ? "**FAILED CHECK**" : "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f / %.0f", p.ms, tops(row, p));
  return buf;
}

std::string inputs_description(Distribution d) {
  const std::string scales = "; positive per-token and per-channel scales; bias uniform in [-1, 1]";
  switch (d) {
    case Distribution::normal:
      return "random, normal (--inputs normal): int8 round(N(0, 1) * 127 / 4) clamped to [-127, 127], bf16 "
             "N(0, 1) / 4, fp8 e4m3 N(0, 1)" + scales;
    case Distribution::small:
      return "random, small (--inputs small): integers uniform in [-2, 2] in every type (a diagnostic of the "
             "clock on low-entropy data, not a DiT's values)" + scales;
    default:
      return "random, uniform: int8 in [-127, 127], bf16 in [-1, 1], fp8 e4m3 in [-4, 4]" + scales;
  }
}

std::string num(double v, const char* f = "%.2f") {
  if (!(v > 0)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

Summary summarize(const std::vector<Row>& rows, Ours which) {
  Summary s;
  double log_bf16_large = 0, log_fp8_large = 0, log_bf16_small = 0, log_fp8t_large = 0;
  int fp8_large = 0, fp8t_large = 0;
  for (const Row& row : rows) {
    const PathResult& o = ours(row, which);
    if (!o.ok()) continue;
    if (row.shape.m == 4608 && row.shape.n == 21504 && row.shape.k == 3072) s.tops_flux_single_lin1 = tops(row, o);
    if (row.shape.m >= 4096 && row.bf16.ok()) {
      log_bf16_large += std::log(speedup(row.bf16, o));
      ++s.large_rows;
      if (row.fp8.ok()) {
        log_fp8_large += std::log(speedup(row.fp8, o));
        ++fp8_large;
      }
      if (row.fp8_per_tensor.ok()) {
        log_fp8t_large += std::log(speedup(row.fp8_per_tensor, o));
        ++fp8t_large;
      }
    }
    if (row.shape.m <= 1024 && row.bf16.ok()) {
      log_bf16_small += std::log(speedup(row.bf16, o));
      ++s.small_rows;
    }
  }
  if (s.large_rows) s.geomean_vs_bf16_large = std::exp(log_bf16_large / s.large_rows);
  if (fp8_large) s.geomean_vs_fp8_large = std::exp(log_fp8_large / fp8_large);
  if (fp8t_large) s.geomean_vs_fp8_per_tensor_large = std::exp(log_fp8t_large / fp8t_large);
  if (s.small_rows) s.geomean_vs_bf16_small = std::exp(log_bf16_small / s.small_rows);
  return s;
}

Json to_json(const RunReport& r) {
  const GpuInfo& g = r.gpu;
  Json j = Json::object();
  j["benchmark"] = "int8dit_bench_gemm";
  j["command"] = r.opts.command_line;
  j["date_utc"] = r.date_utc;
  j["library"]["version"] = r.library_version;
  j["library"]["built_architectures"] = r.built_archs;
  j["library"]["configurations"] = r.config_names;
  j["library"]["dispatch_mode"] = r.dispatch_mode;
  j["library"]["int8dit_switches"] = r.switches;
  Json& gpu = j["gpu"];
  gpu["name"] = g.name;
  gpu["pci_bus_id"] = g.pci_bus_id;
  gpu["compute_capability"] = std::to_string(g.cc / 10) + "." + std::to_string(g.cc % 10);
  gpu["sm_count"] = g.sm_count;
  gpu["l2_bytes"] = int64_t(g.l2_bytes);
  gpu["memory_bytes"] = int64_t(g.memory_bytes);
  gpu["driver_version"] = g.driver_version.empty() ? Json() : Json(g.driver_version);
  gpu["cuda_driver_api_version"] = g.cuda_driver_version;
  gpu["cuda_runtime_version"] = g.cuda_runtime_version;
  gpu["cublaslt_version"] = g.cublaslt_version;
  gpu["max_sm_clock_mhz_attribute"] = g.max_sm_clock_mhz;
  gpu["nvidia_smi_sm_clock_mhz_at_start"] = g.smi_sm_clock_mhz.empty() ? Json() : Json(g.smi_sm_clock_mhz);
  gpu["nvidia_smi_max_sm_clock_mhz"] = g.smi_max_sm_clock_mhz.empty() ? Json() : Json(g.smi_max_sm_clock_mhz);
  gpu["nvidia_smi_power_limit_w"] = g.smi_power_limit_w.empty() ? Json() : Json(g.smi_power_limit_w);
  gpu["sm_clock_mhz_seen_by_kernel_start"] = r.sm_clock_mhz_start;
  gpu["sm_clock_mhz_seen_by_kernel_end"] = r.sm_clock_mhz_end;
  gpu["int8_dense_peak_tops"] = g.int8_dense_peak_tops > 0 ? Json(g.int8_dense_peak_tops) : Json();
  gpu["int8_dense_peak_source"] = g.peak_source;

  Json& method = j["method"];
  method["timing"] = "CUDA events around each run, median of runs after warm-up; a holding kernel keeps the "
                     "stream busy while runs are enqueued so only device time is measured";
  method["warmup"] = r.opts.warmup;
  method["warmup_ms"] = r.opts.warmup_ms;
  method["rounds"] = r.opts.rounds;
  method["runs"] = r.opts.runs;
  method["sweep_runs"] = r.opts.sweep_runs;
  method["sm_clock_per_path"] = r.clock_sampling;
  method["cublaslt_algos_tried"] = r.opts.algos;
  method["cublaslt_workspace_bytes"] = int64_t(32) << 20;
  method["rotation"] = "each run uses the next of several buffer sets whose total exceeds the rotation target";
  method["rotate_target_bytes"] = r.opts.rotate_mb > 0 ? r.opts.rotate_mb * 1e6 : 3.0 * double(g.l2_bytes);
  method["inputs"] = inputs_description(r.opts.inputs);
  method["input_distribution"] = distribution_name(r.opts.inputs);
  method["correctness"] = "ours (every configuration) is compared on every element with cuBLASLt int8 + "
                          "dequantize before timing (outputs poisoned with NaN first); the baselines are "
                          "checked on sampled elements against a host dot product (int8 paths exactly)";
  method["tolerance"] = r.opts.tol;
  method["ours"] = "int8dit::gemm_w8a8, bf16 out, per-token scale_a x per-channel scale_b, fp32 bias";
  method["calls_per_sample"] = r.opts.calls_per_sample;
  method["calls_per_sample_means"] =
      r.opts.calls_per_sample > 1
          ? "each sample is that many back-to-back launches of a path between one pair of events, per launch"
          : "events around every launch";
  method["cublas_bf16_bias"] = "cuBLASLt bf16 x bf16 -> bf16, fp32 compute, CUBLASLT_EPILOGUE_BIAS, TN";
  method["cublaslt_int8_dequant"] = "cuBLASLt int8 x int8 -> int32 (TN, COMPUTE_32I), then the benchmark's "
                                    "dequantize kernel (int32 -> bf16 with both scales and the bias)";
  method["cublaslt_fp8"] = "cuBLASLt e4m3 x e4m3 -> bf16, fp32 compute, CUBLASLT_EPILOGUE_BIAS, TN, outer-vector "
                           "(per-token x per-channel) scales like torch._scaled_mm rowwise; fallbacks: see each "
                           "row's scaling, bias_epilogue and note";
  method["cublaslt_fp8_per_tensor"] = "the same with one scale per tensor: cuBLASLt's fastest FP8 kernels, a "
                                      "coarser quantization than ours";

  Json rows = Json::array();
  const double peak = g.int8_dense_peak_tops;
  for (const Row& row : r.rows) {
    Json jr = Json::object();
    jr["preset"] = row.shape.preset;
    jr["layer"] = row.shape.layer;
    jr["m"] = row.shape.m;
    jr["n"] = row.shape.n;
    jr["k"] = row.shape.k;
    jr["flops"] = row.flops;
    if (!row.error.empty()) jr["error"] = row.error;
    jr["buffer_sets"] = row.buffer_sets;
    jr["rotated_mb"] = row.rotated_mb;
    jr["reference"] = row.reference;
    Json& paths = jr["paths"];
    paths["ours_heuristic"] = path_json(row, row.ours_heuristic, peak, &row.bf16, &row.fp8);
    paths["ours_heuristic_stream_order"] = path_json(row, row.ours_stream_order, peak, &row.bf16, &row.fp8);
    paths["ours_best"] = path_json(row, row.ours_best, peak, &row.bf16, &row.fp8);
    // The linear layer takes bf16 in, as cuBLAS bf16 does; the FP8 figures leave out FP8's own
    // quantization, so the linear layer is compared with bf16 only.
    paths["ours_linear"] = path_json(row, row.linear, peak, &row.bf16, nullptr);
    paths["ours_linear_stream_order"] = path_json(row, row.linear_stream_order, peak, &row.bf16, nullptr);
    paths["cublas_bf16_bias"] = path_json(row, row.bf16, 0, nullptr, nullptr);
    paths["cublaslt_int8_gemm"] = path_json(row, row.int8_gemm, peak, &row.bf16, &row.fp8);
    paths["cublaslt_int8_dequant"] = path_json(row, row.int8_dequant, peak, &row.bf16, &row.fp8);
    paths["cublaslt_fp8"] = path_json(row, row.fp8, peak, &row.bf16, nullptr);
    paths["cublaslt_fp8"]["scaling"] = row.fp8_scaling;
    paths["cublaslt_fp8"]["bias_epilogue"] = row.fp8_bias;
    if (!row.fp8_note.empty()) paths["cublaslt_fp8"]["note"] = row.fp8_note;
    paths["cublaslt_fp8_per_tensor"] = path_json(row, row.fp8_per_tensor, peak, &row.bf16, nullptr);
    Json trials = Json::array();
    for (const ConfigTrial& t : row.trials) {
      Json jt = Json::object();
      jt["config"] = t.name;
      jt["status"] = t.status;
      if (t.status == "ok") {
        jt["ms"] = t.ms;
        jt["tops"] = row.flops / (t.ms * 1e-3) / 1e12;
      }
      if (t.max_rel_err >= 0) jt["max_rel_err"] = t.max_rel_err;
      trials.push_back(jt);
    }
    jr["config_trials"] = trials;
    rows.push_back(jr);
  }
  j["rows"] = rows;

  Json& host = j["host_overhead"];
  host["status"] = r.host.status;
  host["shape"] = std::to_string(r.host.m) + "x" + std::to_string(r.host.n) + "x" + std::to_string(r.host.k);
  if (r.host.status == "ok") {
    host["config"] = r.host.config;
    host["us_per_call"] = r.host.us_per_call;
    host["us_per_call_no_pointer_check"] = r.host.us_per_call_no_pointer_check;
    host["us_per_select"] = r.host.us_per_select;
    Json& floor = host["empty_kernel_launch_us"];
    floor["params_" + std::to_string(kLaunchFloorSmallParamBytes) + "_bytes"] = r.host.us_per_empty_launch;
    floor["params_" + std::to_string(kLaunchFloorGemmParamBytes) + "_bytes"] = r.host.us_per_empty_launch_gemm_params;
    floor["params_" + std::to_string(kLaunchFloorGemmParamBytes) + "_bytes_200kb_smem"] =
        r.host.us_per_empty_launch_gemm_params_smem;
    floor["params_" + std::to_string(kLaunchFloorGemmParamBytes) + "_bytes_200kb_smem_cuLaunchKernelEx"] =
        r.host.us_per_empty_driver_launch_gemm_params_smem;
    host["calls_per_round"] = r.host.calls;
    host["rounds"] = r.host.rounds;
  }

  const Summary heur = summarize(r.rows, Ours::kDispatch), best = summarize(r.rows, Ours::kBestConfig);
  const Summary stream_order = summarize(r.rows, Ours::kDispatchStreamOrder);
  Json summary = summary_json(heur, &r.host);
  summary["ours"] = "int8dit::gemm_w8a8 with default dispatch (no configuration forced)";
  summary["stream_order"] = summary_json(stream_order, nullptr);
  summary["stream_order"]["ours"] = "the same calls with GemmOptions::programmatic_launch = false (plain stream order)";
  for (const auto& [key, which, what] :
       {std::tuple<const char*, Ours, const char*>{
            "linear", Ours::kLinear,
            "the linear layer on a bf16 input: quantize_rows then the dispatched GEMM (programmatic), against "
            "cuBLAS bf16 (fp8 figures leave out FP8's own quantization: not comparable, left empty)"},
        {"linear_stream_order", Ours::kLinearStreamOrder,
         "the linear layer with the GEMM in plain stream order (it starts when the quantization has ended)"}}) {
    const Summary lin = summarize(r.rows, which);
    Json& jl = summary[key];
    jl["geomean_vs_bf16_large"] = lin.large_rows ? Json(lin.geomean_vs_bf16_large) : Json();
    jl["geomean_vs_bf16_small"] = lin.small_rows ? Json(lin.geomean_vs_bf16_small) : Json();
    jl["tops_flux_single_lin1"] = lin.tops_flux_single_lin1 > 0 ? Json(lin.tops_flux_single_lin1) : Json();
    jl["large_rows"] = lin.large_rows;
    jl["small_rows"] = lin.small_rows;
    jl["ours"] = what;
  }
  summary["best_config"] = summary_json(best, nullptr);
  summary["best_config"]["ours"] = "the fastest configuration forced by name, per shape";
  const bool all_checks_passed = [&] {
    for (const Row& row : r.rows)
      if (row.check_failed) return false;
    return true;
  }();
  Json& targets = summary["targets"];
  for (const Target& t : kTargets) {
    const double v = std::string(t.key) == "geomean_vs_bf16_large" ? heur.geomean_vs_bf16_large
                     : std::string(t.key) == "geomean_vs_fp8_large" ? heur.geomean_vs_fp8_large
                     : std::string(t.key) == "geomean_vs_bf16_small" ? heur.geomean_vs_bf16_small
                     : std::string(t.key) == "tops_flux_single_lin1" ? heur.tops_flux_single_lin1
                                                                      : (r.host.status == "ok" ? r.host.us_per_call : 0);
    Json& jt = targets[t.key];
    jt["bound"] = std::string(t.at_most ? "<= " : ">= ") + num(t.bound, "%g");
    // A run with a failed check proves nothing: its summary leaves the failed rows out.
    jt["met"] = v > 0 && all_checks_passed ? Json(t.at_most ? v <= t.bound : v >= t.bound) : Json();
  }
  summary["all_checks_passed"] = all_checks_passed;
  if (!all_checks_passed)
    summary["warning"] = "some checks failed or rows could not run: the geomeans leave those rows out and no "
                         "target is assessed";
  j["summary"] = summary;
  return j;
}

namespace {

// The clock each path ran at and what its schedule does per clock: under a power cap a large GEMM's
// TOPS are both (clock_monitor.h). Empty where no path's clock was sampled.
std::string clock_section(const RunReport& r) {
  bool any = false;
  for (const Row& row : r.rows) any = any || row.ours_heuristic.clock_samples > 0;
  if (!any) return "";
  std::string md = "## SM clock while each path ran\n\nCells are `MHz / TOPS per GHz` (TOPS over the mean SM clock the path "
                   "ran at: the work its schedule does per clock; the clock is what the GPU's power cap left it).\n\n"
                   "| M x N x K | ours | cuBLAS bf16+bias | cuBLASLt FP8 rowwise | ours, best config |\n"
                   "|---|---|---|---|---|\n";
  auto cell = [](const Row& row, const PathResult& p) {
    return p.ok() && p.clock_samples > 0 ? num(p.sm_mhz, "%.0f") + " / " + num(tops(row, p) / (p.sm_mhz / 1e3), "%.0f")
                                         : std::string("n/a");
  };
  for (const Row& row : r.rows) {
    if (!row.error.empty()) continue;
    md += "| " + std::to_string(row.shape.m) + "x" + std::to_string(row.shape.n) + "x" + std::to_string(row.shape.k) +
          " | " + cell(row, row.ours_heuristic) + " | " + cell(row, row.bf16) + " | " + cell(row, row.fp8) + " | " +
          cell(row, row.ours_best) + " |\n";
  }
  return md + "\n";
}

}  // namespace

std::string to_markdown(const RunReport& r) {
  const GpuInfo& g = r.gpu;
  std::string md;
  auto line = [&](const std::string& s) { md += s + "\n"; };
  line("# int8dit W8A8 GEMM benchmark");
  line("");
  line("- command: `" + r.opts.command_line + "`");
  line("- date (UTC): " + r.date_utc);
  line("- GPU: " + g.name + " (sm_" + std::to_string(g.cc) + ", " + std::to_string(g.sm_count) + " SMs), driver " +
       (g.driver_version.empty() ? "?" : g.driver_version) + ", CUDA runtime " + std::to_string(g.cuda_runtime_version) +
       ", cuBLASLt " + std::to_string(g.cublaslt_version));
  line("- SM clock: seen by a probe kernel " + num(r.sm_clock_mhz_start, "%.0f") + " MHz at start, " +
       num(r.sm_clock_mhz_end, "%.0f") + " MHz at end; nvidia-smi " +
       (g.smi_sm_clock_mhz.empty() ? "n/a" : g.smi_sm_clock_mhz) + " MHz (idle, at start), max " +
       (g.smi_max_sm_clock_mhz.empty() ? std::to_string(g.max_sm_clock_mhz) : g.smi_max_sm_clock_mhz) + " MHz");
  line("- INT8 dense peak: " + (g.int8_dense_peak_tops > 0 ? num(g.int8_dense_peak_tops, "%.0f") + " TOPS (" : "unknown (") +
       g.peak_source + ")");
  line("- int8dit " + r.library_version + ", built for " + r.built_archs + "; dispatch: " + r.dispatch_mode +
       "; INT8DIT_* environment: " + (r.switches.empty() ? "none" : r.switches));
  line("- timing: median of " + std::to_string(r.opts.runs) + " runs per path, taken in " +
       std::to_string(r.opts.rounds) + " rounds that visit every path of the row in turn, in alternating directions (the GPU's clock moves " +
       "under its power cap; interleaving gives every path the same mix), each after " +
       std::to_string(r.opts.warmup) + " warm-up runs lasting at least " + num(r.opts.warmup_ms, "%.0f") +
       " ms of GPU time; CUDA events, buffer sets rotated past L2; cuBLASLt: best of the heuristic's top " +
       std::to_string(r.opts.algos) + " algorithms, 32 MiB workspace");
  line("- SM clock while each path ran (its warm-up and timed runs, every round): " +
       (r.clock_sampling.empty() ? std::string("not sampled") : r.clock_sampling));
  line("- inputs: " + inputs_description(r.opts.inputs));
  line("- samples: " + (r.opts.calls_per_sample > 1
                            ? std::to_string(r.opts.calls_per_sample) +
                                  " back-to-back launches between one pair of events, reported per launch"
                            : std::string("CUDA events around every launch")));
  line("");
  line("Cells are `ms / TOPS` (TOPS = 2MNK / t). \"ours\" is int8dit::gemm_w8a8 with default dispatch (on Hopper "
       "a programmatic dependent launch); \"no PDL\" the same call in plain stream order; \"best\" the fastest "
       "configuration forced by name. Speedups are ours vs the baseline (dispatch / best). \"linear\" is the "
       "whole int8dit linear layer on a bf16 input (quantize_rows, then the GEMM; \"no PDL\": the GEMM in plain "
       "stream order), compared with cuBLAS bf16, which takes the same input.");
  line("");
  line("| preset | M x N x K | layer | ours | ours config | ours, no PDL | best | best config | cuBLAS bf16+bias | "
       "cuBLASLt int8 + dequant (GEMM alone) | cuBLASLt FP8 rowwise | FP8 per-tensor | vs bf16 | vs FP8 rowwise | "
       "vs FP8 per-tensor | % INT8 peak | max rel err | linear | linear, no PDL | linear vs bf16 |");
  line("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const Row& row : r.rows) {
    const std::string shape =
        std::to_string(row.shape.m) + "x" + std::to_string(row.shape.n) + "x" + std::to_string(row.shape.k);
    if (!row.error.empty()) {
      line("| " + row.shape.preset + " | " + shape + " | " + row.shape.layer + " | row failed: " + row.error +
           " |||||||||||||||||");
      continue;
    }
    const PathResult& h = row.ours_heuristic;
    const PathResult& b = row.ours_best;
    const std::string fp8 = cell(row, row.fp8) + (row.fp8.ok() && row.fp8_scaling == "per_tensor" ? " (per-tensor)" : "") +
                            (row.fp8.ok() && !row.fp8_bias ? " (no bias)" : "");
    const double peak = g.int8_dense_peak_tops;
    line("| " + row.shape.preset + " | " + shape + " | " + row.shape.layer + " | " +
         (h.ok() ? cell(row, h) : (h.status.rfind("MISMATCH", 0) == 0 ? "**MISMATCH**" : h.status)) + " | " + h.what +
         " | " + cell(row, row.ours_stream_order) + " | " + cell(row, b) + " | " + b.what + " | " + cell(row, row.bf16) + " | " + cell(row, row.int8_dequant) +
         " (" + cell(row, row.int8_gemm) + ") | " + fp8 + " | " + cell(row, row.fp8_per_tensor) + " | " +
         num(speedup(row.bf16, h)) + " / " + num(speedup(row.bf16, b)) + " | " + num(speedup(row.fp8, h)) + " / " +
         num(speedup(row.fp8, b)) + " | " + num(speedup(row.fp8_per_tensor, h)) + " / " +
         num(speedup(row.fp8_per_tensor, b)) + " | " +
         (peak > 0 && h.ok() ? num(100 * tops(row, h) / peak, "%.1f") : "n/a") + " | " +
         (h.max_rel_err >= 0 ? num(h.max_rel_err, "%.1e") : "n/a") + " | " + cell(row, row.linear) + " | " +
         cell(row, row.linear_stream_order) + " | " + num(speedup(row.bf16, row.linear)) + " |");
  }
  line("");
  md += clock_section(r);
  line("## Summary");
  line("");
  bool all_checks_passed = true;
  for (const Row& row : r.rows) all_checks_passed &= !row.check_failed;
  if (!all_checks_passed) {
    line("**Some checks failed or rows could not run: the figures below leave those rows out and prove nothing.**");
    line("");
  }
  const Summary heur = summarize(r.rows, Ours::kDispatch), best = summarize(r.rows, Ours::kBestConfig);
  const Summary plain = summarize(r.rows, Ours::kDispatchStreamOrder);
  line("| figure | ours (dispatch) | ours, no PDL | ours (best config) | target |");
  line("|---|---|---|---|---|");
  line("| geomean speedup vs bf16, M >= 4096 (" + std::to_string(heur.large_rows) + " shapes) | " +
       num(heur.geomean_vs_bf16_large) + " | " + num(plain.geomean_vs_bf16_large) + " | " +
       num(best.geomean_vs_bf16_large) + " | >= 2.0 |");
  line("| geomean speedup vs FP8 rowwise (outer-vector), M >= 4096 | " + num(heur.geomean_vs_fp8_large) + " | " +
       num(plain.geomean_vs_fp8_large) + " | " + num(best.geomean_vs_fp8_large) + " | >= 1.15 |");
  line("| geomean speedup vs FP8 per-tensor, M >= 4096 | " + num(heur.geomean_vs_fp8_per_tensor_large) + " | " +
       num(plain.geomean_vs_fp8_per_tensor_large) + " | " + num(best.geomean_vs_fp8_per_tensor_large) +
       " | (for reference) |");
  line("| geomean speedup vs bf16, M <= 1024 (" + std::to_string(heur.small_rows) + " shapes) | " +
       num(heur.geomean_vs_bf16_small) + " | " + num(plain.geomean_vs_bf16_small) + " | " +
       num(best.geomean_vs_bf16_small) + " | >= 1.5 |");
  line("| TOPS on Flux single-stream linear1, 4608x21504x3072 | " + num(heur.tops_flux_single_lin1, "%.0f") + " | " +
       num(plain.tops_flux_single_lin1, "%.0f") + " | " + num(best.tops_flux_single_lin1, "%.0f") + " | >= 1600 |");
  line("| host us per call, M = 1, N = K = 3072 | " +
       (r.host.status == "ok" ? num(r.host.us_per_call) + " (" + num(r.host.us_per_call_no_pointer_check) +
                                    " without pointer checks; the choice alone " + num(r.host.us_per_select) +
                                    "; an empty kernel's launch " + num(r.host.us_per_empty_launch) + ", " +
                                    num(r.host.us_per_empty_launch_gemm_params_smem) +
                                    " with the GEMM's 1792-byte parameter and 200 KB of shared memory, " +
                                    num(r.host.us_per_empty_driver_launch_gemm_params_smem) +
                                    " through cuLaunchKernelEx; each the median of " + std::to_string(r.host.rounds) +
                                    " rounds of " + std::to_string(r.host.calls) +
                                    " calls, every round timing all of them in turn)"
                              : "n/a: " + r.host.status) +
       " | | | <= 5 |");
  const Summary lin = summarize(r.rows, Ours::kLinear), lin_plain = summarize(r.rows, Ours::kLinearStreamOrder);
  line("");
  line("The linear layer (quantize_rows + GEMM, bf16 in) against cuBLAS bf16 (same input):");
  line("");
  line("| figure | linear (GEMM programmatic) | linear, GEMM in plain stream order |");
  line("|---|---|---|");
  line("| geomean speedup vs bf16, M >= 4096 (" + std::to_string(lin.large_rows) + " shapes) | " +
       num(lin.geomean_vs_bf16_large) + " | " + num(lin_plain.geomean_vs_bf16_large) + " |");
  line("| geomean speedup vs bf16, M <= 1024 (" + std::to_string(lin.small_rows) + " shapes) | " +
       num(lin.geomean_vs_bf16_small) + " | " + num(lin_plain.geomean_vs_bf16_small) + " |");
  line("| effective TOPS on Flux single-stream linear1 | " + num(lin.tops_flux_single_lin1, "%.0f") + " | " +
       num(lin_plain.tops_flux_single_lin1, "%.0f") + " |");
  line("");
  bool fp8_fallback = false;
  for (const Row& row : r.rows) fp8_fallback |= row.fp8.ok() && (row.fp8_scaling == "per_tensor" || !row.fp8_bias);
  line(std::string("FP8: ") +
       (fp8_fallback ? "outer-vector scales (per-token x per-channel, CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F) "
                       "with the bias epilogue except on the rows marked (per-tensor) or (no bias), where this "
                       "cuBLASLt offered no such algorithm (the reason is in gemm.json, paths.cublaslt_fp8.note)."
                     : "outer-vector scales (per-token x per-channel, CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F) with "
                       "the bias epilogue on every row that ran."));
  return md;
}

void write_reports(const std::string& dir, const RunReport& r) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw BenchError("cannot create --out directory " + dir + ": " + ec.message());
  const std::string json_path = dir + "/gemm.json", md_path = dir + "/gemm.md";
  std::ofstream(json_path) << to_json(r).dump();
  std::ofstream(md_path) << to_markdown(r);
  if (!std::ifstream(json_path) || !std::ifstream(md_path)) throw BenchError("could not write " + json_path);
}

}  // namespace bench
