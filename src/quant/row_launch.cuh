// Picks the kernel shape for a row length and launches it. Host side of row_kernels.cuh.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_check.h"
#include "quant/row_kernels.cuh"

namespace int8dit::quant {

inline bool aligned_to(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// A row of `ld`-strided elements of `elem_bytes` each can be read/written 8 elements (one vector) at a time.
inline bool vector_rows(const void* p, int64_t ld, size_t elem_bytes) {
  return p == nullptr || (aligned_to(p, kVecElems * elem_bytes) && ld % kVecElems == 0);
}

template <typename T>
bool vectorizable(const RowArgs<T>& a) {
  return a.cols % kVecElems == 0 && vector_rows(a.x, a.ldx, sizeof(T)) && vector_rows(a.q, a.ldq, 1) &&
         vector_rows(a.y, a.ldy, sizeof(T)) && (a.smooth == nullptr || aligned_to(a.smooth, 16));
}

// One warp per row where the row fits kMaxWarpRowVecs vectors a lane: 4 / 8 / 12 vectors cover
// K <= 1024 / 2048 / 3072 (the DiT hidden sizes 1152-3072 take 8 or 12).
template <typename T, typename Op, int kVecs>
Status launch_warp_rows(const RowArgs<T>& a, const Op& op, cudaStream_t stream, const char* name) {
  const int64_t grid = (a.rows + kWarpRowsPerCta - 1) / kWarpRowsPerCta;
  row_quantize_warp<T, Op, kVecs><<<static_cast<unsigned>(grid), kWarpRowsPerCta * 32, 0, stream>>>(a, op);
  return detail::last_launch_status(name);
}

// `op_vector_ok`: the op's own per-channel vectors allow 16-byte loads.
template <typename T, typename Op>
Status launch_row_quantize(const RowArgs<T>& a, const Op& op, bool op_vector_ok, cudaStream_t stream,
                           const char* name) {
  if (a.rows == 0) return Status::Ok();
  const int64_t nvec = a.cols / kVecElems;
  const bool vector_ok = op_vector_ok && vectorizable(a);
  if (vector_ok && nvec <= 32 * kMaxWarpRowVecs) {
    if (nvec <= 32 * 4) return launch_warp_rows<T, Op, 4>(a, op, stream, name);
    if (nvec <= 32 * 8) return launch_warp_rows<T, Op, 8>(a, op, stream, name);
    return launch_warp_rows<T, Op, kMaxWarpRowVecs>(a, op, stream, name);
  }
  if (vector_ok && nvec <= 32 * kMaxRowWarps * kCtaRowVecs) {
    // Fewest warps that hold the row at kCtaRowVecs vectors a lane: the MLP's 12288 / 15360 get 6 / 8.
    const int64_t warps = (nvec + 32 * kCtaRowVecs - 1) / (32 * kCtaRowVecs);
    row_quantize_cta<T, Op, kCtaRowVecs><<<static_cast<unsigned>(a.rows), static_cast<unsigned>(warps * 32), 0, stream>>>(a, op);
    return detail::last_launch_status(name);
  }
  row_quantize_streaming<T, Op><<<static_cast<unsigned>(a.rows), kStreamThreads, 0, stream>>>(a, op);
  return detail::last_launch_status(name);
}

}  // namespace int8dit::quant
