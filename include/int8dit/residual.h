// int8dit: the gated residual update of a DiT block, out = x + gate_b * update, in one pass.
//
// DiT-style blocks end with h = h + gate_mlp * MLP(...), the gate one row per batch element broadcast
// over its tokens. PyTorch runs that (torch.addcmul) through its broadcasting elementwise kernel,
// which does not vectorize: 32.7 us a DiT-XL/2 block for 57 MB on the H200, 1.7 TB/s
// (bench/results/h200/e2e_800f999.md). This kernel reads 16-byte vectors where the rows allow.
// Where the update comes right before a fused norm, LayerNormModulateQuantizeParams::update does it
// inside the norm's kernel instead (quantize.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "int8dit/status.h"
#include "int8dit/types.h"

namespace int8dit {

// out[r][k] = x[r][k] + gate[r / tokens_per_batch][k] * update[r][k]: one fp32 fused multiply-add,
// rounded once to `type` (the fused norm's update computes the same bits). gate null means 1; so does
// update null, which makes out = x + gate, rounded once: with the gate in fp32 (gate_fp32), what
// PyTorch's (table + x.float()).to(type) gives for an fp32 table broadcast over x's rows (a DiT's
// per-token modulation: its block table plus each token's time embedding), without the fp32 copy and
// with 16-byte vectors where PyTorch's mixed-dtype broadcast runs element by element (2.5 ms a Wan
// 2.2 TI2V block at 720p on the H100).
// Any row strides (each >= cols); the GPU kernel reads and writes 16 bytes at a time where cols % 8
// == 0 and every pointer and row stride is 16-byte aligned, element by element elsewhere. out may be
// x or update itself (the same pointer and stride: in place), never a partial overlap.
struct GatedAddParams {
  int64_t rows = 0;             // M = batches * tokens_per_batch
  int64_t cols = 0;             // K
  DType type = DType::kBF16;    // kBF16 or kFP16: x, update, gate and out
  const void* x = nullptr;      // [rows, cols], row stride ldx
  int64_t ldx = 0;
  const void* update = nullptr;  // [rows, cols], row stride ld_update; null: 1 (out = x + gate)
  int64_t ld_update = 0;
  const void* gate = nullptr;    // optional [rows / tokens_per_batch, cols], row stride ld_gate
  int64_t ld_gate = 0;
  const float* gate_fp32 = nullptr;  // or the gate in fp32 (same layout); at most one of gate and gate_fp32
  int64_t tokens_per_batch = 0;  // rows per batch element (rows a multiple of it); needed with a gate
  void* out = nullptr;           // [rows, cols], row stride ld_out
  int64_t ld_out = 0;
};

// On the GPU, asynchronous on `stream`; every pointer device memory of the current device.
Status gated_add(const GatedAddParams& p, cudaStream_t stream);
// Argument checks (sizes, strides, types, overlap), no CUDA calls; gated_add runs them itself.
Status validate(const GatedAddParams& p);

namespace ref {
// The CPU reference: host pointers, any layout validate() accepts.
Status gated_add(const GatedAddParams& p);
}  // namespace ref

}  // namespace int8dit
