#include "options.h"

#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include "check.h"

namespace bench {
namespace {

int parse_int(const std::string& flag, const std::string& v, int lo) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || x < lo || x > 1000000)
    throw BenchError(flag + " expects an integer >= " + std::to_string(lo) + ", got \"" + v + "\"");
  return int(x);
}

double parse_double(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || !(x >= 0)) throw BenchError(flag + " expects a non-negative number, got \"" + v + "\"");
  return x;
}

}  // namespace

std::string help_text() {
  return R"(int8dit_bench_gemm: the W8A8 GEMM (bf16 out, bias, per-token x per-channel scales) against
cuBLAS bf16 (+bias epilogue), cuBLASLt int8 (int32 out) + a dequantize kernel, and cuBLASLt FP8 e4m3
(bf16 out, +bias), all in one process on one GPU; and int8dit's whole linear layer on a bf16 input
(quantize_rows, then the GEMM), against bf16. Every path is checked before it is timed.

Usage: int8dit_bench_gemm [flags]

Shapes
  --preset NAME        flux-dev (default), sd3-medium, pixart-sigma, dit-xl-2, or all (those four: the
                       issue's shape set, which the summary's targets are defined on); flux2-dev
                       (FLUX.2-dev's 32B model at 1024 px) and flux3 (FLUX.3 at 1024 px) by name only;
                       repeatable or comma-separated.
                       Shapes and their layer names come from <shapes-dir>/NAME.csv.
  --shapes LIST        MxNxK[,MxNxK...] instead of (or besides) presets, e.g. 4096x3072x3072.
  --shapes-dir DIR     where the preset files live (default: the source tree's bench/shapes).

Timing
  --warmup N           untimed runs before timing (default 10)
  --warmup-ms MS       ... and the warm-up goes on until it has lasted MS of GPU time (default 30), so
                       that a path timed right after host-side work does not run at an idle GPU's
                       lowered clock; 0 turns it off
  --runs N             timed runs per path; the median is reported (default 50)
  --rounds N           the paths of a row are timed in N interleaved rounds of runs/N runs each
                       (default 5): under a sustained load the GPU runs at its power cap and its
                       clock moves, so paths timed one after the other would not see the same clock;
                       the rounds alternate direction, so no path always follows the same other one
  --calls-per-sample N every timed sample is N back-to-back launches between one pair of CUDA events,
                       reported per launch (default 1: events around each launch). N > 1 times the
                       launches as a model issues them, one after the other with nothing between:
                       where a kernel may start before the previous one ends (ours launches with
                       programmatic dependent launch on Hopper) that overlap can show only this way
  --sweep-runs N       runs per candidate when choosing the best forced configuration of ours and
                       the best of the cuBLASLt heuristic's algorithms (default 20); the winner is
                       then re-timed with --runs
  --algos N            cuBLASLt heuristic candidates tried per baseline (default 4; workspace 32 MiB)
  --no-sweep           skip "ours, best of every configuration forced by name"
  --rotate-mb MB       minimum total size of the input/output buffer sets the runs rotate through,
                       so that L2 does not hold the operands (default: 3 x the GPU's L2 size)
  --host-calls N       host_us_per_call: back-to-back calls per round (default 200)
  --host-rounds N      host_us_per_call: rounds, median reported (default 25)

Checks
  --tol X              max relative error of ours vs cuBLASLt int8 + dequantize (default 0.01; one
                       bf16 ulp is <= 0.0079). Errors are relative to max(|ref|, 1e-3 * max|ref|).
                       A configuration over it, or with any NaN, is reported as a MISMATCH and never timed.

Output and device
  --out DIR            write DIR/gemm.json and DIR/gemm.md (created if missing)
  --device N           CUDA device index (default 0)
  --seed N             seed of the random inputs (default 20240601)
  --inputs uniform|normal|small
                       distribution of the operands every path multiplies (default uniform: int8 in
                       [-127, 127], bf16 in [-1, 1], fp8 in [-4, 4]). normal: bell-shaped values with
                       4 sigma at the range's end, as a per-token quantizer makes of real activations.
                       small: integers in [-2, 2] in every type (CUTLASS's examples' 8-bit inputs), a
                       diagnostic, not a DiT's values. Under the GPU's power cap fewer toggling bits can
                       mean a higher clock, for every path: compare runs by their per-path clock table
  --help               this text

Exit status: 0 when every row ran and every check passed; 1 when a check failed or a row could not
run; 2 on bad flags or no usable GPU.
)";
}

Options parse_options(int argc, char** argv) {
  Options o;
  o.shapes_dir = INT8DIT_BENCH_SHAPES_DIR;
  for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);

  using Setter = std::function<void(const std::string&, const std::string&)>;
  const std::map<std::string, Setter> with_value = {
      {"--preset",
       [&](const std::string&, const std::string& v) {
         std::stringstream ss(v);
         std::string p;
         while (std::getline(ss, p, ',')) if (!p.empty()) o.presets.push_back(p);
       }},
      {"--shapes", [&](const std::string&, const std::string& v) { o.shapes += (o.shapes.empty() ? "" : ",") + v; }},
      {"--shapes-dir", [&](const std::string&, const std::string& v) { o.shapes_dir = v; }},
      {"--out", [&](const std::string&, const std::string& v) { o.out_dir = v; }},
      {"--device", [&](const std::string& f, const std::string& v) { o.device = parse_int(f, v, 0); }},
      {"--warmup", [&](const std::string& f, const std::string& v) { o.warmup = parse_int(f, v, 0); }},
      {"--runs", [&](const std::string& f, const std::string& v) { o.runs = parse_int(f, v, 1); }},
      {"--sweep-runs", [&](const std::string& f, const std::string& v) { o.sweep_runs = parse_int(f, v, 1); }},
      {"--algos", [&](const std::string& f, const std::string& v) { o.algos = parse_int(f, v, 1); }},
      {"--calls-per-sample",
       [&](const std::string& f, const std::string& v) { o.calls_per_sample = parse_int(f, v, 1); }},
      {"--rounds", [&](const std::string& f, const std::string& v) { o.rounds = parse_int(f, v, 1); }},
      {"--warmup-ms", [&](const std::string& f, const std::string& v) { o.warmup_ms = parse_double(f, v); }},
      {"--rotate-mb", [&](const std::string& f, const std::string& v) { o.rotate_mb = parse_double(f, v); }},
      {"--tol", [&](const std::string& f, const std::string& v) { o.tol = parse_double(f, v); }},
      {"--host-calls", [&](const std::string& f, const std::string& v) { o.host_calls = parse_int(f, v, 1); }},
      {"--host-rounds", [&](const std::string& f, const std::string& v) { o.host_rounds = parse_int(f, v, 1); }},
      {"--seed", [&](const std::string& f, const std::string& v) { o.seed = uint64_t(parse_int(f, v, 0)); }},
      {"--inputs",
       [&](const std::string& f, const std::string& v) {
         if (v == "uniform") o.inputs = Distribution::uniform;
         else if (v == "normal") o.inputs = Distribution::normal;
         else if (v == "small") o.inputs = Distribution::small;
         else throw BenchError(f + " must be uniform, normal or small, got \"" + v + "\"");
       }},
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      continue;
    }
    if (arg == "--no-sweep") {
      o.sweep = false;
      continue;
    }
    std::string value;
    const size_t eq = arg.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto it = with_value.find(arg);
    if (it == with_value.end()) throw BenchError("unknown flag \"" + arg + "\" (see --help)");
    if (!inline_value) {
      if (i + 1 >= argc) throw BenchError(arg + " needs a value (see --help)");
      value = argv[++i];
    }
    it->second(arg, value);
  }
  if (o.presets.empty() && o.shapes.empty()) o.presets.push_back("flux-dev");
  return o;
}

}  // namespace bench
