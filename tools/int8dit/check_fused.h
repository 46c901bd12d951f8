// `int8dit check`, step 3: the fused producers (LayerNorm + adaLN modulation with and without the gated
// residual update, RMSNorm, GELU, [a | GELU(h)]) on the GPU against the CPU reference.
#pragma once

#include <cstdint>
#include <vector>

#include "check_device.h"

namespace int8dit::cli {

// On the check's activations x [m, k] (bf16, row stride k, one row holding a NaN), with modulation,
// gate, update and weight drawn from `seed`. Prints one line a comparison. Tolerances are DESIGN.md's
// for the fused ops, which reduce in another order than the reference: scales within 1e-5 relative,
// int8 values within 1 on at most 0.1% of them (at least one); bf16 outputs within 1 ulp or 1e-6;
// the residual stream x_out bit-exact (one FMA rounded once on both sides).
GpuResult check_fused_producers(const std::vector<uint16_t>& x, int64_t m, int64_t k, uint32_t seed);

}  // namespace int8dit::cli
