// What GPU the benchmark ran on: name, driver, clocks, and the 8-bit dense tensor-core peak that
// the "fraction of peak" column divides by.
#pragma once

#include <cstddef>
#include <string>

namespace bench {

struct GpuInfo {
  int device = 0;
  std::string name;
  std::string pci_bus_id;
  int cc = 0;  // major * 10 + minor
  int sm_count = 0;
  size_t l2_bytes = 0;
  size_t memory_bytes = 0;
  int max_sm_clock_mhz = 0;      // cudaDevAttrClockRate (the boost clock the driver reports)
  int cuda_driver_version = 0;   // cudaDriverGetVersion, e.g. 13000
  int cuda_runtime_version = 0;  // cudaRuntimeGetVersion
  int cublaslt_version = 0;      // cublasLtGetVersion
  // From nvidia-smi (empty where it is not installed):
  std::string driver_version, smi_sm_clock_mhz, smi_max_sm_clock_mhz, smi_power_limit_w;
  // INT8 dense tensor-core peak in TOPS from the datasheet table (0: GPU not in the table).
  double int8_dense_peak_tops = 0;
  std::string peak_source;
};

// Fills GpuInfo for `device` (also makes it current). Throws BenchError without a usable GPU.
GpuInfo query_gpu(int device);

// The datasheet INT8 dense peak for a GPU name (0 if unknown) and which entry matched.
double int8_dense_peak_tops(const std::string& name, std::string* source);

}  // namespace bench
