// Splits rows [0, rows) over std::threads when the work is big enough to pay for them.
// The reference is the tests' oracle: its results must not depend on the thread count, so each
// row is computed by exactly one thread with the same code as the serial path.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace int8dit::ref {

// NOTE: starting a thread costs ~10-50 us; below ~1M multiply-adds per thread, one thread is faster.
constexpr int64_t kWorkPerThread = int64_t{1} << 20;

// Calls fn(row_begin, row_end) over disjoint ranges covering [0, rows). `work_per_row` is the
// number of inner-loop steps per row (cols for quantization, N*K for the GEMM).
template <typename Fn>
void parallel_rows(int64_t rows, int64_t work_per_row, Fn fn) {
  const int64_t hw = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t by_work = std::max<int64_t>(1, rows * std::max<int64_t>(work_per_row, 1) / kWorkPerThread);
  const int64_t threads = std::min({hw, by_work, std::max<int64_t>(rows, 1)});
  if (threads <= 1) {
    fn(int64_t{0}, rows);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  const int64_t chunk = (rows + threads - 1) / threads;
  for (int64_t t = 1; t < threads; ++t) {
    const int64_t begin = std::min(rows, t * chunk), end = std::min(rows, begin + chunk);
    if (begin < end) pool.emplace_back(fn, begin, end);
  }
  fn(int64_t{0}, std::min(rows, chunk));
  for (std::thread& th : pool) th.join();
}

}  // namespace int8dit::ref
