// `int8dit info`: which GPU this is, which kernel family serves it, and what this build holds.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"

namespace {

const char* kHelp = R"(usage: int8dit info

Prints the library version, the CUDA architectures it was built for, and for the current CUDA GPU
(CUDA_VISIBLE_DEVICES picks it): name, compute capability, SM count, memory, L2, the kernel family
that serves it, whether that family was built, and the GEMM configurations available. Without a
CUDA GPU it says so plainly and exits 0 (the CPU reference still works: `int8dit check`).
)";

bool arch_list_has(const std::string& csv, const std::vector<std::string>& any) {
  std::stringstream ss(csv);
  std::string a;
  while (std::getline(ss, a, ','))
    for (const std::string& want : any)
      if (a == want) return true;
  return false;
}

void print_configs(const char* label, const std::string& names) {
  if (names.empty()) {
    std::printf("  %-14s none\n", label);
    return;
  }
  std::stringstream ss(names);
  std::string name;
  int count = 0;
  std::string lines;
  while (std::getline(ss, name, ',')) lines += "    " + name + "\n", ++count;
  std::printf("  %-14s %d\n%s", label, count, lines.c_str());
}

}  // namespace

int cmd_info(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    std::fprintf(stderr, "int8dit info: unknown option \"%s\" (see int8dit info --help)\n", a.c_str());
    return 2;
  }
  using namespace int8dit;
  const std::string archs = built_architectures();
  std::printf("int8dit %s\n", version());
  std::printf("built for      %s (sm90 wgmma family: %s; sm80 mma.sync family: %s)\n", archs.c_str(),
              arch_list_has(archs, {"90a"}) ? "built" : "not built",
              arch_list_has(archs, {"80", "86", "87", "89", "90", "90a"}) ? "built" : "not built");

  DeviceInfo dev;
  const Status st = current_device(&dev);
  if (!st.ok()) {
    std::printf("GPU            none: %s\n", st.message().c_str());
    std::printf(
        "               the GPU entry points will return \"not supported\"; the CPU reference "
        "(int8dit::ref) still works\n");
    return 0;
  }
  std::printf("GPU %-10d %s\n", dev.index, dev.name.c_str());
  std::printf("  compute      %d.%d (sm_%d), %d SMs, %.0f MHz\n", dev.cc / 10, dev.cc % 10, dev.cc, dev.sm_count,
              dev.clock_khz / 1000.0);
  std::printf("  memory       %.1f GiB, L2 %.1f MiB\n", dev.memory_bytes / double(1 << 30),
              dev.l2_bytes / double(1 << 20));
  std::printf("  family       %s: %s\n", to_string(dev.family),
              dev.family == KernelFamily::kNone ? "not supported"
              : dev.family_built                ? "built"
                                                : "NOT built into this library (add the arch to INT8DIT_CUDA_ARCHS)");
  const char* forced = std::getenv("INT8DIT_FORCE_SM80");
  if (forced && *forced && std::string(forced) != "0")
    std::printf("  INT8DIT_FORCE_SM80=%s: the GEMM runs the sm80 mma.sync family here\n", forced);
  print_configs("configurations", gemm_config_names());
  if (dev.family == KernelFamily::kSm90Wgmma) {
    GemmOptions sm80;
    sm80.force_sm80 = true;
    print_configs("sm80 (forced)", gemm_config_names(&sm80));
  }
  return 0;
}
