// The floor under host_us_per_call: what the CUDA runtime alone charges the host to launch a kernel
// that does nothing, with a small parameter block and with one the size of the M = 1 GEMM's CUTLASS
// Params (TMA descriptors, epilogue and scheduler arguments: 1792 bytes), so the report can say how
// much of int8dit's host time is its own and how much no library on this machine can avoid.
#include <chrono>
#include <cstddef>
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <string>
#include <vector>

#include "check.h"
#include "kernels.h"

namespace bench {
namespace {

template <int kBytes>
struct alignas(64) ParamBlock {
  unsigned char bytes[kBytes];
};

template <int kBytes>
__global__ void empty_kernel(ParamBlock<kBytes> p) {
  if (p.bytes[threadIdx.x % kBytes] == 0xff && threadIdx.x == 1u << 30) p.bytes[0] = 0;  // never true
}

// cuLaunchKernelEx from the driver, found through the runtime (no link against libcuda).
PFN_cuLaunchKernelEx_v11060 driver_launch() {
  static PFN_cuLaunchKernelEx_v11060 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    BENCH_CUDA(cudaGetDriverEntryPointByVersion("cuLaunchKernelEx", &p, 12000, cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || !p) throw BenchError("cuLaunchKernelEx not found in the driver");
    return reinterpret_cast<PFN_cuLaunchKernelEx_v11060>(p);
  }();
  return fn;
}

template <int kBytes>
double median_launch_us(cudaStream_t stream, int calls, int rounds, size_t dynamic_smem, bool through_driver) {
  ParamBlock<kBytes> params{};
  void* args[] = {&params};
  const void* kernel = reinterpret_cast<const void*>(empty_kernel<kBytes>);
  cudaLaunchConfig_t launch{};
  launch.gridDim = dim3(132);  // what the persistent GEMM launches on an H100/H200
  launch.blockDim = dim3(384);
  launch.stream = stream;
  launch.dynamicSmemBytes = dynamic_smem;
  if (dynamic_smem > 48 * 1024)
    BENCH_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic_smem)));
  // The driver path: the CUfunction looked up once, as a library could cache it per kernel.
  cudaFunction_t function = nullptr;
  BENCH_CUDA(cudaGetFuncBySymbol(&function, kernel));
  CUlaunchConfig driver{};
  driver.gridDimX = 132, driver.gridDimY = 1, driver.gridDimZ = 1;
  driver.blockDimX = 384, driver.blockDimY = 1, driver.blockDimZ = 1;
  driver.sharedMemBytes = static_cast<unsigned>(dynamic_smem);
  driver.hStream = reinterpret_cast<CUstream>(stream);
  const PFN_cuLaunchKernelEx_v11060 launch_driver = through_driver ? driver_launch() : nullptr;
  std::vector<double> per_call;
  for (int r = 0; r < rounds + 2; ++r) {  // the first two rounds warm up (module load)
    BENCH_CUDA(cudaStreamSynchronize(stream));
    const auto t0 = std::chrono::steady_clock::now();
    if (through_driver) {
      for (int c = 0; c < calls; ++c) {
        if (launch_driver(&driver, reinterpret_cast<CUfunction>(function), args, nullptr) != CUDA_SUCCESS)
          throw BenchError("cuLaunchKernelEx of the empty kernel failed");
      }
    } else {
      for (int c = 0; c < calls; ++c) BENCH_CUDA(cudaLaunchKernelExC(&launch, kernel, args));
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (r >= 2) per_call.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / calls);
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace

double measure_empty_launch_us(cudaStream_t stream, int calls, int rounds, int param_bytes, size_t dynamic_smem,
                               bool through_driver) {
  if (param_bytes == kLaunchFloorSmallParamBytes)
    return median_launch_us<kLaunchFloorSmallParamBytes>(stream, calls, rounds, dynamic_smem, through_driver);
  if (param_bytes == kLaunchFloorGemmParamBytes)
    return median_launch_us<kLaunchFloorGemmParamBytes>(stream, calls, rounds, dynamic_smem, through_driver);
  throw BenchError("measure_empty_launch_us: no kernel with a " + std::to_string(param_bytes) + "-byte parameter");
}

}  // namespace bench
