// Which kernel runs the vectorizable activation-quantization rows, from the environment (read once a
// process): the register-row kernel (row_kernels.cuh, every GPU) or the sm_90 bulk-copy ring
// (row_bulk_ring.cuh, where the GPU and the build have sm_90 code). The default takes the ring only
// where it measured faster on the H200 (takes_bulk_ring, below); the other two force one kernel
// everywhere it can run, to measure and to test both.
#pragma once

#include <string>

namespace int8dit::quant {

enum class RowPath { kAuto, kBulkRing, kRegisters };

struct RowPathConfig {
  RowPath path = RowPath::kAuto;
  int ring_stages = 2;  // row slots a CTA of the ring kernel
  std::string error;    // non-empty: an environment variable held a value we do not take
};

// INT8DIT_QUANT_ROWS = auto (default) | bulk | registers; INT8DIT_QUANT_RING_STAGES = 2..4 (default 2).
const RowPathConfig& row_path_config();

// Whether a vectorized row runs on the bulk-copy ring (where the build and the GPU have it). auto: where
// it measured faster on the H200 (bench/results/h200/quant_paths_030edec.txt): 8-vector rows (15360
// columns), whose register kernel cannot be persistent, of ops with row statistics (LayerNorm,
// RMSNorm) or a SmoothQuant divisor. Elsewhere (3072 and 12288 columns) the register kernel was as
// fast or faster (quant_paths_ring_first.txt, quant_layout_*_ring.txt): the ring's shared memory
// leaves fewer CTAs an SM, and those rows are not short of loads in flight.
constexpr bool takes_bulk_ring(RowPath path, int vecs_per_thread, bool row_statistics, bool smooth) {
  if (path == RowPath::kAuto) return vecs_per_thread == 8 && (row_statistics || smooth);
  return path == RowPath::kBulkRing;
}

// The same parse, for tests: null means unset.
RowPathConfig parse_row_path(const char* rows, const char* stages);

}  // namespace int8dit::quant
