#include "m_sweep.h"

#include <cstddef>
#include <set>

namespace bench_tune {

std::vector<int64_t> sweep_m_values(int64_t max_m) {
  std::set<int64_t> ms;
  for (int64_t p = 1; p <= max_m; p *= 2)
    for (int64_t m : {p - 1, p, p + 1})
      if (m >= 1 && m <= max_m) ms.insert(m);
  for (int64_t m = 256 + 64; m <= max_m; m += 64) ms.insert(m);
  return {ms.begin(), ms.end()};
}

Cliff max_cliff(const std::vector<int64_t>& m, const std::vector<double>& us) {
  Cliff worst;
  // Walk from the largest M down, keeping the fastest time (and its M) seen at any larger M.
  double fastest_larger = 0;
  int64_t fastest_larger_m = 0;
  for (size_t i = m.size(); i-- > 0;) {
    if (fastest_larger_m != 0 && us[i] / fastest_larger > worst.ratio) {
      worst.ratio = us[i] / fastest_larger;
      worst.m_small = m[i];
      worst.m_large = fastest_larger_m;
    }
    if (fastest_larger_m == 0 || us[i] < fastest_larger) {
      fastest_larger = us[i];
      fastest_larger_m = m[i];
    }
  }
  return worst;
}

}  // namespace bench_tune
