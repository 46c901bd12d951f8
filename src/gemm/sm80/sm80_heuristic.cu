// Which mma.sync configuration serves a problem when none is forced: an M-bucket table measured on the
// H100 only (no Ampere/Ada GPU is lent); the tuner and GemmOptions::config override it.
#include <cstring>

#include "gemm/kernel_registry.h"

namespace int8dit::detail {
namespace {

const GemmKernel* by_name(const char* name) {
  for (const GemmKernel& k : sm80_kernels())
    if (std::strcmp(k.name, name) == 0) return &k;
  return nullptr;
}

// bf16 output, the common case. Measured with the family forced on the H100 (bench/results/h100/
// gemm_sm80.json, Flux-dev shapes): 128x128x64 with 4 stages was fastest or within 1% on every shape
// from M = 512 up, and beat 64x128 even where it makes fewer CTAs than SMs (512x3072x3072: 382 vs
// 352 TOPS). The 128x256 and 256x128 tiles stay in the table for the tuner and for Ampere/Ada, where
// they are unmeasured.
const char* bf16_config(const GemmParams& p) {
  // M <= 64 (few tokens): a 64-row tile wastes no half-empty rows.
  if (p.m <= 64) return "sm80_bf16_64x128x64_w2x2_s4";
  return "sm80_bf16_128x128x64_w2x2_s4";
}

}  // namespace

const GemmKernel* sm80_heuristic(const GemmParams& p, int /*sm_count: no bucket depends on it yet*/) {
  if (p.d_type == DType::kBF16) {
    if (const GemmKernel* k = by_name(bf16_config(p)); k && k->can_implement(p).ok()) return k;
  }
  // fp16, fp32 and int32 have one configuration each; bf16 falls back to any that fits.
  for (const GemmKernel& k : sm80_kernels())
    if (k.d_type == p.d_type && k.can_implement(p).ok()) return &k;
  return nullptr;
}

}  // namespace int8dit::detail
