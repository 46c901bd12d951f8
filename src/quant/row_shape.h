// How the pipelined quantization kernel lays a row over a CTA: pure host arithmetic, tested on the CPU
// (tests/cpp/test_quant_row_shape.cpp).
#pragma once

#include <cstdint>

namespace int8dit::quant {

// Eight 16-bit elements travel as one 16-byte vector.
constexpr int kVecElems = 8;
// The pipelined kernel holds a row in at most 256 threads x 8 vectors x 8 elements.
constexpr int kMaxRowThreads = 256;
constexpr int kMaxVecsPerThread = 8;
constexpr int kStreamThreads = 256;
// Vectors a thread holds when the row allows: every row costs each thread a fixed ~150 instructions
// (three CTA reductions, the row's scale, addressing, the pipeline), which 4 vectors (32 elements)
// spread to ~5 an element where 1-2 vectors left 10-20. (ncu, H200, 2026-12-03: the LayerNorm kernel
// with 2 vectors a thread issued 46 instructions an element and was issue-bound at 0.33 of the
// copy bandwidth.)
constexpr int kPreferredVecsPerThread = 4;

// Vector slots [0, full_vector_slots(vecs)) of every thread hold a vector of the row for every row length
// that row_launch_shape() gives `vecs` vectors a thread (a CPU test walks them all), so the kernel tests
// for presence only in the remaining slots: the tests and their branches cost ~2 instructions an element.
constexpr int full_vector_slots(int vecs) { return vecs == 8 ? 6 : vecs - 1; }

struct RowLaunchShape {
  int vecs_per_thread = 0;  // 0: the streaming kernel
  int threads_per_row = 0;  // = threads per CTA, a multiple of 32
};

// The share of a CTA's vector slots that hold a vector of the row.
inline double row_shape_use(int64_t nvec, int vecs, int threads) {
  return static_cast<double>(nvec) / (static_cast<double>(vecs) * threads);
}

// The most vectors a thread (up to kPreferredVecsPerThread, more only where 256 threads cannot hold the
// row otherwise) that still fill at least 3/4 of the CTA's slots: a 1152-wide row (144 vectors) gets
// 96 threads x 2 vectors rather than 64 x 4 with 112 of 256 slots empty.
inline RowLaunchShape row_launch_shape(int64_t cols, bool vector_ok) {
  RowLaunchShape s;
  const int64_t nvec = cols / kVecElems;
  if (!vector_ok || nvec > static_cast<int64_t>(kMaxRowThreads) * kMaxVecsPerThread) {
    s.threads_per_row = kStreamThreads;
    return s;
  }
  int fewest = 1;  // the fewest vectors a thread that fit the row into kMaxRowThreads threads
  while (nvec > static_cast<int64_t>(kMaxRowThreads) * fewest) fewest *= 2;
  const auto threads_for = [&](int vecs) { return static_cast<int>((nvec + vecs - 1) / vecs + 31) / 32 * 32; };
  int best = fewest;
  double best_use = row_shape_use(nvec, fewest, threads_for(fewest));
  for (int vecs = fewest > kPreferredVecsPerThread ? fewest : kPreferredVecsPerThread; vecs >= fewest; vecs /= 2) {
    const double use = row_shape_use(nvec, vecs, threads_for(vecs));
    if (use >= 0.75) {
      best = vecs;
      break;
    }
    if (use > best_use) best = vecs, best_use = use;
  }
  s.vecs_per_thread = best;
  s.threads_per_row = threads_for(best);
  return s;
}

}  // namespace int8dit::quant
