// gated_add (residual.h): out = x + gate_b * update, one fp32 FMA an element, rounded once (update null:
// 1, so out = x + gate; the gate in the activations' type or in fp32).
//
// Memory-bound: three [rows, cols] passes (x and update read, out written) and the gate's rows, which
// stay in L1/L2. Each thread moves kUnroll 16-byte vectors of each input, all loads issued before any
// arithmetic, so that a warp has 2 x kUnroll loads in flight. Rows where 16-byte vectors do not fit
// take the same kernel element by element.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cstdint>

#include "int8dit/residual.h"
#include "quant/gpu_checks.cuh"
#include "quant/row_io.cuh"
#include "quant/row_kernels.cuh"  // release_dependent_launch, wait_for_previous_grid
#include "quant/row_launch.cuh"   // launch_row_kernel

namespace int8dit {
namespace {

using quant::kVecElems;

constexpr int kThreads = 256;
constexpr int kUnroll = 4;

template <typename T>
struct GatedAddArgs {
  const T* x;
  const T* update;        // null: 1
  const T* gate;          // null (and no gate_f32): 1
  const float* gate_f32;  // the gate in fp32 instead
  T* out;
  int64_t ldx, ld_update, ld_gate, ld_out;
  int64_t tokens_per_batch;  // 1 without a gate (unused)
  int64_t units_per_row;     // vectors (kVector) or elements a row
  int64_t units;             // rows * units_per_row
};

// row = i / units_per_row with a 32-bit division where the operands fit (a 64-bit one is a call).
__device__ __forceinline__ int64_t div_units(int64_t i, int64_t d) {
  return (i | d) <= 0xffffffffLL ? static_cast<int64_t>(static_cast<uint32_t>(i) / static_cast<uint32_t>(d)) : i / d;
}

// kVector: a unit is 8 elements (16 bytes); else one element.
template <typename T, bool kVector>
__global__ void __launch_bounds__(kThreads) gated_add_kernel(GatedAddArgs<T> a) {
  quant::release_dependent_launch();
  quant::wait_for_previous_grid();
  constexpr int kElems = kVector ? kVecElems : 1;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * (kThreads * kUnroll) + threadIdx.x;
  int64_t row[kUnroll], col[kUnroll];
  uint4 xv[kUnroll], uv[kUnroll];  // kVector: the raw vectors, unpacked once all loads are issued
  T xs[kUnroll], us[kUnroll];      // else: the elements
#pragma unroll
  for (int j = 0; j < kUnroll; ++j) {
    const int64_t i = first + j * kThreads;
    row[j] = -1;
    if (i >= a.units) continue;
    row[j] = div_units(i, a.units_per_row);
    col[j] = (i - row[j] * a.units_per_row) * kElems;
    if constexpr (kVector) {
      // x and update are read once: evict-first, so that they do not push the gate rows out of L2.
      xv[j] = __ldcs(reinterpret_cast<const uint4*>(a.x + row[j] * a.ldx + col[j]));
      if (a.update) uv[j] = __ldcs(reinterpret_cast<const uint4*>(a.update + row[j] * a.ld_update + col[j]));
    } else {
      xs[j] = a.x[row[j] * a.ldx + col[j]];
      if (a.update) us[j] = a.update[row[j] * a.ld_update + col[j]];
    }
  }
#pragma unroll
  for (int j = 0; j < kUnroll; ++j) {
    if (row[j] < 0) continue;
    float x[kVecElems], u[kVecElems], g[kVecElems];
    if constexpr (kVector) {
      quant::unpack8<T>(xv[j], x);
    } else {
      x[0] = quant::to_float(xs[j]);
    }
    if (!a.update) {
#pragma unroll
      for (int e = 0; e < kElems; ++e) u[e] = 1.0f;
    } else if constexpr (kVector) {
      quant::unpack8<T>(uv[j], u);
    } else {
      u[0] = quant::to_float(us[j]);
    }
    if (a.gate_f32) {
      const float* gate_row = a.gate_f32 + div_units(row[j], a.tokens_per_batch) * a.ld_gate + col[j];
      if constexpr (kVector) {
        const float4 g0 = __ldg(reinterpret_cast<const float4*>(gate_row));
        const float4 g1 = __ldg(reinterpret_cast<const float4*>(gate_row) + 1);
        g[0] = g0.x, g[1] = g0.y, g[2] = g0.z, g[3] = g0.w, g[4] = g1.x, g[5] = g1.y, g[6] = g1.z, g[7] = g1.w;
      } else {
        g[0] = __ldg(gate_row);
      }
    } else if (a.gate) {
      const T* gate_row = a.gate + div_units(row[j], a.tokens_per_batch) * a.ld_gate + col[j];
      if constexpr (kVector) {
        quant::load8_cached(gate_row, g);
      } else {
        g[0] = quant::to_float(__ldg(gate_row));
      }
    } else {
#pragma unroll
      for (int e = 0; e < kElems; ++e) g[e] = 1.0f;
    }
#pragma unroll
    for (int e = 0; e < kElems; ++e) x[e] = fmaf(g[e], u[e], x[e]);
    if constexpr (kVector) {
      quant::store8(a.out + row[j] * a.ld_out + col[j], x);
    } else {
      a.out[row[j] * a.ld_out + col[j]] = quant::from_float<T>(x[0]);
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// 16-byte vectors fit every row of every operand (an fp32 gate's 8 columns are two of them).
bool rows_take_vectors(const GatedAddParams& p) {
  const bool strides = p.cols % kVecElems == 0 && p.ldx % kVecElems == 0 &&
                       (!p.update || p.ld_update % kVecElems == 0) && p.ld_out % kVecElems == 0 &&
                       (!p.gate || p.ld_gate % kVecElems == 0) && (!p.gate_fp32 || p.ld_gate % 4 == 0);
  return strides && aligned16(p.x) && (!p.update || aligned16(p.update)) && aligned16(p.out) &&
         (!p.gate || aligned16(p.gate)) && (!p.gate_fp32 || aligned16(p.gate_fp32));
}

template <typename T, bool kVector>
Status launch(const GatedAddParams& p, cudaStream_t stream) {
  static std::atomic<int> sm90[quant::kMaxDevices];
  GatedAddArgs<T> a{static_cast<const T*>(p.x), static_cast<const T*>(p.update), static_cast<const T*>(p.gate),
                    p.gate_fp32, static_cast<T*>(p.out), p.ldx, p.ld_update, p.ld_gate, p.ld_out,
                    p.gate || p.gate_fp32 ? p.tokens_per_batch : 1, p.cols / (kVector ? kVecElems : 1), 0};
  a.units = p.rows * a.units_per_row;
  const int64_t grid = (a.units + kThreads * kUnroll - 1) / (kThreads * kUnroll);
  if (grid > 2147483647)
    return Status(StatusCode::kInvalidArgument, "gated_add: " + std::to_string(p.rows) + " x " + std::to_string(p.cols) +
                                                    " elements are more than one call takes: split the rows over calls");
  quant::launch_row_kernel(gated_add_kernel<T, kVector>, sm90, false, grid, kThreads, 0, stream, a);
  return detail::last_launch_status("gated_add");
}

template <typename T>
Status launch(const GatedAddParams& p, cudaStream_t stream) {
  return rows_take_vectors(p) ? launch<T, true>(p, stream) : launch<T, false>(p, stream);
}

}  // namespace

Status gated_add(const GatedAddParams& p, cudaStream_t stream) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.rows == 0 || p.cols == 0) return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(quant::check_device_pointers({{p.x, "x (the residual stream)"},
                                                        {p.update, "update"},
                                                        {p.gate, "gate"},
                                                        {p.gate_fp32, "gate_fp32"},
                                                        {p.out, "out"}}));
  return p.type == DType::kBF16 ? launch<__nv_bfloat16>(p, stream) : launch<__half>(p, stream);
}

}  // namespace int8dit
