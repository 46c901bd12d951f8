// The public GEMM entry points: validate, find the kernel family for the current GPU, pick a
// configuration (forced by name, tuned (src/tune), or the family's heuristic), run it.
#include <cuda_runtime_api.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/cuda_check.h"
#include "core/pdl_switch.h"
#include "gemm/kernel_registry.h"
#include "int8dit/gemm.h"
#include "tune/tuned_dispatch.h"

namespace int8dit {
namespace {

using detail::GemmKernel;

// Per-device facts read once: the hot path must not call cudaGetDeviceProperties (~ms).
struct DeviceFacts {
  int cc = 0;
  int sm_count = 0;
};

Status device_facts(DeviceFacts* out) {
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return Status(StatusCode::kNotSupported, std::string("no usable CUDA GPU: ") + cudaGetErrorString(err));
  }
  constexpr int kMaxDevices = 64;
  static std::array<std::atomic<int>, kMaxDevices> cc_cache{};
  static std::array<std::atomic<int>, kMaxDevices> sm_cache{};
  if (dev < kMaxDevices && cc_cache[dev].load(std::memory_order_acquire) != 0) {
    out->cc = cc_cache[dev].load(std::memory_order_relaxed);
    out->sm_count = sm_cache[dev].load(std::memory_order_relaxed);
    return Status::Ok();
  }
  int major = 0, minor = 0, sms = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute"));
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  out->cc = major * 10 + minor;
  out->sm_count = sms;
  if (dev < kMaxDevices) {
    sm_cache[dev].store(sms, std::memory_order_relaxed);
    cc_cache[dev].store(out->cc, std::memory_order_release);
  }
  return Status::Ok();
}

bool env_forces_sm80() {
  static const bool forced = [] {
    const char* v = std::getenv("INT8DIT_FORCE_SM80");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return forced;
}

std::string sm_name(int cc) { return "sm_" + std::to_string(cc); }

// Which family serves this call, and its kernel table.
Status family_for_call(const DeviceFacts& dev, const GemmOptions* opts, KernelFamily* family,
                       const std::vector<GemmKernel>** table) {
  KernelFamily f = kernel_family_for(dev.cc);
  if (f == KernelFamily::kNone)
    return Status(StatusCode::kNotSupported,
                  "this GPU is " + sm_name(dev.cc) + ": int8dit's int8 tensor-core kernels need sm_80 or newer");
  if (f == KernelFamily::kSm90Wgmma && ((opts && opts->force_sm80) || env_forces_sm80())) f = KernelFamily::kSm80MmaSync;
  *family = f;
  *table = f == KernelFamily::kSm90Wgmma ? &detail::sm90_kernels() : &detail::sm80_kernels();
  if ((*table)->empty())
    return Status(StatusCode::kNotSupported,
                  std::string("not built for ") + sm_name(dev.cc) + ": this library's INT8DIT_CUDA_ARCHS is \"" +
                      INT8DIT_BUILT_ARCHS + "\" and holds no " + to_string(f) +
                      " kernels; rebuild with that architecture in INT8DIT_CUDA_ARCHS");
  return Status::Ok();
}

Status select_kernel(const GemmParams& p, const GemmOptions* opts, const GemmKernel** out) {
  DeviceFacts dev;
  INT8DIT_RETURN_IF_ERROR(device_facts(&dev));
  KernelFamily family;
  const std::vector<GemmKernel>* table = nullptr;
  INT8DIT_RETURN_IF_ERROR(family_for_call(dev, opts, &family, &table));

  if (opts && opts->config && *opts->config) {
    for (const GemmKernel& k : *table) {
      if (std::strcmp(k.name, opts->config) != 0) continue;
      if (k.d_type != p.d_type)
        return Status(StatusCode::kInvalidArgument, std::string("configuration ") + k.name + " writes " +
                                                        to_string(k.d_type) + ", but D is " + to_string(p.d_type));
      INT8DIT_RETURN_IF_ERROR(k.can_implement(p));
      *out = &k;
      return Status::Ok();
    }
    return Status(StatusCode::kInvalidArgument, std::string("no configuration named \"") + opts->config +
                                                    "\" in this build for " + sm_name(dev.cc) +
                                                    "; `int8dit info` lists the configurations");
  }
  if (const GemmKernel* tuned = detail::tuned_kernel(p, family, *table)) {  // TuneMode, include/int8dit/tune.h
    *out = tuned;
    return Status::Ok();
  }
  const GemmKernel* k = family == KernelFamily::kSm90Wgmma ? detail::sm90_heuristic(p, dev.sm_count)
                                                           : detail::sm80_heuristic(p, dev.sm_count);
  if (!k)
    return Status(StatusCode::kNotImplemented, std::string("not implemented on this GPU yet: no ") + to_string(family) +
                                                   " kernel writes " + to_string(p.d_type) + " output for M = " +
                                                   std::to_string(p.m) + ", N = " + std::to_string(p.n) +
                                                   ", K = " + std::to_string(p.k));
  *out = k;
  return Status::Ok();
}

Status check_pointers(const GemmParams& p) {
  return detail::check_device_pointers({{p.a, "A"},
                                        {p.b, "B"},
                                        {p.d, "D"},
                                        {p.scale_a, "scale_a"},
                                        {p.scale_b, "scale_b"},
                                        {p.bias, "bias"},
                                        {p.workspace, "workspace"}});
}

}  // namespace

namespace detail {
StreamOrder stream_order_for(const GemmOptions* opts) {
  const bool programmatic = (!opts || opts->programmatic_launch) && !detail::env_disables_pdl();
  return programmatic ? StreamOrder::kProgrammatic : StreamOrder::kFull;
}
}  // namespace detail

Status gemm_can_implement(const GemmParams& p, const GemmOptions* opts) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.m == 0) return Status::Ok();
  const GemmKernel* k = nullptr;
  return select_kernel(p, opts, &k);
}

