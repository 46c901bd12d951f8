#include "tune/device_cache.h"

#include <cuda_runtime_api.h>

#include <array>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>

#include "core/cuda_check.h"
#include "int8dit/device.h"

namespace int8dit::tune {
namespace {

constexpr int kMaxDevices = 64;

// NOTE: intentionally leaked: a GEMM may run from a static destructor after ours would have run.
std::array<std::atomic<TuneCache*>, kMaxDevices>& device_caches() {
  static auto* caches = new std::array<std::atomic<TuneCache*>, kMaxDevices>{};
  return *caches;
}
std::mutex& creation_mutex() {
  static auto* m = new std::mutex;
  return *m;
}

// "NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3"
std::string slug(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    else if (!out.empty() && out.back() != '-')
      out.push_back('-');
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "gpu" : out;
}

}  // namespace

Status current_fingerprint(Fingerprint* out) {
  int dev = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDevice(&dev), "cudaGetDevice"));
  cudaDeviceProp prop{};
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties"));
  int runtime = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaRuntimeGetVersion(&runtime), "cudaRuntimeGetVersion"));
  out->gpu = prop.name;
  out->sm_count = prop.multiProcessorCount;
  out->cuda_runtime = runtime;
  out->library = version();
  return Status::Ok();
}

Status cache_path_for(const Fingerprint& fp, std::string* out) {
  if (const char* env = std::getenv("INT8DIT_CACHE"); env && *env) {
    *out = env;
    return Status::Ok();
  }
  std::string dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    dir = std::string(xdg) + "/int8dit";
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = std::string(home) + "/.cache/int8dit";
  } else {
    return Status(StatusCode::kInvalidArgument,
                  "neither HOME nor XDG_CACHE_HOME is set: set INT8DIT_CACHE to the tuning cache file's path");
  }
  *out = dir + "/tune-" + slug(fp.gpu) + "-" + std::to_string(fp.sm_count) + "sm.json";
  return Status::Ok();
}

Status current_device_cache(TuneCache** out) {
  int dev = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDevice(&dev), "cudaGetDevice"));
  if (dev < 0 || dev >= kMaxDevices)
    return Status(StatusCode::kNotSupported, "device " + std::to_string(dev) + ": the tuner handles devices 0.." +
                                                 std::to_string(kMaxDevices - 1));
  std::atomic<TuneCache*>& slot = device_caches()[dev];
  if (TuneCache* c = slot.load(std::memory_order_acquire)) {
    *out = c;
    return Status::Ok();
  }
  std::lock_guard<std::mutex> lock(creation_mutex());
  if (TuneCache* c = slot.load(std::memory_order_acquire)) {
    *out = c;
    return Status::Ok();
  }
  Fingerprint fp;
  INT8DIT_RETURN_IF_ERROR(current_fingerprint(&fp));
  std::string path;
  INT8DIT_RETURN_IF_ERROR(cache_path_for(fp, &path));
  auto* cache = new TuneCache(path, fp);
  slot.store(cache, std::memory_order_release);
  *out = cache;
  return Status::Ok();
}

void reset_device_caches() {
  for (std::atomic<TuneCache*>& slot : device_caches())
    if (TuneCache* c = slot.load(std::memory_order_acquire)) c->reset();
}

}  // namespace int8dit::tune
