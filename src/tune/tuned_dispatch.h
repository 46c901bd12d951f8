// Internal: the tuning cache as dispatch sees it (src/gemm/dispatch.cpp).
#pragma once

#include <vector>

#include "gemm/kernel_registry.h"

namespace int8dit::detail {

// The configuration the tuning cache holds for this validated, non-empty problem of `family` (tuning
// the key first in TuneMode::kTuneOnFirstUse), or nullptr, meaning "use the heuristic": the mode is
// kHeuristic, the key is not tuned, or the tuned configuration cannot run this particular problem.
const GemmKernel* tuned_kernel(const GemmParams& p, KernelFamily family, const std::vector<GemmKernel>& table);

}  // namespace int8dit::detail
