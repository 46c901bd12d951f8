// What the Hopper GEMM tests share: the configurations built, the output type a configuration's name
// says, and the skip (with its reason) where there is no Hopper GPU or no sm_90a build.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "int8dit/device.h"
#include "int8dit/gemm.h"

namespace int8dit::test {

// Every configuration the generator writes (src/gemm/sm90/generate_instances.py), by name.
inline const std::vector<std::string>& sm90_config_names() {
  static const std::vector<std::string> names = {
#define INT8DIT_SM90_KERNEL(name) #name,
#include "gemm/sm90/kernel_list.inc"
#undef INT8DIT_SM90_KERNEL
  };
  return names;
}

// "sm90_bf16_128x256x128_2x1_coop" -> kBF16.
inline DType output_type_of(const std::string& config) {
  const std::string t = config.substr(5, config.find('_', 5) - 5);
  if (t == "bf16") return DType::kBF16;
  if (t == "fp16") return DType::kFP16;
  if (t == "fp32") return DType::kFP32;
  return DType::kInt32;
}

// Why the Hopper tests cannot run here, or "" when they can.
inline std::string hopper_unavailable_reason() {
  DeviceInfo info;
  Status st = current_device(&info);
  if (!st.ok()) return "no CUDA GPU: " + st.message();
  if (info.cc / 10 != 9) return "the GPU is " + info.name + " (sm_" + std::to_string(info.cc) + "), not Hopper (sm_90)";
  if (!info.family_built) return "this build holds no sm_90a kernels (INT8DIT_CUDA_ARCHS lacks 90a)";
  return "";
}

// The compute-sanitizer runs (scripts/device/gpu_run.sh, step sanitize) set INT8DIT_SMALL_SHAPES. The
// tool serializes kernel launches, so a test that asserts two kernels overlapped skips there, and the
// others take smaller shapes.
inline bool sanitizer_run() { return std::getenv("INT8DIT_SMALL_SHAPES") != nullptr; }

// Launches `kernel` on one thread of one CTA in `stream`, with programmatic stream serialization: it
// may start as soon as the kernel before it releases its dependents (griddepcontrol.launch_dependents).
template <class... Params, class... Args>
cudaError_t launch_one_thread_programmatic(void (*kernel)(Params...), cudaStream_t stream, Args... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(1), config.blockDim = dim3(1), config.stream = stream;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attr, config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
}

}  // namespace int8dit::test

// In a TEST body: skips with the reason (`what` names the tests) where Hopper tests cannot run.
#define INT8DIT_SKIP_UNLESS_HOPPER(what)                                     \
  do {                                                                       \
    const std::string why = ::int8dit::test::hopper_unavailable_reason();    \
    if (!why.empty()) GTEST_SKIP() << what << ": " << why;                   \
  } while (0)
