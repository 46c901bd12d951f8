// An independent check of the baselines: a few dozen output elements recomputed on the host from
// the same inputs (rows of X and W copied back), so a wrong layout, scale or epilogue in a cuBLASLt
// call is caught before its speed is reported. The int8 paths must match exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace bench {

enum class ElemType { kInt8, kBf16, kFp8E4M3, kInt32 };

struct SampleSpec {
  ElemType in_type = ElemType::kInt8;  // type of X [M, K] and W [N, K]
  const void* x = nullptr;
  const void* w = nullptr;
  int64_t m = 0, n = 0, k = 0;
  ElemType out_type = ElemType::kBf16;  // kInt32 or kBf16, Y [M, N] row-major
  const void* y = nullptr;
  // The expected output at (row, col) given the exact dot product of X[row] and W[col]; for a
  // kBf16 output with exact = true it is rounded to bf16 before comparing.
  std::function<double(int64_t row, int64_t col, double dot)> expected;
  // Error scale at (row, col) given sum_k |x_k w_k| (the scaled magnitude of the terms).
  std::function<double(int64_t row, int64_t col, double abs_dot)> magnitude;
  bool exact = false;     // bit-exact (int32; bf16 of the same fp32 arithmetic)
  double rel_tol = 1.0 / 64;  // otherwise |got - expected| <= rel_tol * (|expected| + 0.01 * magnitude)
  int samples = 48;
};

struct SampleResult {
  bool ok = true;
  int checked = 0;
  double max_err = 0;    // the largest |got - expected| / bound seen (<= 1 passes); 0 when exact
  std::string message;   // the first failing element, if any
};

// Synchronous: copies rows with cudaMemcpy. Throws BenchError on a CUDA error.
SampleResult check_samples(const SampleSpec& spec);

}  // namespace bench
