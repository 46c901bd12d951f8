// Command-line flags of int8dit_bench_gemm (--help prints help_text()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"

namespace bench {

struct Options {
  std::vector<std::string> presets;  // --preset (repeatable, or comma-separated); "all" = every preset
  std::string shapes;                // --shapes MxNxK,...
  std::string shapes_dir;            // --shapes-dir
  std::string out_dir;               // --out: where gemm.json and gemm.md go (none: print only)
  int device = 0;
  int warmup = 10;
  double warmup_ms = 30;  // --warmup-ms: the warm-up also lasts this much GPU time (timing.h says why)
  int runs = 50;
  int calls_per_sample = 1;  // --calls-per-sample: back-to-back launches between one pair of events
  int rounds = 5;          // --rounds: the final timings of a row interleave in this many rounds
  int sweep_runs = 20;     // runs per candidate when picking the best forced config / cuBLASLt algo
  int algos = 4;           // cuBLASLt heuristic candidates tried per baseline
  bool sweep = true;       // --no-sweep: skip "ours best-of every config"
  double rotate_mb = 0;    // 0: three times the L2 size
  double tol = 1e-2;       // relative error bound of ours vs the reference (see compare.cu)
  int host_calls = 200;    // host_us_per_call: calls per round ...
  int host_rounds = 25;    // ... and rounds (median)
  uint64_t seed = 20240601;
  Distribution inputs = Distribution::uniform;  // --inputs
  std::string command_line;
  bool help = false;
};

// Throws BenchError with a message naming the flag on bad input.
Options parse_options(int argc, char** argv);
std::string help_text();

}  // namespace bench