size_t gemm_workspace_size(const GemmParams& p, const GemmOptions* opts) {
  if (!validate(p).ok() || p.m == 0) return 0;
  const GemmKernel* k = nullptr;
  if (!select_kernel(p, opts, &k).ok()) return 0;
  return k->workspace_size(p);
}

std::string gemm_selected_config(const GemmParams& p, const GemmOptions* opts) {
  if (!validate(p).ok() || p.m == 0) return "";
  const GemmKernel* k = nullptr;
  return select_kernel(p, opts, &k).ok() ? k->name : "";
}

std::string gemm_config_names(const GemmOptions* opts) {
  DeviceFacts dev;
  if (!device_facts(&dev).ok()) return "";
  KernelFamily family;
  const std::vector<GemmKernel>* table = nullptr;
  if (!family_for_call(dev, opts, &family, &table).ok()) return "";
  std::string names;
  for (const GemmKernel& k : *table) names += (names.empty() ? "" : ",") + std::string(k.name);
  return names;
}

Status gemm_w8a8(const GemmParams& p, cudaStream_t stream, const GemmOptions* opts) {
  INT8DIT_RETURN_IF_ERROR(validate(p));
  if (p.m == 0) return Status::Ok();
  if (!opts || opts->check_pointers) INT8DIT_RETURN_IF_ERROR(check_pointers(p));
  const GemmKernel* k = nullptr;
  INT8DIT_RETURN_IF_ERROR(select_kernel(p, opts, &k));
  const size_t need = k->workspace_size(p);
  if (need > p.workspace_bytes)
    return Status(StatusCode::kInvalidArgument,
                  std::string("configuration ") + k->name + " needs " + std::to_string(need) +
                      " bytes of workspace but workspace_bytes = " + std::to_string(p.workspace_bytes) +
                      ": allocate gemm_workspace_size() bytes");
  return k->run(p, stream, detail::stream_order_for(opts));
}

}  // namespace int8dit
