// `int8dit check`, step 4: the block ops beside the quantization, the gated residual update
// (gated_add) and attention's q/k RMSNorm + rotary embedding (qk_norm_rope), on the GPU against the
// CPU reference, bit for bit: both fix their rounding steps (residual.h, attention.h).
#pragma once

#include <cstdint>
#include <vector>

#include "check_device.h"

namespace int8dit::cli {

// On the check's activations x [m, k] (bf16, row stride k, one row holding a NaN): gated_add with an
// update and a gate per batch element drawn from `seed`; qk_norm_rope with x read as [1, m, heads,
// head_dim] (head_dim the largest power of two up to 128 dividing k), a weight and a cos/sin table of
// m positions. Prints one line an op.
GpuResult check_block_ops(const std::vector<uint16_t>& x, int64_t m, int64_t k, uint32_t seed);

}  // namespace int8dit::cli
