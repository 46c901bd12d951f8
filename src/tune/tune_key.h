// Internal: what identifies a tuned GEMM configuration. The fingerprint says which machine and
// build a cache file belongs to; a TuneKey says which problems an entry serves.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "int8dit/types.h"

namespace int8dit::tune {

// A cache is only valid for one GPU model, SM count (a MIG slice or a cut-down part times
// differently), CUDA runtime and int8dit version (kernels and heuristics change between versions).
struct Fingerprint {
  std::string gpu;
  int sm_count = 0;
  int cuda_runtime = 0;  // cudaRuntimeGetVersion, e.g. 13000
  std::string library;   // int8dit::version()

  bool operator==(const Fingerprint& o) const {
    return gpu == o.gpu && sm_count == o.sm_count && cuda_runtime == o.cuda_runtime && library == o.library;
  }
  bool operator!=(const Fingerprint& o) const { return !(*this == o); }
  // "NVIDIA H100 80GB HBM3, 132 SMs, CUDA runtime 13000, int8dit 0.1.0"
  std::string describe() const;
};

struct TuneKey {
  std::string family;  // "sm90" or "sm80": the kernel table the configuration comes from
  int64_t m_hi = 0;    // upper edge of the M bucket (the bucket is m_bucket(m_hi))
  int64_t n = 0, k = 0;
  DType d_type = DType::kBF16;
  bool bias = false;

  bool operator<(const TuneKey& o) const {
    return std::tie(family, m_hi, n, k, d_type, bias) < std::tie(o.family, o.m_hi, o.n, o.k, o.d_type, o.bias);
  }
  bool operator==(const TuneKey& o) const { return !(*this < o) && !(o < *this); }
  // "sm90 M<=4608 N=3072 K=12288 bf16 bias"
  std::string describe() const;
};

struct TuneEntry {
  std::string config;      // the fastest configuration's name
  double config_us = 0;    // its mean time over the M the bucket is timed at (bottom, middle, top)
  std::string heuristic;   // the heuristic's pick at M = m_hi, for the record
  double heuristic_us = 0;
};

using TuneTable = std::map<TuneKey, TuneEntry>;

}  // namespace int8dit::tune
