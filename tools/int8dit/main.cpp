// `int8dit`: the command-line program. Dispatches to the subcommands of commands.h.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "int8dit/device.h"

namespace {

struct Command {
  const char* name;
  int (*run)(const std::vector<std::string>& args);
  const char* summary;
};

// One row per subcommand, in the order `int8dit --help` lists them.
constexpr Command kCommands[] = {
    {"info", cmd_info, "the GPU, the kernel family that serves it, and what this build holds"},
    {"check", cmd_check, "verify the install: CPU reference self-check, then the GPU path against it"},
    {"tune", cmd_tune, "time every GEMM configuration per shape and keep the fastest in the tuning cache"},
    {"bench", cmd_bench, "run a benchmark program (GEMM, quantization, tuning) on this GPU"},
};

void usage(FILE* to) {
  std::fprintf(to, "int8dit %s: native INT8 (W8A8) GEMM for diffusion transformers\n\n", int8dit::version());
  std::fprintf(to, "usage: int8dit <command> [--help] [options]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(to, "  %-8s %s\n", c.name, c.summary);
  std::fprintf(to, "\n`int8dit <command> --help` describes a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("int8dit %s\n", int8dit::version());
    return 0;
  }
  for (const Command& c : kCommands)
    if (name == c.name) return c.run(std::vector<std::string>(argv + 2, argv + argc));
  std::fprintf(stderr, "int8dit: unknown command \"%s\"\n\n", name.c_str());
  usage(stderr);
  return 2;
}
