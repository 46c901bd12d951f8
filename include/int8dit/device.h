// int8dit: what GPU we are on and which kernels would serve it.
#pragma once

#include <cstddef>
#include <string>

#include "int8dit/gemm.h"
#include "int8dit/status.h"

namespace int8dit {

struct DeviceInfo {
  int index = -1;
  std::string name;
  int cc = 0;               // compute capability, major*10 + minor
  int sm_count = 0;
  size_t memory_bytes = 0;
  size_t l2_bytes = 0;
  int clock_khz = 0;
  KernelFamily family = KernelFamily::kNone;
  bool family_built = false;  // this library was compiled with that family's kernels
};

// Info on the current CUDA device. A machine without a usable CUDA GPU gives kNotSupported with a
// message saying so (and why: no driver, no device).
Status current_device(DeviceInfo* out);

// The CUDA architectures this library was compiled for, e.g. "80;86;89;90a".
const char* built_architectures();
const char* version();

}  // namespace int8dit
