// `int8dit bench`: runs one of the benchmark programs (bench/) with the arguments given. They are
// programs of their own because they link cuBLAS/cuBLASLt for their baselines, which the library and
// this tool do not; this command finds the one asked for and hands it the process (exec), so its
// output, files and exit status are its own.
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"

namespace {

struct Benchmark {
  const char* name;
  const char* program;
  const char* built_at;  // where this build put it ("" where INT8DIT_BUILD_BENCH was OFF)
  const char* summary;
};

#ifndef INT8DIT_BENCH_GEMM_PATH
#define INT8DIT_BENCH_GEMM_PATH ""
#endif
#ifndef INT8DIT_BENCH_QUANT_PATH
#define INT8DIT_BENCH_QUANT_PATH ""
#endif
#ifndef INT8DIT_BENCH_TUNE_PATH
#define INT8DIT_BENCH_TUNE_PATH ""
#endif

constexpr Benchmark kBenchmarks[] = {
    {"gemm", "int8dit_bench_gemm", INT8DIT_BENCH_GEMM_PATH,
     "the W8A8 GEMM against cuBLAS bf16, cuBLASLt int8 + dequantize and FP8 on DiT shapes (gemm.json, gemm.md)"},
    {"quant", "int8dit_bench_quant", INT8DIT_BENCH_QUANT_PATH,
     "the activation-quantization kernels against the device-to-device copy bandwidth (quant.json)"},
    {"tune", "int8dit_bench_tune", INT8DIT_BENCH_TUNE_PATH,
     "tuned against heuristic configurations, and M sweeps for cliffs (tune.json, tune.md)"},
};

bool executable(const std::string& path) { return !path.empty() && access(path.c_str(), X_OK) == 0; }

// This program's directory (an installed layout keeps the benchmarks beside it).
std::string own_directory() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

// Where the benchmark is: the path this build gave it, else beside this program, else on PATH.
std::string locate(const Benchmark& b) {
  if (executable(b.built_at)) return b.built_at;
  if (const std::string beside = own_directory() + "/" + b.program; executable(beside)) return beside;
  if (const char* path = std::getenv("PATH")) {
    std::string dirs = path;
    for (size_t start = 0; start <= dirs.size();) {
      const size_t end = dirs.find(':', start);
      const std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!dir.empty() && executable(dir + "/" + b.program)) return dir + "/" + b.program;
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  return "";
}

void usage(FILE* to) {
  std::fprintf(to,
               "usage: int8dit bench [BENCHMARK] [options]   (BENCHMARK defaults to gemm)\n\n"
               "Runs a benchmark program with the options given; `int8dit bench BENCHMARK --help` lists them.\n"
               "Each measures in one process on the current GPU and writes its tables and JSON where --out says.\n\n"
               "benchmarks:\n");
  for (const Benchmark& b : kBenchmarks) {
    const std::string at = locate(b);
    std::fprintf(to, "  %-6s %s\n         %s\n", b.name, b.summary,
                 at.empty() ? "(not found: build with -DINT8DIT_BUILD_BENCH=ON)" : at.c_str());
  }
  std::fprintf(to, "\nFrom a fresh clone, `bash scripts/bench.sh` builds and runs the GEMM benchmark in one step.\n"
                   "The PyTorch-level benchmarks are Python modules (docs/python.md): `python3 -m int8dit.bench.e2e`\n"
                   "(diffusers transformers end to end), `python3 -m int8dit.bench.qk_norm_across_heads` (the q/k norm\n"
                   "across heads + rotation against PyTorch's norm) and `python3 -m int8dit.bench.attention_fp8` (cuDNN's FP8\n"
                   "attention against bf16 SDPA, time and error; docs/attention.md).\n");
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    usage(stdout);
    return 0;
  }
  const bool named = !args.empty() && args[0].rfind("-", 0) != 0;
  const std::string name = named ? args[0] : "gemm";
  const Benchmark* bench = nullptr;
  for (const Benchmark& b : kBenchmarks)
    if (name == b.name) bench = &b;
  if (bench == nullptr) {
    std::fprintf(stderr, "int8dit bench: no benchmark \"%s\"\n\n", name.c_str());
    usage(stderr);
    return 2;
  }
  const std::string program = locate(*bench);
  if (program.empty()) {
    std::fprintf(stderr,
                 "int8dit bench: %s is not built: configure with -DINT8DIT_BUILD_BENCH=ON (the default; it needs "
                 "cuBLAS) and build the target %s, or put it on PATH\n",
                 bench->program, bench->program);
    return 1;
  }
  std::vector<std::string> forwarded(args.begin() + (named ? 1 : 0), args.end());
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (std::string& a : forwarded) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  execv(program.c_str(), argv.data());
  std::fprintf(stderr, "int8dit bench: could not run %s: %s\n", program.c_str(), std::strerror(errno));
  return 1;
}
