// Picks the kernel shape for a row length and launches it. Host side of row_kernels.cuh.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

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

struct RowLaunchShape {
  int vecs_per_thread = 0;  // 0: the streaming kernel
  int threads_per_row = 0;
  int rows_per_cta = 1;
};

// Fewest vectors per thread that fit the row into kMaxRowThreads threads: short rows get a warp
// (four rows per CTA), DiT hidden sizes (3072..15360) a CTA of 192-256 threads with 2-8 loads in flight.
inline RowLaunchShape row_launch_shape(int64_t cols, bool vector_ok) {
  RowLaunchShape s;
  const int64_t nvec = cols / kVecElems;
  if (!vector_ok || nvec > static_cast<int64_t>(kMaxRowThreads) * kMaxVecsPerThread) {
    s.threads_per_row = kStreamThreads;
    return s;
  }
  int vecs = 1;
  while (nvec > static_cast<int64_t>(kMaxRowThreads) * vecs) vecs *= 2;
  const int64_t threads = (nvec + vecs - 1) / vecs;
  s.vecs_per_thread = vecs;
  s.threads_per_row = static_cast<int>((threads + 31) / 32 * 32);
  s.rows_per_cta = s.threads_per_row == 32 ? 4 : 1;
  return s;
}

// `op_vector_ok`: the op's own per-channel vectors allow 16-byte loads.
template <typename T, typename Op>
Status launch_row_quantize(const RowArgs<T>& a, const Op& op, bool op_vector_ok, cudaStream_t stream,
                           const char* name) {
  if (a.rows == 0) return Status::Ok();
  const RowLaunchShape s = row_launch_shape(a.cols, op_vector_ok && vectorizable(a));
  const dim3 block(s.threads_per_row, s.rows_per_cta);
  const dim3 grid(static_cast<unsigned>((a.rows + s.rows_per_cta - 1) / s.rows_per_cta));
  switch (s.vecs_per_thread) {
    case 0: row_quantize_streaming<T, Op><<<grid, block, 0, stream>>>(a, op); break;
    case 1: row_quantize_registers<T, Op, 1><<<grid, block, 0, stream>>>(a, op); break;
    case 2: row_quantize_registers<T, Op, 2><<<grid, block, 0, stream>>>(a, op); break;
    case 4: row_quantize_registers<T, Op, 4><<<grid, block, 0, stream>>>(a, op); break;
    case 8: row_quantize_registers<T, Op, 8><<<grid, block, 0, stream>>>(a, op); break;
    default: return Status(StatusCode::kInternal, std::string(name) + ": no kernel for this row length");
  }
  return detail::last_launch_status(name);
}

}  // namespace int8dit::quant
