// int8dit: per-shape autotuning of the W8A8 GEMM, with a persistent cache (docs/tuning.md).
//
// Dispatch picks a kernel configuration for (M, N, K, output type, bias). By default it uses the
// architecture's heuristic. The tuner instead times every configuration that can run a problem and
// keeps the fastest, per key (M bucket, N, K, output type, bias or not, kernel family), in memory and
// in a JSON file that is valid only for one GPU model, SM count, CUDA runtime and int8dit version.
// A tuned configuration never changes results: every configuration computes the same int32
// accumulator bit for bit and the same once-rounded epilogue.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "int8dit/status.h"
#include "int8dit/types.h"

namespace int8dit {

enum class TuneMode {
  kHeuristic,       // default: the heuristic alone; the cache file is never read
  kUseCache,        // use tuned configurations found in the cache; the heuristic for other keys
  kTuneOnFirstUse,  // as kUseCache, and a key missing from the cache is tuned (synchronously) on first use
};
const char* to_string(TuneMode m);

// The process-wide mode. Until set_tune_mode() is called it comes from the environment variable
// INT8DIT_TUNE: unset, "0" or "off" = kHeuristic; "cache" = kUseCache; "1" or "on" = kTuneOnFirstUse.
TuneMode tune_mode();
void set_tune_mode(TuneMode m);

// M buckets: dispatch keys on the bucket (lo, hi] holding M rather than on M, and a bucket is tuned at
// its upper edge hi, so that no M takes longer than a larger M (docs/tuning.md says why).
struct MBucket {
  int64_t lo = 0;  // exclusive
  int64_t hi = 0;  // inclusive; the M at which the bucket is timed
};
MBucket m_bucket(int64_t m);

// The shape a tuning key stands for.
struct TuneProblem {
  int64_t m = 0, n = 0, k = 0;
  DType d_type = DType::kBF16;  // kBF16, kFP16, kFP32 or kInt32
  bool bias = false;            // the epilogue adds a bias (ignored for kInt32)
};

struct TuneOptions {
  int warmup_runs = 5;        // untimed launches per candidate before timing
  int timed_runs = 30;        // timed launches per candidate, spread over 3 rounds that interleave the
                              // candidates; the median of the round medians is kept
  bool retune = false;        // time again even when the cache already holds the key
  bool force_sm80 = false;    // tune the Ampere/Ada family (as GemmOptions::force_sm80)
  bool save = true;           // write the result to the cache file
  // Called after each candidate is timed (done = 1..total), e.g. to draw a progress bar.
  std::function<void(int done, int total)> progress;
};

struct TuneResult {
  MBucket bucket;               // the bucket of TuneProblem::m; candidates were timed at M = lo + 1, its middle and hi
  std::string config;           // the candidate with the lowest worst ratio to the fastest at those M
  double config_us = 0;         // its mean time over the bucket's timing points (lo + 1, middle, hi), us
  std::string heuristic;        // what the heuristic picks at M = bucket.hi
  double heuristic_us = 0;      // its mean time over the same M
  int candidates = 0;           // configurations timed
  bool from_cache = false;      // the key was already tuned (nothing was timed)
};

// Offline tuning: time every candidate configuration for the key of `p` on the current GPU, keep the
// fastest in the in-memory cache and (opts.save) in the cache file. Works in every TuneMode; the
// result is used by dispatch in kUseCache and kTuneOnFirstUse. Blocks the calling thread; uses its
// own stream and buffers.
Status tune_gemm(const TuneProblem& p, TuneResult* out, const TuneOptions* opts = nullptr);

// The cache file for the current GPU: the environment variable INT8DIT_CACHE if set, otherwise
// $XDG_CACHE_HOME/int8dit/ (or ~/.cache/int8dit/) tune-<gpu>-<sms>sm.json.
Status tune_cache_path(std::string* out);

// Forget the in-memory tuned entries (the file is untouched); the next lookup reads the file again.
void tune_cache_reset();

}  // namespace int8dit
