// The entry point every mma.sync configuration provides, declared without CUTLASS so the kernel table
// and the heuristic compile fast. Defined in sm80_gemm_kernel.cuh, instantiated once per file in inst/.
#pragma once

#include <cuda_runtime_api.h>

#include "int8dit/gemm.h"
#include "int8dit/status.h"

namespace int8dit::sm80 {

// Launch the configuration on a validated problem (M > 0) that sm80 kernels can implement.
template <DType Out, int BM, int BN, int BK, int WarpsM, int WarpsN, int Stages>
Status sm80_gemm_run(const GemmParams& p, cudaStream_t stream);

}  // namespace int8dit::sm80
