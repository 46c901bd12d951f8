// The Hopper W8A8 GEMM, header-only: a CUTLASS 3.x warp-specialized persistent kernel (TMA loads into
// 128B-swizzled shared memory, s8 x s8 -> s32 wgmma, multi-stage pipeline) with our EVT epilogue.
// One explicit instantiation per configuration lives in inst/*.cu (written by generate_instances.py).
//
// Host path (the issue's budget is 5 us per call): no GemmUniversalAdapter. The kernel's Params
// (three TMA descriptors, the scheduler's tiling) are built with Kernel::to_underlying_arguments and
// kept in a one-entry per-thread cache, so a call that repeats the previous call's arguments (the
// inference and benchmark case) goes straight to the launch: cuLaunchKernelEx with the kernel's
// function looked up once per device (core/driver_launch.h; INT8DIT_GEMM_LAUNCH=runtime takes
// cudaLaunchKernelExC instead). cudaFuncSetAttribute runs once per kernel and device. Nothing is
// allocated per call.
#pragma once

// CUTLASS's extended wgmma shapes (N = 80, 112, 144, 160, ... 240 besides the powers of two and 96,
// 192): tile N = 144 divides DiT's 1152 (generate_instances.py). The selector tries the extended
// shapes between the base ones, so every other tile N here picks the same instruction as without.
#ifndef CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED
#define CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED
#endif

#include <cuda_runtime_api.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <type_traits>

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/device_kernel.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/gemm/kernel/tile_scheduler.hpp"
#include "cutlass/kernel_hardware_info.h"

#include "core/cuda_check.h"
#include "core/driver_launch.h"
#include "gemm/kernel_registry.h"
#include "gemm/sm90/epilogue_evt.cuh"
#include "gemm/sm90/gemm_config.h"
#include "gemm/sm90/ragged_columns.cuh"
#include "int8dit/gemm.h"

namespace int8dit::detail::sm90 {

// Whether this translation unit's kernel waits for the previous grid before its first global access
// (CUTLASS_ENABLE_GDC_FOR_SM90, defined by the instantiation files generate_instances.py writes):
// only then may run() launch it programmatically (PDL). Each configuration lives in a file of its own.
#if defined(CUTLASS_ENABLE_GDC_FOR_SM90)
constexpr bool kWaitsForPreviousGrid = true;
#else
constexpr bool kWaitsForPreviousGrid = false;
#endif

// Multiprocessor count of a device, read once (the persistent grid is sized by it).
inline Status device_sm_count(int* device, int* sm_count) {
  INT8DIT_RETURN_IF_ERROR(cuda_status(cudaGetDevice(device), "cudaGetDevice"));
  constexpr int kMaxDevices = 64;
  static std::array<std::atomic<int>, kMaxDevices> cache{};
  if (*device < kMaxDevices) {
    int cached = cache[*device].load(std::memory_order_relaxed);
    if (cached > 0) {
      *sm_count = cached;
      return Status::Ok();
    }
  }
  INT8DIT_RETURN_IF_ERROR(cuda_status(
      cudaDeviceGetAttribute(sm_count, cudaDevAttrMultiProcessorCount, *device), "cudaDeviceGetAttribute"));
  if (*device < kMaxDevices) cache[*device].store(*sm_count, std::memory_order_relaxed);
  return Status::Ok();
}

// Everything of a GemmParams that the kernel's Params depend on (padding-free, compared field by field).
struct CallKey {
  int64_t m = -1, n = 0, k = 0, lda = 0, ldb = 0, ldd = 0;
  const void *a = nullptr, *b = nullptr, *d = nullptr, *scale_a = nullptr, *scale_b = nullptr, *bias = nullptr;
  void* workspace = nullptr;
  int scale_modes = 0, device = -1, sm_count = 0;

  static CallKey of(const GemmParams& p, int device, int sm_count) {
    CallKey c;
    c.m = p.m, c.n = p.n, c.k = p.k, c.lda = p.lda, c.ldb = p.ldb, c.ldd = p.ldd;
    c.a = p.a, c.b = p.b, c.d = p.d, c.scale_a = p.scale_a, c.scale_b = p.scale_b, c.bias = p.bias;
    c.workspace = p.workspace;
    c.scale_modes = static_cast<int>(p.scale_a_mode) * 8 + static_cast<int>(p.scale_b_mode);
    c.device = device, c.sm_count = sm_count;
    return c;
  }
  bool operator==(const CallKey& o) const {
    return m == o.m && n == o.n && k == o.k && lda == o.lda && ldb == o.ldb && ldd == o.ldd && a == o.a &&
           b == o.b && d == o.d && scale_a == o.scale_a && scale_b == o.scale_b && bias == o.bias &&
           workspace == o.workspace && scale_modes == o.scale_modes && device == o.device && sm_count == o.sm_count;
  }
};

// ScaledEpilogueT: the scaled epilogue's EVT (epilogue_evt.cuh: ScaledEpilogue, the library's). A
// benchmark may put another in its place (bench/gelu_epilogue: GELU after the scaled epilogue).
template <class Config, template <class, class> class ScaledEpilogueT = ScaledEpilogue>
struct W8A8GemmSm90 {
  using ElementD = typename Config::ElementD;
  static constexpr bool kRaw = std::is_same_v<ElementD, int32_t>;
  static constexpr bool kCooperative = Config::kSchedule == Schedule::kCooperative;
  static constexpr bool kStreamK = Config::kScheduling == TileScheduling::kStreamK;
  static_assert(kStreamK || kWaitsForPreviousGrid,
                "persistent configurations are built for programmatic launch: define CUTLASS_ENABLE_GDC_FOR_SM90 "
                "before including this header (generate_instances.py does)");

