// The GELU-epilogue trial kernels (gelu_epilogue.cuh), callable from host code without CUTLASS.
#pragma once

#include <cuda_runtime_api.h>

#include "int8dit/gemm.h"
#include "int8dit/status.h"

namespace gelu_trial {

struct Trial {
  const char* config;  // the library configuration it mirrors (GemmOptions::config)
  int8dit::Status (*run)(const int8dit::GemmParams& p, cudaStream_t stream);
};

// The configurations built with the GELU epilogue (trial_*.cu). N must be a multiple of 8: the
// library's ragged-column kernel, which serves the last N % 8 columns, has no GELU.
int8dit::Status run_gelu_128x256_coop(const int8dit::GemmParams& p, cudaStream_t stream);
int8dit::Status run_gelu_128x128_pingpong(const int8dit::GemmParams& p, cudaStream_t stream);

inline const Trial* trials(int* count) {
  static const Trial kTrials[] = {{"sm90_bf16_128x256x128_2x1_coop", run_gelu_128x256_coop},
                                  {"sm90_bf16_128x128x128_2x1_pingpong", run_gelu_128x128_pingpong}};
  *count = static_cast<int>(sizeof(kTrials) / sizeof(kTrials[0]));
  return kTrials;
}

}  // namespace gelu_trial
