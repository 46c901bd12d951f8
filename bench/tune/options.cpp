#include "options.h"

#include <stdexcept>

namespace bench_tune {
namespace {

int parse_int(const std::string& flag, const std::string& v, int lo) {
  size_t used = 0;
  int x = 0;
  try {
    x = std::stoi(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || x < lo)
    throw std::runtime_error(flag + " " + v + ": expected an integer >= " + std::to_string(lo));
  return x;
}

}  // namespace

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::string help_text() {
  return R"(int8dit_bench_tune: tuned vs heuristic W8A8 GEMM time (bf16 out, with bias), per preset shape and
over an M sweep, and the largest cliff t(smaller M) / t(larger M) in the sweep.

  --out DIR           write DIR/tune.json and DIR/tune.md (the tuning cache goes to DIR/tune_cache.json)
  --preset LIST       comma-separated presets (default: flux-dev,sd3-medium,pixart-sigma,dit-xl-2)
  --shapes-dir DIR    where <preset>.csv live (default: the source tree's bench/shapes)
  --cli PATH          the int8dit tool: time `PATH tune --preset flux-dev` from an empty cache
                      (without it, the in-process tuning time of the flux-dev shapes is reported)
  --warmup N          untimed runs per measurement (default 10)
  --warmup-ms MS      ... and at least MS of GPU time of them (default 30; 0: off): an idle GPU's
                      lowered clock otherwise slows whatever is timed first after host-side work
  --runs N            timed runs per measurement, median kept (default 50)
  --rounds N          the configurations compared at one M (heuristic's, tuner's, and with
                      --all-configs every one) are timed in N interleaved rounds (default 5), and
                      in the M sweeps each round visits every M: under a sustained load the GPU's
                      clock moves with its power cap, and a cliff compares times at different M
  --max-m N           largest M of the sweep (default 8192)
  --no-sweep          presets only
  --all-configs       also time every bf16 configuration at every sweep point (forced by name), so
                      that bench/tune/fit_heuristic.py can judge and refit the heuristic offline
                      against complete data; about 8x the sweep's device time
  --help
)";
}

Options parse_options(int argc, char** argv) {
  Options o;
  o.shapes_dir = INT8DIT_BENCH_SHAPES_DIR;
  for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value (see --help)");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") o.help = true;
    else if (flag == "--out") o.out_dir = value();
    else if (flag == "--preset") o.presets = split_commas(value());
    else if (flag == "--shapes-dir") o.shapes_dir = value();
    else if (flag == "--cli") o.cli = value();
    else if (flag == "--warmup") o.warmup = parse_int(flag, value(), 0);
    else if (flag == "--warmup-ms") o.warmup_ms = parse_int(flag, value(), 0);
    else if (flag == "--runs") o.runs = parse_int(flag, value(), 1);
    else if (flag == "--rounds") o.rounds = parse_int(flag, value(), 1);
    else if (flag == "--max-m") o.max_m = parse_int(flag, value(), 2);
    else if (flag == "--no-sweep") o.sweep = false;
    else if (flag == "--all-configs") o.all_configs = true;
    else throw std::runtime_error("unknown flag " + flag + " (see --help)");
  }
  return o;
}

}  // namespace bench_tune
