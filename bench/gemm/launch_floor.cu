// The floor under host_us_per_call: what the CUDA runtime alone charges the host to launch a kernel
// that does nothing, with a parameter block the size of a CUTLASS sm90 kernel's Params (TMA
// descriptors, epilogue and scheduler arguments), so the report can say how much of int8dit's host
// time is its own and how much no library on this machine can avoid.
#include <chrono>
#include <cstddef>
#include <vector>
#include <algorithm>

#include "check.h"
#include "kernels.h"

namespace bench {
namespace {

struct alignas(64) ParamBlock {
  unsigned char bytes[kLaunchFloorParamBytes];
};

__global__ void empty_kernel(ParamBlock p) {
  if (p.bytes[threadIdx.x % kLaunchFloorParamBytes] == 0xff && threadIdx.x == 1u << 30) p.bytes[0] = 0;  // never true
}

}  // namespace

double measure_empty_launch_us(cudaStream_t stream, int calls, int rounds, size_t dynamic_smem) {
  ParamBlock params{};
  void* args[] = {&params};
  cudaLaunchConfig_t launch{};
  launch.gridDim = dim3(132);  // what the persistent GEMM launches on an H100/H200
  launch.blockDim = dim3(384);
  launch.stream = stream;
  launch.dynamicSmemBytes = dynamic_smem;
  if (dynamic_smem > 48 * 1024)
    BENCH_CUDA(cudaFuncSetAttribute(reinterpret_cast<const void*>(empty_kernel),
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic_smem)));
  std::vector<double> per_call;
  for (int r = 0; r < rounds + 2; ++r) {  // the first two rounds warm up (module load)
    BENCH_CUDA(cudaStreamSynchronize(stream));
    const auto t0 = std::chrono::steady_clock::now();
    for (int c = 0; c < calls; ++c)
      BENCH_CUDA(cudaLaunchKernelExC(&launch, reinterpret_cast<const void*>(empty_kernel), args));
    const auto t1 = std::chrono::steady_clock::now();
    if (r >= 2) per_call.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / calls);
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace bench
