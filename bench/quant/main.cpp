// int8dit_bench_quant [--out DIR] [--only OP[@MxK[/BATCHES]]]
// Times every activation-quantization kernel on the DiT shapes and the device-to-device copy in the
// same process, prints a table and writes DIR/quant.json (default: the current directory).
// Then `python3 bench/quant/eager_torch.py --json DIR/quant.json --md DIR/quant.md` adds the eager
// PyTorch equivalents (timed in the same session on the same GPU) and writes the markdown table.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_cli.h"
#include "int8dit/device.h"
#include "quant_ops.h"
#include "timing.h"

using bench_cli::json_quote;

int main(int argc, char** argv) {
  std::string out_dir = ".";
  std::string only;  // --only OP or OP@MxK: one kernel (for ncu), the others skipped
  std::string command;
  const char* usage =
      "usage: int8dit_bench_quant [--out DIR] [--only OP[@MxK[/BATCHES]][,...]]   (writes DIR/quant.json)\n"
      "  --only OP[@MxK[/BATCHES]][,...]  time only the cases of these ops (and shapes; /BATCHES for the\n"
      "                   LayerNorm cases with several batch elements, /M for a row per token), e.g. for ncu:\n"
      "                   --only layernorm_modulate_quantize@4096x3072\n"
      "                   --only layernorm_modulate_quantize@8192x1152/8\n"
      "  The summary's lowest fractions cover the cases with M x K >= 4096 x 3072 (issue 4's target).\n";
  switch (bench_cli::parse_value_options("int8dit_bench_quant", argc, argv, {{"--out", &out_dir}, {"--only", &only}}, usage,
                                         &command)) {
    case bench_cli::Parsed::kHelpShown: return 0;
    case bench_cli::Parsed::kBadArgument: return 2;
    case bench_cli::Parsed::kRun: break;
  }

  // --only takes a comma-separated list of ops and cases
  std::vector<std::string> picks;
  for (size_t at = 0; at <= only.size() && !only.empty();) {
    const size_t comma = std::min(only.find(',', at), only.size());
    picks.push_back(only.substr(at, comma - at));
    at = comma + 1;
  }
  auto selected = [&](const bench_quant::OpCase& c) {
    return picks.empty() || std::any_of(picks.begin(), picks.end(), [&](const std::string& pick) {
             return pick == c.op || pick == c.label();
           });
  };
  {
    std::string ops;
    bool any = false;
    for (const auto& c : bench_quant::dit_cases()) {
      any = any || selected(c);
      if (ops.find(c.op + ",") == std::string::npos) ops += c.op + ",";
    }
    if (!any) {
      ops.pop_back();  // the last comma
      std::fprintf(stderr, "int8dit_bench_quant: --only %s matches no case (ops: %s; with @MxK[/BATCHES], one of the table's cases)\n",
                   only.c_str(), ops.c_str());
      return 2;
    }
  }

  int8dit::DeviceInfo dev;
  const int8dit::Status st = int8dit::current_device(&dev);
  if (!st.ok()) {
    std::fprintf(stderr, "int8dit_bench_quant: %s\n", st.to_string().c_str());
    return 1;
  }
  int driver = 0, mem_clock_khz = 0;
  cudaDriverGetVersion(&driver);
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, dev.index);

  // 1 GiB each way: far beyond L2, the same regime as the kernels' rotating buffers.
  const double copy_gbps = bench_quant::copy_bandwidth_gbps(size_t{1} << 30);
  std::printf("%s, driver %d; device-to-device copy: %.0f GB/s (read + write)\n", dev.name.c_str(), driver, copy_gbps);
  // The kernels' row path as the environment chose it (src/quant/row_path.h): unset is the default.
  const auto env_or_default = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v && *v ? v : "default");
  };
  const std::string row_path = "INT8DIT_QUANT_ROWS=" + env_or_default("INT8DIT_QUANT_ROWS") +
                               " INT8DIT_QUANT_RING_STAGES=" + env_or_default("INT8DIT_QUANT_RING_STAGES");
  std::printf("row path: %s\n", row_path.c_str());
  std::printf("%-32s %6s %6s %7s %10s %9s %9s %9s %12s\n", "op", "M", "K", "batches", "time_us", "GB/s", "of_copy",
              "copy_us", "of_same_copy");

  std::ostringstream rows;
  double min_fraction = 1e9, min_same = 1e9;
  std::string min_op, min_same_op;
  bool first = true;
  for (const auto& c : bench_quant::dit_cases()) {
    if (!selected(c)) continue;
    const bench_quant::OpResult r = bench_quant::run_op_case(c);
    const double gbps = r.bytes / (r.us * 1e3);
    const double fraction = gbps / copy_gbps;
    const double of_same = r.same_size_copy_us / r.us;  // the kernel's bandwidth over the same-size copy's
    std::printf("%-32s %6lld %6lld %7lld %10.2f %9.0f %9.3f %9.2f %12.3f%s\n", c.op.c_str(), static_cast<long long>(c.m),
                static_cast<long long>(c.k), static_cast<long long>(c.batches), r.us, gbps, fraction,
                r.same_size_copy_us, of_same, c.counts_for_target() ? "" : "  (not in the summary)");
    std::fflush(stdout);
    std::string name = c.op + " " + std::to_string(c.m) + "x" + std::to_string(c.k);
    if (c.batches > 1) name += " (" + std::to_string(c.batches) + " batch elements)";
    if (c.counts_for_target() && fraction < min_fraction) min_fraction = fraction, min_op = name;
    if (c.counts_for_target() && of_same < min_same) min_same = of_same, min_same_op = name;
    rows << (first ? "" : ",\n") << "    {\"op\": " << json_quote(c.op) << ", \"m\": " << c.m << ", \"k\": " << c.k
         << ", \"batches\": " << c.batches << ", \"counts_for_target\": " << (c.counts_for_target() ? "true" : "false")
         << ", \"dtype\": \"bf16\", \"bytes\": " << static_cast<long long>(r.bytes) << ", \"time_us\": " << r.us
         << ", \"gbps\": " << gbps << ", \"bandwidth_fraction\": " << fraction
         << ", \"same_size_copy_us\": " << r.same_size_copy_us << ", \"fraction_of_same_size_copy\": " << of_same << "}";
    first = false;
  }

  // null where --only timed no case of the target's size
  const auto json_num = [](double v) { return v < 1e9 ? std::to_string(v) : std::string("null"); };
  const std::string path = out_dir + "/quant.json";
  std::ofstream f(path);
  f << "{\n  \"benchmark\": \"int8dit_bench_quant\",\n  \"command\": " << json_quote(command) << ",\n"
    << "  \"date\": " << json_quote(bench_cli::utc_now()) << ",\n"
    << "  \"gpu\": {\"name\": " << json_quote(dev.name) << ", \"cc\": " << dev.cc << ", \"sm_count\": " << dev.sm_count
    << ", \"driver\": " << driver << ", \"sm_clock_khz\": " << dev.clock_khz << ", \"mem_clock_khz\": " << mem_clock_khz
    << ", \"l2_bytes\": " << dev.l2_bytes << "},\n"
    << "  \"bytes_accounting\": \"bytes read + bytes written by one call: bf16 input, int8 output, fp32 scales, "
       "per-channel vectors once (each batch element's adaLN vectors), the bf16 y output where written\",\n"
    << "  \"timing\": \"CUDA events, median of 15 batches of 20 calls after 10 warm-up calls; inputs rotate over >= 256 MB\",\n"
    << "  \"row_path_env\": " << json_quote(row_path) << ",\n"
    << "  \"copy_bandwidth_gbps\": " << copy_gbps << ",\n"
    << "  \"copy_method\": \"cudaMemcpyAsync device to device, 1 GiB, (read + write) / time\",\n"
    << "  \"rows\": [\n" << rows.str() << "\n  ],\n"
    << "  \"same_size_copy_method\": \"cudaMemcpyAsync device to device moving the same bytes as the call (half read, "
       "half written, each half rounded up to whole 64 KiB), buffers rotating over >= 256 MB, timed as the kernels\",\n"
    << "  \"summary\": {\"min_bandwidth_fraction\": " << json_num(min_fraction)
    << ", \"min_bandwidth_case\": " << json_quote(min_op) << ", \"min_fraction_of_same_size_copy\": " << json_num(min_same)
    << ", \"min_same_size_copy_case\": " << json_quote(min_same_op)
    << ", \"target_fraction\": 0.8, \"target_covers\": \"cases with M x K >= 4096 x 3072\"}\n}\n";
  if (!f) {
    std::fprintf(stderr, "int8dit_bench_quant: cannot write %s\n", path.c_str());
    return 1;
  }
  std::printf("min bandwidth fraction %.3f (%s); of a same-size copy %.3f (%s); wrote %s\n", min_fraction, min_op.c_str(),
              min_same, min_same_op.c_str(), path.c_str());
  return 0;
}
