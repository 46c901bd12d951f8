// host_us_per_call: the CPU time of one int8dit::gemm_w8a8 call at M = 1 (validation, dispatch and
// the kernel launch), measured as back-to-back calls without a sync inside the loop.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "options.h"

namespace bench {

struct HostOverhead {
  std::string status;  // "ok" or why there is no figure
  int64_t m = 1, n = 3072, k = 3072;
  std::string config;
  double us_per_call = 0;                 // default options (pointer checks on): what a caller pays
  double us_per_call_no_pointer_check = 0;  // GemmOptions::check_pointers = false
  double us_per_select = 0;        // gemm_can_implement: validation and the configuration choice alone
  // The CUDA runtime's floor (launch_floor.cu): an empty kernel with a 64-byte parameter, with the
  // GEMM's 1792-byte one, and with that and 200 KB of dynamic shared memory as the GEMM asks.
  double us_per_empty_launch = 0, us_per_empty_launch_gemm_params = 0, us_per_empty_launch_gemm_params_smem = 0;
  double us_per_empty_driver_launch_gemm_params_smem = 0;  // the last, through cuLaunchKernelEx
  int calls = 0, rounds = 0;
};

HostOverhead measure_host_overhead(const Options& opts, cudaStream_t stream);

}  // namespace bench