  using TileShape = cute::Shape<cute::Int<Config::kTileM>, cute::Int<Config::kTileN>, cute::Int<Config::kTileK>>;
  using ClusterShape = cute::Shape<cute::Int<Config::kClusterM>, cute::Int<Config::kClusterN>, cute::_1>;
  using MainloopSchedule = std::conditional_t<kCooperative, cutlass::gemm::KernelTmaWarpSpecializedCooperative,
                                              cutlass::gemm::KernelTmaWarpSpecializedPingpong>;
  using EpilogueSchedule = std::conditional_t<kCooperative, cutlass::epilogue::TmaWarpSpecializedCooperative,
                                              cutlass::epilogue::TmaWarpSpecialized>;
  using TileScheduler =
      std::conditional_t<kStreamK, cutlass::gemm::StreamKScheduler, cutlass::gemm::PersistentScheduler>;
  using Epilogue = std::conditional_t<kRaw, RawAccumulatorEpilogue<TileShape>, ScaledEpilogueT<ElementD, TileShape>>;

  // 16-byte vectors everywhere: TMA moves 16-byte granules (validate() checks pointers and pitches).
  static constexpr int kAlignD = 16 / sizeof(ElementD);

  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, int32_t, typename Epilogue::ElementCompute,
      void, cutlass::layout::RowMajor, kAlignD,  // no source C
      ElementD, cutlass::layout::RowMajor, kAlignD, EpilogueSchedule, typename Epilogue::Callbacks>::CollectiveOp;

  // A [M, K] row-major and B [N, K] row-major (= K x N column-major): both K-major, as 8-bit wgmma needs.
  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, int8_t, cutlass::layout::RowMajor, 16, int8_t,
      cutlass::layout::ColumnMajor, 16, int32_t, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      MainloopSchedule>::CollectiveOp;

  using Kernel = cutlass::gemm::kernel::GemmUniversal<cute::Shape<int, int, int, int>, CollectiveMainloop,
                                                      CollectiveEpilogue, TileScheduler>;
  using Arguments = typename Kernel::Arguments;
  using Params = typename Kernel::Params;

  static Arguments arguments(const GemmParams& p, int device, int sm_count) {
    using StrideA = typename Kernel::StrideA;
    using StrideB = typename Kernel::StrideB;
    using StrideD = typename Kernel::StrideD;
    StrideA stride_a{};
    cute::get<0>(stride_a) = p.lda;
    StrideB stride_b{};
    cute::get<0>(stride_b) = p.ldb;
    StrideD stride_d{};
    cute::get<0>(stride_d) = p.ldd;

    cutlass::KernelHardwareInfo hw_info;
    hw_info.device_id = device;
    hw_info.sm_count = sm_count;

    typename Kernel::TileSchedulerArguments scheduler{};
    if constexpr (kStreamK) {
      // NOTE: partial tiles are int32 sums, exact in any order, so the faster non-deterministic
      // (atomic-order) reduction still gives bit-identical results.
      scheduler.reduction_mode = cutlass::gemm::kernel::detail::PersistentTileSchedulerSm90StreamKParams::
          ReductionMode::Nondeterministic;
    }

    return Arguments{
        cutlass::gemm::GemmUniversalMode::kGemm,
        {static_cast<int>(p.m), static_cast<int>(p.n), static_cast<int>(p.k), 1},
        {p.a, stride_a, p.b, stride_b},
        {Epilogue::arguments(p), nullptr, typename Kernel::StrideC{}, static_cast<ElementD*>(p.d), stride_d},
        hw_info,
        scheduler};
  }

  static Status can_implement(const GemmParams& p) {
    // The problem shape is int: M and N up to 2^31 - 1 (K is capped far below by kMaxK).
    if (p.m > INT32_MAX || p.n > INT32_MAX)
      return Status(StatusCode::kInvalidArgument, "M = " + std::to_string(p.m) + ", N = " + std::to_string(p.n) +
                                                      ": the sm90 kernels take M, N < 2^31; split the batch");
    return Status::Ok();
  }

  // Columns [0, aligned_columns(n)) go through the TMA kernel; the rest through ragged_columns.cuh.
  static int64_t aligned_columns(int64_t n) { return n / kAlignD * kAlignD; }

