// The M values of the cliff sweep (issue 5): every power of two up to max_m and its neighbours +-1,
// and every multiple of 64 above 256; and the largest cliff among the measured times.
#pragma once

#include <cstdint>
#include <vector>

namespace bench_tune {

std::vector<int64_t> sweep_m_values(int64_t max_m);

struct Cliff {
  double ratio = 0;  // max over M1 < M2 of t(M1) / t(M2); <= 1 means time never drops as M grows
  int64_t m_small = 0, m_large = 0;
};

// `m` ascending, `us[i]` the time at m[i].
Cliff max_cliff(const std::vector<int64_t>& m, const std::vector<double>& us);

}  // namespace bench_tune
