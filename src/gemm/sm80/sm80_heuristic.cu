// Which mma.sync configuration serves a problem when none is forced. A first cut from tile counts,
// not yet tuned on an Ampere/Ada GPU (there is none here); the tuner and GemmOptions::config override it.
#include <cstdint>
#include <cstring>

#include "gemm/kernel_registry.h"

namespace int8dit::detail {
namespace {

const GemmKernel* by_name(const char* name) {
  for (const GemmKernel& k : sm80_kernels())
    if (std::strcmp(k.name, name) == 0) return &k;
  return nullptr;
}

int64_t tiles(const GemmParams& p, int64_t bm, int64_t bn) { return ((p.m + bm - 1) / bm) * ((p.n + bn - 1) / bn); }

// bf16 output, the common case: pick by M bucket, then by how many CTAs each tile shape yields.
const char* bf16_config(const GemmParams& p, int sm_count) {
  // M <= 64 (small batches, few tokens): a 64-row tile wastes no half-empty rows and doubles the CTAs.
  if (p.m <= 64) return "sm80_bf16_64x128x64_w2x2_s4";
  // Big problems with at least two waves of 128x256 CTAs (one per SM): the most reuse per loaded byte.
  if (p.n >= 256 && tiles(p, 128, 256) >= 2 * sm_count) return "sm80_bf16_128x256x64_w2x4_s3";
  // Tall and narrow (N <= 1024, e.g. a DiT's modulation or a small head): 256-row tiles.
  if (p.n <= 1024 && tiles(p, 256, 128) >= 2 * sm_count) return "sm80_bf16_256x128x64_w4x2_s3";
  // Fewer 128x128 CTAs than SMs: halve the tile height to fill the GPU.
  if (tiles(p, 128, 128) < sm_count) return "sm80_bf16_64x128x64_w2x2_s4";
  return "sm80_bf16_128x128x64_w2x2_s4";
}

}  // namespace

const GemmKernel* sm80_heuristic(const GemmParams& p, int sm_count) {
  if (p.d_type == DType::kBF16) {
    if (const GemmKernel* k = by_name(bf16_config(p, sm_count)); k && k->can_implement(p).ok()) return k;
  }
  // fp16, fp32 and int32 have one configuration each; bf16 falls back to any that fits.
  for (const GemmKernel& k : sm80_kernels())
    if (k.d_type == p.d_type && k.can_implement(p).ok()) return &k;
  return nullptr;
}

}  // namespace int8dit::detail
