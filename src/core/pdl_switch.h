// INT8DIT_PDL=0 turns programmatic dependent launch (PDL) off for every kernel int8dit launches with
// it: the Hopper GEMM and the activation-quantization row kernels (read once a process). A switch for
// ruling PDL out when a kernel of another library misbehaves next to ours, and for A/B measurement.
#pragma once

namespace int8dit::detail {

bool env_disables_pdl();

}  // namespace int8dit::detail
