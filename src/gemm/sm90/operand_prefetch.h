// L2 prefetch, as the Hopper GEMM starts, of what it reads that the kernel before it does not write:
// the weight's first k-blocks and the epilogue's per-channel vectors (scale_b, bias).
//
// Why: a programmatic GEMM's CTAs start while the kernel before it (the activation quantization)
// still runs, then wait (griddepcontrol.wait) before any load, because A and its scales may not be
// written yet. B and the per-channel vectors are the layer's parameters, so their DRAM latency can
// be paid during that wait instead of after it. At small M (300-512 tokens: 7-15 us GEMMs over
// 1-12 k-blocks) that latency is a visible share of the call; and the epilogue's vector loads (CUTLASS's
// row broadcasts load their slice when a tile's epilogue begins, after its mainloop) then hit L2.
//
// How: a prefetch into L2 is a hint with no effect on the values any thread reads, so issuing it
// before griddepcontrol.wait cannot observe a stale value even if the previous kernel did write
// these bytes. The producer warp group of every CTA issues it (the CUTLASS kernels construct the
// epilogue, and with it this node, in every thread as they start; the consumers construct it again
// later, and skip): 128-byte lines (prefetch.global.L2, through the load/store unit), spread evenly
// over every producer thread of the grid, the weight's lines in k order (all rows' first line, then
// all rows' second, ...).
// NOTE: a first version issued one cp.async.bulk.prefetch per weight row from consecutive threads:
// the bulk prefetches go through the SM's TMA unit, ahead of the mainloop's own TMA loads, and a
// dozen CTAs took all of them (700 KB each at 333 x 1536 x 6144): GEMMs 2-20% slower on the H200.
// INT8DIT_GEMM_PREFETCH = 0 (none) | vectors (the per-channel vectors only) | unset (all); read once,
// for A/B measurement.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "int8dit/gemm.h"

namespace int8dit::detail::sm90 {

// What one launch prefetches (part of the kernel's Params; all zero = nothing).
struct OperandPrefetch {
  // The weight B [N, K]: the first `weight_row_bytes` bytes of each of its `weight_rows` rows.
  const int8_t* weight = nullptr;
  int64_t weight_pitch = 0;
  int32_t weight_rows = 0;
  int32_t weight_row_bytes = 0;  // 0 = none
  // Per-channel vectors of `channel_count` floats (scale_b in per-column mode, bias), null = none.
  const float* channel_vectors[2] = {nullptr, nullptr};
  int32_t channel_count = 0;

  // Weight bytes one launch prefetches at most. All CTAs start at k = 0, so the leading k-blocks of
  // every row are what the first wave reads first; 8 MiB covers the whole weight of the DiT text-stream
  // layers (N x K up to 6144 x 1536) and ~5 k-blocks of Flux's 12288-row weights, while staying a
  // sixth of the H200's L2.
  static constexpr int64_t kWeightBudgetBytes = int64_t{8} << 20;

  enum class Mode { kOff, kVectors, kAll };

  static Mode mode_from(const char* v) {
    if (v && std::strcmp(v, "0") == 0) return Mode::kOff;
    if (v && std::strcmp(v, "vectors") == 0) return Mode::kVectors;
    return Mode::kAll;
  }
  static Mode mode() {
    static const Mode m = mode_from(std::getenv("INT8DIT_GEMM_PREFETCH"));
    return m;
  }

  // The plan for a call (host; p is the TMA kernel's part of the problem, already validated).
  static OperandPrefetch plan(const GemmParams& p, Mode m = mode()) {
    OperandPrefetch f;
    if (m == Mode::kOff || p.n <= 0 || p.k <= 0) return f;
    if (m == Mode::kAll) {
      const int64_t per_row = kWeightBudgetBytes / p.n;
      f.weight = p.b;
      f.weight_pitch = p.ldb;
      f.weight_rows = static_cast<int32_t>(p.n);
      f.weight_row_bytes = static_cast<int32_t>(per_row < p.k ? per_row : p.k);
    }
    f.channel_vectors[0] = p.scale_b_mode == ScaleMode::kPerCol ? p.scale_b : nullptr;
    f.channel_vectors[1] = p.bias;
    f.channel_count = static_cast<int32_t>(p.n);
    return f;
  }

#if defined(__CUDACC__)
  __device__ static void prefetch_line(const void* p) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(__cvta_generic_to_global(p)) : "memory");
  }

  __device__ void issue() const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    constexpr int kIssuingThreads = 128;  // the producer warp group (threads 0-127 in both schedules)
    if (threadIdx.x >= kIssuingThreads) return;
    const int64_t cta = blockIdx.x + int64_t{gridDim.x} * (blockIdx.y + int64_t{gridDim.y} * blockIdx.z);
    const int64_t workers = int64_t{gridDim.x} * gridDim.y * gridDim.z * kIssuingThreads;
    const int64_t worker = cta * kIssuingThreads + threadIdx.x;
    // Line j of the weight: row j % rows, bytes from 128 (j / rows) on (< weight_row_bytes <= K).
    const int64_t weight_lines = int64_t{weight_rows} * ((weight_row_bytes + 127) / 128);
    for (int64_t j = worker; j < weight_lines; j += workers)
      prefetch_line(weight + (j % weight_rows) * weight_pitch + (j / weight_rows) * 128);
    const int64_t lines = (int64_t{channel_count} * int64_t{sizeof(float)} + 127) / 128;
    for (const float* vector : channel_vectors) {
      if (vector == nullptr) continue;
      // Line j starts at element 32 j < channel_count: every address lies inside the vector.
      for (int64_t j = worker; j < lines; j += workers) prefetch_line(vector + j * 32);
    }
#endif
  }
#endif
};

}  // namespace int8dit::detail::sm90
