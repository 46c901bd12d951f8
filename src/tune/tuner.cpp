// The tuner: the process-wide mode, offline tuning (tune_gemm) and the dispatch hook (tuned_kernel).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <vector>

#include "core/cuda_check.h"
#include "gemm/kernel_registry.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "int8dit/tune.h"
#include "tune/bucket_choice.h"
#include "tune/candidate_timer.h"
#include "tune/device_cache.h"
#include "tune/stream_hold.h"
#include "tune/timing_buffers.h"
#include "tune/tuned_dispatch.h"

namespace int8dit {
namespace {

using detail::GemmKernel;
using tune::TuneCache;
using tune::TuneEntry;
using tune::TuneKey;

TuneMode mode_from_env() {
  const char* v = std::getenv("INT8DIT_TUNE");
  if (!v || !*v || !std::strcmp(v, "0") || !std::strcmp(v, "off")) return TuneMode::kHeuristic;
  if (!std::strcmp(v, "cache")) return TuneMode::kUseCache;
  if (!std::strcmp(v, "1") || !std::strcmp(v, "on")) return TuneMode::kTuneOnFirstUse;
  tune::warn_to_stderr(std::string("INT8DIT_TUNE=\"") + v +
                       "\" is not one of 0, off, cache, 1, on: using the heuristic alone");
  return TuneMode::kHeuristic;
}

constexpr int kModeUnset = -1;
// Timed launches are enqueued behind a held stream (tune/stream_hold.h); the launch queue holds ~1000.
constexpr int kMaxTimedRuns = 400;
std::atomic<int> g_mode{kModeUnset};

struct FamilyTable {
  const char* short_name;
  const std::vector<GemmKernel>* kernels;
  const GemmKernel* (*heuristic)(const GemmParams&, int sm_count);
};

FamilyTable family_table(KernelFamily f) {
  if (f == KernelFamily::kSm90Wgmma) return {"sm90", &detail::sm90_kernels(), &detail::sm90_heuristic};
  return {"sm80", &detail::sm80_kernels(), &detail::sm80_heuristic};
}

TuneKey key_for(const FamilyTable& fam, int64_t m, int64_t n, int64_t k, DType d_type, bool bias) {
  TuneKey key;
  key.family = fam.short_name;
  key.m_hi = m_bucket(m).hi;
  key.n = n;
  key.k = k;
  key.d_type = d_type;
  key.bias = bias && d_type != DType::kInt32;
  return key;
}

bool env_forces_sm80() {
  const char* v = std::getenv("INT8DIT_FORCE_SM80");
  return v && *v && std::strcmp(v, "0") != 0;
}

Status family_for_tuning(bool force_sm80, KernelFamily* out) {
  int dev = 0, major = 0, minor = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDevice(&dev), "cudaGetDevice"));
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  KernelFamily f = kernel_family_for(major * 10 + minor);
  if (f == KernelFamily::kNone)
    return Status(StatusCode::kNotSupported, "this GPU is sm_" + std::to_string(major * 10 + minor) +
                                                 ": int8dit's int8 tensor-core kernels need sm_80 or newer");
  if (f == KernelFamily::kSm90Wgmma && (force_sm80 || env_forces_sm80())) f = KernelFamily::kSm80MmaSync;
  *out = f;
  return Status::Ok();
}