  static size_t workspace_size(const GemmParams& p) {
    if constexpr (!kStreamK) {
      return 0;
    } else {
      int device = 0, sm_count = 0;
      if (aligned_columns(p.n) == 0 || !device_sm_count(&device, &sm_count).ok()) return 0;
      GemmParams main = p;
      main.n = aligned_columns(p.n);
      return Kernel::get_workspace_size(arguments(main, device, sm_count));
    }
  }

  // Raise the kernel's dynamic shared memory limit once per device, and look up its function there
  // for the driver launch (*function stays null where the runtime launches it).
  static Status prepare_kernel(int device, cudaFunction_t* function) {
    constexpr int kMaxDevices = 64;
    static std::array<std::atomic<bool>, kMaxDevices> done{};
    static std::array<std::atomic<cudaFunction_t>, kMaxDevices> functions{};
    if (device < kMaxDevices && done[device].load(std::memory_order_acquire)) {
      *function = functions[device].load(std::memory_order_relaxed);
      return Status::Ok();
    }
    INT8DIT_RETURN_IF_ERROR(cuda_status(cudaFuncSetAttribute(cutlass::device_kernel<Kernel>,
                                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                             static_cast<int>(Kernel::SharedStorageSize)),
                                        "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)"));
    *function = nullptr;
    if (driver_launch_enabled())
      INT8DIT_RETURN_IF_ERROR(cuda_status(
          cudaGetFuncBySymbol(function, reinterpret_cast<const void*>(cutlass::device_kernel<Kernel>)),
          "cudaGetFuncBySymbol"));
    if (device < kMaxDevices) {
      functions[device].store(*function, std::memory_order_relaxed);
      done[device].store(true, std::memory_order_release);
    }
    return Status::Ok();
  }

  static Status run(const GemmParams& p, cudaStream_t stream, StreamOrder order) {
    const int64_t n_main = aligned_columns(p.n);
    if (n_main > 0) {
      GemmParams main = p;
      main.n = n_main;
      INT8DIT_RETURN_IF_ERROR(run_tma_kernel(main, stream, order));
    }
    if (n_main < p.n)
      return cuda_status(launch_ragged_columns<ElementD>(p, n_main, stream), "sm90 W8A8 GEMM ragged columns launch");
    return Status::Ok();
  }

  // The wgmma kernel over a problem whose N is a multiple of 16 bytes of D.
  static Status run_tma_kernel(const GemmParams& p, cudaStream_t stream, StreamOrder order) {
    int device = 0, sm_count = 0;
    INT8DIT_RETURN_IF_ERROR(device_sm_count(&device, &sm_count));
    cudaFunction_t function = nullptr;
    INT8DIT_RETURN_IF_ERROR(prepare_kernel(device, &function));

    struct CachedParams {
      CallKey key;
      Params params;
    };
    thread_local CachedParams cache{};
    const CallKey key = CallKey::of(p, device, sm_count);
    if constexpr (kStreamK) {
      // The stream-K barrier flags must start at zero on every run (one memset on the stream).
      if (Kernel::initialize_workspace(arguments(p, device, sm_count), p.workspace, stream) !=
          cutlass::Status::kSuccess)
        return Status(StatusCode::kCudaError, "stream-K workspace initialization failed (cudaMemsetAsync)");
    }
    if (!(cache.key == key)) {
      cache.params = Kernel::to_underlying_arguments(arguments(p, device, sm_count), p.workspace);
      cache.key = key;
    }

    cudaLaunchConfig_t launch{};
    launch.gridDim = Kernel::get_grid_shape(cache.params);
    launch.blockDim = Kernel::get_block_shape();
    launch.dynamicSmemBytes = Kernel::SharedStorageSize;
    launch.stream = stream;
    // Programmatic: the load warps wait for the previous kernel (griddepcontrol.wait) before their
    // first global access, and the consumers signal launch_dependents once they reach their last tile.
    // NOTE: a 1x1 configuration launches without the cluster attribute (the plain, cheaper launch path).
    const LaunchAttributes attributes{Config::kClusterM, Config::kClusterN,
                                      kWaitsForPreviousGrid && order == StreamOrder::kProgrammatic};
    void* args[] = {&cache.params};
    // The driver launch (where `function` is set) skips the runtime's per-launch lookup of the
    // function from its host stub.
    return launch_kernel(reinterpret_cast<const void*>(cutlass::device_kernel<Kernel>), function, launch, attributes,
                         args, "sm90 W8A8 GEMM launch");
  }
};

// The kernel-table entry for one configuration.
template <class Config>
GemmKernel make_gemm_kernel(const char* name, DType d_type) {
  using Gemm = W8A8GemmSm90<Config>;
  return GemmKernel{name, KernelFamily::kSm90Wgmma, d_type, &Gemm::can_implement, &Gemm::workspace_size, &Gemm::run};
}

}  // namespace int8dit::detail::sm90
