#include "gpu_info.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <array>
#include <cstdio>
#include <sstream>
#include <vector>

#include "check.h"

namespace bench {
namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  const size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// One line of nvidia-smi output for this GPU ("" if nvidia-smi is missing or fails).
std::string nvidia_smi_query(const std::string& bus_id, const std::string& fields) {
  const std::string cmd = "nvidia-smi --query-gpu=" + fields + " --format=csv,noheader,nounits -i " + bus_id +
                          " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return "";
  std::array<char, 512> buf{};
  std::string out;
  while (fgets(buf.data(), int(buf.size()), pipe)) out += buf.data();
  return pclose(pipe) == 0 ? trim(out) : "";
}

}  // namespace

double int8_dense_peak_tops(const std::string& name, std::string* source) {
  // NVIDIA datasheets list INT8 tensor TOPS "with sparsity"; the dense peak is half of that.
  // Order matters: the first entry whose key occurs in the name wins (PCIe/NVL before the SXM part).
  struct Entry {
    const char* key;
    double tops;
    const char* source;
  };
  static const Entry table[] = {
      {"H100 PCIe", 1513, "H100 PCIe datasheet: 3026 INT8 TOPS sparse"},
      {"H100 NVL", 1670.5, "H100 NVL datasheet: 3341 INT8 TOPS sparse"},
      {"H100", 1979, "H100 SXM5 datasheet: 3958 INT8 TOPS sparse"},
      {"H800 PCIe", 1513, "H800 PCIe datasheet: 3026 INT8 TOPS sparse"},
      {"H800", 1979, "H800 SXM5 datasheet: 3958 INT8 TOPS sparse"},
      {"H200 NVL", 1670.5, "H200 NVL datasheet: 3341 INT8 TOPS sparse"},
      {"H200", 1979, "H200 SXM datasheet: 3958 INT8 TOPS sparse"},
      {"A100", 624, "A100 datasheet: 1248 INT8 TOPS sparse"},
      {"L40S", 733, "L40S datasheet: 1466 INT8 TOPS sparse"},
      {"RTX 4090", 660.6, "Ada whitepaper (RTX 4090): 1321.2 INT8 TOPS sparse"},
  };
  for (const Entry& e : table)
    if (name.find(e.key) != std::string::npos) {
      if (source) *source = e.source;
      return e.tops;
    }
  if (source) *source = "unknown GPU: not in the benchmark's peak table (bench/gemm/gpu_info.cpp)";
  return 0;
}

GpuInfo query_gpu(int device) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0)
    throw BenchError(std::string("no usable CUDA GPU: ") +
                     (err != cudaSuccess ? cudaGetErrorString(err) : "cudaGetDeviceCount found none") +
                     ". This benchmark needs an NVIDIA GPU (sm_80 or newer) and its driver.");
  if (device >= count)
    throw BenchError("--device " + std::to_string(device) + " does not exist: this machine has " +
                     std::to_string(count) + " CUDA device(s)");
  BENCH_CUDA(cudaSetDevice(device));
  GpuInfo g;
  g.device = device;
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, device));
  g.name = prop.name;
  g.cc = prop.major * 10 + prop.minor;
  g.sm_count = prop.multiProcessorCount;
  g.l2_bytes = size_t(prop.l2CacheSize);
  g.memory_bytes = prop.totalGlobalMem;
  int khz = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device));
  g.max_sm_clock_mhz = khz / 1000;
  std::array<char, 32> bus{};
  BENCH_CUDA(cudaDeviceGetPCIBusId(bus.data(), int(bus.size()), device));
  g.pci_bus_id = bus.data();
  BENCH_CUDA(cudaDriverGetVersion(&g.cuda_driver_version));
  BENCH_CUDA(cudaRuntimeGetVersion(&g.cuda_runtime_version));
  g.cublaslt_version = int(cublasLtGetVersion());

  std::stringstream smi(nvidia_smi_query(g.pci_bus_id, "driver_version,clocks.sm,clocks.max.sm,power.limit"));
  std::vector<std::string> f;
  for (std::string item; std::getline(smi, item, ',');) f.push_back(trim(item));
  if (f.size() == 4) {
    g.driver_version = f[0];
    g.smi_sm_clock_mhz = f[1];
    g.smi_max_sm_clock_mhz = f[2];
    g.smi_power_limit_w = f[3];
  }
  g.int8_dense_peak_tops = int8_dense_peak_tops(g.name, &g.peak_source);
  return g;
}

}  // namespace bench