// Owns a non-blocking stream, so tuning neither waits for nor is ordered after the legacy stream.
class PrivateStream {
 public:
  ~PrivateStream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  Status create() {
    return detail::cuda_status(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// Time every candidate of `fam` for the key's bucket at the M of bucket_timing_ms and keep the one
// pick_evenly_fast chooses (bucket_choice.h says why). The caller holds tuning_mutex().
Status time_candidates(const FamilyTable& fam, const TuneKey& key, const TuneOptions& opts, TuneEntry* best,
                       int* timed) {
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  const std::vector<int64_t> ms = tune::bucket_timing_ms(key.m_hi);

  // Sizes decide which configurations can run the key and how much workspace they need; the
  // pointers are filled in once the timing buffers exist.
  GemmParams shape;
  shape.n = key.n, shape.k = key.k, shape.d_type = key.d_type;
  const int64_t elems16 = 16 / static_cast<int64_t>(size_of(key.d_type));
  shape.lda = key.k, shape.ldb = key.k, shape.ldd = (key.n + elems16 - 1) / elems16 * elems16;
  std::vector<const GemmKernel*> valid;
  size_t workspace = 0;
  for (const GemmKernel& k : *fam.kernels) {
    if (k.d_type != key.d_type) continue;
    bool runs_all = true;
    for (int64_t m : ms) {
      shape.m = m;
      runs_all = runs_all && k.can_implement(shape).ok();
      if (runs_all) workspace = std::max(workspace, k.workspace_size(shape));
    }
    if (runs_all) valid.push_back(&k);
  }
  if (valid.empty())
    return Status(StatusCode::kNotImplemented, "no " + std::string(fam.short_name) + " configuration can run " +
                                                   key.describe());
  PrivateStream stream;
  INT8DIT_RETURN_IF_ERROR(stream.create());
  tune::TimingBuffers buffers;
  INT8DIT_RETURN_IF_ERROR(buffers.allocate(key.m_hi, key.n, key.k, key.d_type, key.bias, workspace, stream.get()));
  const GemmKernel* heuristic = fam.heuristic(buffers.params(0), sms);

  // Candidates are timed in kRounds rounds that visit each (candidate, M) in turn, timed_runs / kRounds
  // launches per visit; a figure is the median of its round medians. NOTE: under a sustained load the
  // GPU sits at its power cap and its clock moves (an H200: 1.2 to 1.98 GHz); timed one after the
  // other, the same kernel read up to 1.4x apart and the tuner could keep a slower candidate
  // (bench/results/h200/tune_all_configs.json: M = 513, N = 12288, 54.8 us picked over 41.4 us).
  constexpr int kRounds = 3;
  tune::TimingPlan plan{opts.warmup_runs, std::max(1, (opts.timed_runs + kRounds - 1) / kRounds)};
  tune::StreamHold hold;
  INT8DIT_RETURN_IF_ERROR(hold.create());
  // One untimed pass over every candidate: loads each kernel's module (CUDA lazy loading) and brings
  // the clocks up before the first timing.
  for (const GemmKernel* k : valid) k->run(buffers.params(0), stream.get(), detail::StreamOrder::kFull);
  cudaStreamSynchronize(stream.get());
  cudaGetLastError();
  // ... but one pass of short kernels is not load enough to raise the clock (candidate_timer.h).
  if (!tune::warm_up_clocks(heuristic ? *heuristic : *valid.front(), buffers, stream.get(), 20.0).ok())
    cudaGetLastError();  // a failing kernel shows up again, and is skipped, when it is timed

  *timed = 0;
  int done = 0;
  const int total = kRounds * static_cast<int>(valid.size());
  // round_us[i][j]: candidate i's round medians at ms[j].
  std::vector<std::vector<std::vector<double>>> round_us(valid.size(), std::vector<std::vector<double>>(ms.size()));
  std::vector<bool> failed(valid.size(), false);
  for (int round = 0; round < kRounds; ++round) {
    for (size_t i = 0; i < valid.size(); ++i) {
      ++done;
      for (size_t j = 0; j < ms.size() && !failed[i]; ++j) {
        double us = 0;
        if (tune::time_candidate(*valid[i], buffers, ms[j], plan, hold, stream.get(), &us).ok()) {
          round_us[i][j].push_back(us);
        } else {
          cudaGetLastError();  // a configuration that fails to launch is skipped, not fatal
          failed[i] = true;
        }
      }
      if (opts.progress) opts.progress(done, total);
    }
  }
  // us[i][j]: the median of candidate i's round medians at ms[j].
  std::vector<std::vector<double>> us(valid.size(), std::vector<double>(ms.size(), 0.0));
  for (size_t i = 0; i < valid.size(); ++i) {
    if (failed[i]) continue;
    ++*timed;
    for (size_t j = 0; j < ms.size(); ++j) {
      std::vector<double>& r = round_us[i][j];
      std::sort(r.begin(), r.end());
      us[i][j] = r[r.size() / 2];
    }
  }
  std::vector<double> mean_us;
  const int pick = tune::pick_evenly_fast(us, failed, &mean_us);
  if (pick < 0) return Status(StatusCode::kInternal, "every configuration failed to run " + key.describe());
  best->config = valid[size_t(pick)]->name;
  best->config_us = mean_us[size_t(pick)];
  best->heuristic = heuristic ? heuristic->name : "";
  best->heuristic_us = 0;
  for (size_t i = 0; i < valid.size(); ++i)
    if (valid[i] == heuristic && !failed[i]) best->heuristic_us = mean_us[i];
  return Status::Ok();
}

std::mutex& tuning_mutex() {
  static auto* m = new std::mutex;
  return *m;
}

Status tune_key(const FamilyTable& fam, const TuneKey& key, const TuneOptions& opts, TuneCache* cache,
                TuneResult* out) {
  out->bucket = m_bucket(key.m_hi);
  TuneEntry entry;
  if (!opts.retune && cache->lookup(key, &entry)) {
    out->from_cache = true;
  } else {
    std::lock_guard<std::mutex> lock(tuning_mutex());
    if (!opts.retune && cache->lookup(key, &entry)) {  // another thread tuned it while we waited
      out->from_cache = true;
    } else {
      INT8DIT_RETURN_IF_ERROR(time_candidates(fam, key, opts, &entry, &out->candidates));
      INT8DIT_RETURN_IF_ERROR(cache->insert(key, entry, opts.save));
    }
  }
  out->config = entry.config;
  out->config_us = entry.config_us;
  out->heuristic = entry.heuristic;
  out->heuristic_us = entry.heuristic_us;
  return Status::Ok();
}

}  // namespace

const char* to_string(TuneMode m) {
  switch (m) {
    case TuneMode::kHeuristic: return "heuristic";
    case TuneMode::kUseCache: return "cache";
    case TuneMode::kTuneOnFirstUse: return "tune-on-first-use";
  }
  return "unknown";
}

TuneMode tune_mode() {
  int m = g_mode.load(std::memory_order_acquire);
  if (m == kModeUnset) {
    int from_env = static_cast<int>(mode_from_env());
    g_mode.compare_exchange_strong(m, from_env, std::memory_order_acq_rel);
    m = g_mode.load(std::memory_order_acquire);
  }
  return static_cast<TuneMode>(m);
}

void set_tune_mode(TuneMode m) { g_mode.store(static_cast<int>(m), std::memory_order_release); }

Status tune_gemm(const TuneProblem& p, TuneResult* out, const TuneOptions* opts) {
  if (!out) return Status(StatusCode::kInvalidArgument, "tune_gemm: `out` is null");
  const TuneOptions options = opts ? *opts : TuneOptions{};
  if (options.timed_runs < 1 || options.timed_runs > kMaxTimedRuns || options.warmup_runs < 0)
    return Status(StatusCode::kInvalidArgument, "timed_runs = " + std::to_string(options.timed_runs) +
                                                    ", warmup_runs = " + std::to_string(options.warmup_runs) +
                                                    ": need 1 <= timed_runs <= " + std::to_string(kMaxTimedRuns) +
                                                    " and warmup_runs >= 0");
  // The same checks a GEMM of this shape would get (with stand-in pointers: only sizes matter here).
  GemmParams shape;
  shape.m = p.m, shape.n = p.n, shape.k = p.k, shape.d_type = p.d_type;
  shape.lda = p.k, shape.ldb = p.k, shape.ldd = p.n;
  if (p.m < 1) return Status(StatusCode::kInvalidArgument, "M = " + std::to_string(p.m) + ": tune a problem with M >= 1");
  {
    alignas(16) static const int8_t dummy[16] = {};
    static const float scale = 1.0f;
    shape.a = shape.b = dummy;
    shape.d = const_cast<int8_t*>(dummy);
    if (p.d_type != DType::kInt32) shape.scale_a = shape.scale_b = &scale;
    const int64_t elems16 = 16 / static_cast<int64_t>(std::max<size_t>(1, size_of(p.d_type)));
    shape.ldd = (p.n + elems16 - 1) / elems16 * elems16;
    INT8DIT_RETURN_IF_ERROR(validate(shape));
  }
  KernelFamily family;
  INT8DIT_RETURN_IF_ERROR(family_for_tuning(options.force_sm80, &family));
  const FamilyTable fam = family_table(family);
  if (fam.kernels->empty())
    return Status(StatusCode::kNotSupported, std::string("not built for this GPU: no ") + to_string(family) +
                                                 " kernels in this build (INT8DIT_CUDA_ARCHS = " +
                                                 built_architectures() + ")");
  TuneCache* cache = nullptr;
  INT8DIT_RETURN_IF_ERROR(tune::current_device_cache(&cache));
  *out = TuneResult{};
  return tune_key(fam, key_for(fam, p.m, p.n, p.k, p.d_type, p.bias), options, cache, out);
}

Status tune_cache_path(std::string* out) {
  TuneCache* cache = nullptr;
  INT8DIT_RETURN_IF_ERROR(tune::current_device_cache(&cache));
  *out = cache->path();
  return Status::Ok();
}

void tune_cache_reset() { tune::reset_device_caches(); }

namespace detail {

const GemmKernel* tuned_kernel(const GemmParams& p, KernelFamily family, const std::vector<GemmKernel>& table) {
  const TuneMode mode = tune_mode();
  if (mode == TuneMode::kHeuristic) return nullptr;
  TuneCache* cache = nullptr;
  if (!tune::current_device_cache(&cache).ok()) return nullptr;
  const FamilyTable fam = family_table(family);
  const TuneKey key = key_for(fam, p.m, p.n, p.k, p.d_type, p.bias != nullptr);
  TuneEntry entry;
  bool found = cache->lookup(key, &entry);
  if (!found && mode == TuneMode::kTuneOnFirstUse) {
    // A key that failed to tune is not retried on every call.
    static auto* failed = new std::set<TuneKey>;
    static auto* failed_mutex = new std::mutex;
    {
      std::lock_guard<std::mutex> lock(*failed_mutex);
      if (failed->count(key)) return nullptr;
    }
    // NOTE: the caller may be capturing a CUDA graph on its stream; relaxed mode lets this thread
    // allocate and synchronize on the tuner's private stream meanwhile.
    cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeRelaxed;
    cudaThreadExchangeStreamCaptureMode(&capture_mode);
    TuneResult result;
    Status st = tune_key(fam, key, TuneOptions{}, cache, &result);
    cudaThreadExchangeStreamCaptureMode(&capture_mode);
    // A result that was timed but could not be written to the file (read-only cache directory) is
    // still in memory and still used; only a key that could not be timed falls back for good.
    found = cache->lookup(key, &entry);
    if (!st.ok()) {
      tune::warn_to_stderr("tuning " + key.describe() + " failed (" + st.to_string() + ")" +
                           (found ? ": the result is kept for this process only" : ": using the heuristic"));
      if (!found) {
        std::lock_guard<std::mutex> lock(*failed_mutex);
        failed->insert(key);
        return nullptr;
      }
    }
  }
  if (!found) return nullptr;
  for (const GemmKernel& k : table) {
    if (entry.config != k.name) continue;
    if (k.d_type != p.d_type || !k.can_implement(p).ok()) return nullptr;
    return &k;
  }
  return nullptr;  // a configuration this build does not have: the heuristic serves
}

}  // namespace detail
}  // namespace int8dit
