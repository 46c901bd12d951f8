#include "tune/bucket_choice.h"

#include <algorithm>
#include <limits>

#include "int8dit/tune.h"

namespace int8dit::tune {

std::vector<int64_t> bucket_timing_ms(int64_t m_hi) {
  const MBucket b = m_bucket(m_hi);
  std::vector<int64_t> ms = {b.lo + 1, b.lo + (b.hi - b.lo + 1) / 2, b.hi};
  ms.erase(std::unique(ms.begin(), ms.end()), ms.end());
  return ms;
}

int pick_evenly_fast(const std::vector<std::vector<double>>& us, const std::vector<bool>& failed,
                     std::vector<double>* mean_us) {
  const size_t points = us.empty() ? 0 : us.front().size();
  std::vector<double> fastest(points, std::numeric_limits<double>::infinity());
  std::vector<double> means(us.size(), 0.0);
  for (size_t i = 0; i < us.size(); ++i) {
    if (failed[i]) continue;
    for (size_t j = 0; j < points; ++j) {
      fastest[j] = std::min(fastest[j], us[i][j]);
      means[i] += us[i][j] / static_cast<double>(points);
    }
  }
  int best = -1;
  double best_worst = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < us.size(); ++i) {
    if (failed[i]) continue;
    double worst = 0;
    for (size_t j = 0; j < points; ++j) worst = std::max(worst, us[i][j] / fastest[j]);
    if (best < 0 || worst < best_worst || (worst == best_worst && means[i] < means[size_t(best)])) {
      best = static_cast<int>(i);
      best_worst = worst;
    }
  }
  if (mean_us) *mean_us = std::move(means);
  return best;
}

}  // namespace int8dit::tune
