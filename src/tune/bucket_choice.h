// Internal: where the tuner times a bucket's candidates and which one it keeps (used by tuner.cpp;
// pure functions, tested without a GPU in tests/cpp/test_tune_choice.cpp).
#pragma once

#include <cstdint>
#include <vector>

namespace int8dit::tune {

// The M at which the candidates for the M bucket whose upper edge is m_hi are timed: the bucket's
// bottom (lo + 1), its middle and its top (hi), ascending and without repeats.
// NOTE: timing at hi alone assumed that a configuration never gets faster as M grows. Measured on
// the H200, that is false for 2x1 clusters of 128-row tiles: 128x128 ping-pong ran 256-row-aligned
// M = 2304 in 39.6 us but M = 2112 in 47-48 us (three runs, N = K = 3072), so the winner at hi was
// 1.22x slower inside its own bucket, a cliff against the next bucket (bench/results/h200/tune.md).
// Replayed on every configuration's timings of the H200 sweeps (bench/tune/replay_tuner.py), these
// three points bring the tuned cliffs from 1.19 / 1.32 to 1.11 / 1.16 (the sweeps' floor: 1.10 / 1.16).
std::vector<int64_t> bucket_timing_ms(int64_t m_hi);

// The candidate to keep, given us[i][j] = candidate i's time at the j-th timing M (rows of failed
// candidates are ignored): the one whose worst ratio to the fastest candidate at the same M is
// lowest; ties go to the lower mean time. -1 when every candidate failed. *mean_us (optional)
// receives each candidate's mean time over the timing M (0 for failed ones).
int pick_evenly_fast(const std::vector<std::vector<double>>& us, const std::vector<bool>& failed,
                     std::vector<double>* mean_us = nullptr);

}  // namespace int8dit::tune
