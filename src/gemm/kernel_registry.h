// Internal: the table of GEMM kernels a family contributes, and what dispatch needs to know of each.
// Each architecture family (sm90, sm80) owns a list of GemmKernel entries and a heuristic; a family
// that was not compiled (architecture trimmed from INT8DIT_CUDA_ARCHS) contributes an empty list.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "int8dit/gemm.h"

namespace int8dit::detail {

// How a launch orders itself after the kernel before it in the stream: kFull waits for it to finish
// before any block starts; kProgrammatic (Hopper PDL) lets blocks start early, the kernel itself
// waiting (griddepcontrol.wait) before it touches global memory.
enum class StreamOrder { kFull, kProgrammatic };

struct GemmKernel {
  const char* name;  // unique, says arch, output type, tile, cluster, schedule: "sm90_bf16_128x256x128_2x1_coop"
  KernelFamily family;
  DType d_type;
  // Ok if this kernel can run the (already validated) problem; otherwise why not.
  Status (*can_implement)(const GemmParams& p);
  size_t (*workspace_size)(const GemmParams& p);
  Status (*run)(const GemmParams& p, cudaStream_t stream, StreamOrder order);
};

// The order a call launches in: kProgrammatic unless opts->programmatic_launch is false or the
// environment holds INT8DIT_PDL=0 (opts may be null).
StreamOrder stream_order_for(const GemmOptions* opts);

// Kernels compiled into this library for a family (empty when that family was trimmed).
const std::vector<GemmKernel>& sm90_kernels();
const std::vector<GemmKernel>& sm80_kernels();

// The heuristic pick for a problem: never null when the family's list holds a kernel for d_type
// that can implement the problem. `sm_count` is the device's multiprocessor count.
const GemmKernel* sm90_heuristic(const GemmParams& p, int sm_count);
const GemmKernel* sm80_heuristic(const GemmParams& p, int sm_count);

}  // namespace int8dit::detail
