// Command-line flags of int8dit_bench_tune (--help prints help_text()).
#pragma once

#include <string>
#include <vector>

namespace bench_tune {

struct Options {
  std::vector<std::string> presets = {"flux-dev", "sd3-medium", "pixart-sigma", "dit-xl-2"};
  std::string shapes_dir;   // --shapes-dir
  std::string out_dir;      // --out: tune.json, tune.md and the private tuning cache go there
  std::string cli;          // --cli PATH: the int8dit tool, to time `int8dit tune --preset flux-dev`
  int warmup = 10;
  double warmup_ms = 30;     // --warmup-ms: the warm-up also lasts this much GPU time (bench/gemm/timing.h)
  int runs = 50;
  int rounds = 5;           // --rounds: the configurations compared at one M interleave in this many rounds
  int max_m = 8192;         // --max-m: the sweep's largest M
  bool sweep = true;        // --no-sweep
  bool all_configs = false; // --all-configs: also time every bf16 configuration at every sweep point
  std::string command_line;
  bool help = false;
};

// Throws std::runtime_error naming the flag on bad input.
Options parse_options(int argc, char** argv);
std::string help_text();
// "a,b,,c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_commas(const std::string& s);

}  // namespace bench_tune
