// Picks the kernel shape for a row length and launches it. Host side of row_kernels.cuh.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/cuda_check.h"
#include "core/pdl_switch.h"
#include "quant/row_bulk_ring.cuh"
#include "quant/row_grouped.cuh"
#include "quant/row_grouped_ring.cuh"
#include "quant/row_grouped_own_copies.cuh"
#include "quant/row_kernels.cuh"
#include "quant/row_ops.cuh"
#include "quant/row_path.h"
#include "quant/row_shape.h"

namespace int8dit::quant {

inline bool aligned_to(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// A row of `ld`-strided elements of `elem_bytes` each can be read/written 8 elements (one vector) at a time.
inline bool vector_rows(const void* p, int64_t ld, size_t elem_bytes) {
  return p == nullptr || (aligned_to(p, kVecElems * elem_bytes) && ld % kVecElems == 0);
}

template <typename T>
bool vectorizable(const RowArgs<T>& a) {
  return a.cols % kVecElems == 0 && vector_rows(a.x, a.ldx, sizeof(T)) && vector_rows(a.q, a.ldq, 1) &&
         vector_rows(a.y, a.ldy, sizeof(T)) && (a.smooth == nullptr || aligned_to(a.smooth, 16));
}

constexpr int kMaxDevices = 64;
// Resident CTAs of one kernel instantiation per (device, threads / 32), times 2, plus 1 where shared
// memory sets that count (resident_ctas' smem_limited); 0 = not computed yet. Sized for any CTA (the
// grouped kernel's 7 groups of 128 threads are 896).
using ResidentCtaCache = std::atomic<int>[kMaxDevices][1024 / 32 + 1];

// How many CTAs of `kernel` with `threads` threads are resident on the whole GPU at once, computed on
// first use per (device, thread count) and cached in the kernel's own `cache`: the query costs
// microseconds, as long as a kernel. The first use also lifts the kernel's dynamic shared memory limit
// to what its largest CTA needs (static + dynamic shared memory above 48 KB needs the opt-in).
// `max_smem`: the dynamic shared memory of a CTA of `max_threads` (the kernel's launch bound), which
// a CTA of `threads` takes in proportion.
// `keep_l1`: where caps_carveout_for_l1() says so (row_path.h: on Hopper, where the CTAs that fit
// would take more than kKeptL1CarveoutKb of shared memory), ask for that carveout instead (fewer CTAs,
// more L1); elsewhere the driver's choice stands.
// `*smem_limited` (where given): whether the CTAs' shared memory, at the carveout the kernel runs with,
// is what holds the count below what registers and threads allow. (Not "whether this call capped the
// carveout": the carveout is the kernel's, not the thread count's, so a kernel another thread count
// capped first runs every thread count at that carveout; measured so at c5ccc31,
// bench/results/h200/quant_c5ccc31.md.)
template <typename Kernel>
Status resident_ctas(Kernel kernel, ResidentCtaCache& cache, int threads, size_t max_smem, int* out,
                     int max_threads = kMaxRowThreads, bool keep_l1 = false, bool* smem_limited = nullptr) {
  int device = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDevice(&device), "cudaGetDevice"));
  std::atomic<int>* slot = device < kMaxDevices ? &cache[device][threads / 32] : nullptr;
  if (const int packed = slot ? slot->load(std::memory_order_relaxed) : 0; packed > 0) {
    *out = packed >> 1;
    if (smem_limited) *smem_limited = (packed & 1) != 0;
    return Status::Ok();
  }
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(max_smem)),
      "cudaFuncSetAttribute"));
  int sms = 0, per_sm = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                                              "cudaDeviceGetAttribute"));
  const size_t smem = max_smem / max_threads * threads;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem),
                                              "cudaOccupancyMaxActiveBlocksPerMultiprocessor"));
  if (keep_l1 && smem > 0) {
    int major = 0, reserved = 0;
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute"));
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(
        cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, device), "cudaDeviceGetAttribute"));
    if (caps_carveout_for_l1(major, per_sm, static_cast<int64_t>(smem), reserved)) {
      // A hint that the occupancy query honours: it then counts only the CTAs the capped carveout holds.
      INT8DIT_RETURN_IF_ERROR(detail::cuda_status(
          cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, kept_l1_carveout_percent()),
          "cudaFuncSetAttribute"));
      INT8DIT_RETURN_IF_ERROR(detail::cuda_status(
          cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor"));
    }
  }
  // The CTAs an SM with no dynamic shared memory, at the kernel's carveout: what registers, threads and
  // static shared memory allow.
  int without_smem = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&without_smem, kernel, threads, 0),
                                              "cudaOccupancyMaxActiveBlocksPerMultiprocessor"));
  const bool limited = per_sm < without_smem;
  *out = std::max(per_sm, 1) * sms;
  if (smem_limited) *smem_limited = limited;
  if (slot) slot->store(*out * 2 + (limited ? 1 : 0), std::memory_order_relaxed);
  return Status::Ok();
}

// Whether `kernel` runs as built for sm_90 or newer on the current device (its SASS and the PTX it came
// from), computed once per device into `cache` (0 unknown, 1 yes, 2 no). A build without sm_90 (or a
// GPU before Hopper) loads the ring kernel with an empty body and the row kernels without their
// griddepcontrol.wait: the launcher must neither pick the ring nor launch programmatically there.
template <typename Kernel>
bool runs_sm90_code(Kernel kernel, std::atomic<int> (&cache)[kMaxDevices]) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  std::atomic<int>* slot = device < kMaxDevices ? &cache[device] : nullptr;
  if (slot && slot->load(std::memory_order_relaxed) != 0) return slot->load(std::memory_order_relaxed) == 1;
  cudaFuncAttributes attr{};
  bool yes = false;
  if (cudaFuncGetAttributes(&attr, kernel) == cudaSuccess) {
    yes = attr.binaryVersion >= 90 && attr.ptxVersion >= 90;
  } else {
    cudaGetLastError();  // no image for this GPU: the register kernel's launch reports it
  }
  if (slot) slot->store(yes ? 1 : 2, std::memory_order_relaxed);
  return yes;
}

// Launches a row kernel (`<<<grid, threads, smem, stream>>>(args...)`; errors surface through
// detail::last_launch_status as for <<<>>>), on Hopper with programmatic stream serialization: its
// launch and set-up then overlap the end of the kernel before it, which the row kernels wait for
// before their first global access (row_kernels.cuh: wait_for_previous_grid). Only where `kernel`
// runs sm_90 code (the wait is compiled for sm_90 only), INT8DIT_PDL is not 0, and the grid is not
// one that lands badly that way (row_path.h: launches_programmatically; `smem_sized_grid`: a persistent
// grid sized to the CTAs an SM that shared memory allows, resident_ctas' smem_limited).
// `sm90`: the caller's cache for this kernel (runs_sm90_code).
template <typename... Params, typename... Args>
void launch_row_kernel(void (*kernel)(Params...), std::atomic<int> (&sm90)[kMaxDevices], bool smem_sized_grid,
                       int64_t grid, int threads, size_t smem, cudaStream_t stream, const Args&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(grid));
  config.blockDim = dim3(static_cast<unsigned>(threads));
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute programmatic{};
  programmatic.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  programmatic.val.programmaticStreamSerializationAllowed = 1;
  if (launches_programmatically(threads, smem_sized_grid) && !detail::env_disables_pdl() &&
      runs_sm90_code(kernel, sm90)) {
    config.attrs = &programmatic;
    config.numAttrs = 1;
  }
  (void)cudaLaunchKernelEx(&config, kernel, args...);
}

// The op as a persistent grid of `grid` CTAs runs it: a WithRowBlocks op gets its contiguous blocks
// of rows (row_kernels.cuh), any other op goes as it is (strided rows).
template <typename Op>
Op for_grid(Op op, int64_t rows, int64_t grid) {
  if constexpr (TakesRowBlocks<Op>::value) op.row_blocks = contiguous_rows(rows, grid);
  return op;
}

template <typename Op>
WithRowBlocks<Op> with_row_blocks(const Op& op) {
  WithRowBlocks<Op> w;
  static_cast<Op&>(w) = op;
  return w;
}

// Persistent CTAs of the register-row kernel: as many as fit on the GPU at once, at most one per row.
// kRecips: the SmoothQuant kernel, whose CTAs keep the divisors' reciprocals in shared memory.
// kMaxThreads: the kernel's launch bound, kWideRowThreads for the wide kernel (row_shape.h).
template <typename T, typename Op, int kVecs, bool kCache, bool kRecips = false, int kMaxThreads = kMaxRowThreads>
Status launch_persistent(const RowArgs<T>& a, const Op& op, int threads, cudaStream_t stream) {
  // (6 vectors only: at 4 the bound let fp16 RMSNorm take 113 registers where it took 93.)
  constexpr int kMinCtas = kCache && kVecs == 6 ? cached_kernel_min_ctas<Op>() : 0;
  auto kernel = row_quantize_registers<T, Op, kVecs, true, kCache, kRecips, kMinCtas, kMaxThreads>;
  // NOTE: one cache per instantiation: kernels of different kVecs share a function-pointer type, so a
  // cache keyed by that type alone would hand one kernel another's CTA count and smem opt-in.
  static ResidentCtaCache cache = {};
  constexpr size_t kSmemPerThread = (kCache ? channel_cache_bytes_per_thread<Op, kVecs>() : 0) +
                                    (kRecips ? smooth_reciprocal_bytes_per_thread(kVecs) : 0);
  int ctas = 0;
  bool smem_sized = false;
  INT8DIT_RETURN_IF_ERROR(resident_ctas(kernel, cache, threads, kSmemPerThread * kMaxThreads, &ctas, kMaxThreads,
                                        /*keep_l1=*/kCache, &smem_sized));
  static std::atomic<int> sm90[kMaxDevices] = {};
  const int64_t grid = std::min<int64_t>(a.rows, ctas);
  launch_row_kernel(kernel, sm90, smem_sized, grid, threads, kSmemPerThread * threads, stream, a,
                    for_grid(op, a.rows, grid));
  return Status::Ok();
}

// The grouped kernel (row_grouped.cuh) in one layout, planned for a call: `busiest_sm_rows` 0 where it
// does not take the call (the loaded binary has no sm_90 code for it: measured on Hopper only; or the
// rows' parts do not fit the resident CTAs, row_shape.h: grouped_ctas_per_part).
// kBulkCopies: its rows bulk-copied to shared memory: by a producer warp more a CTA (row_grouped_ring.cuh), or,
// a transforming op's, by each group itself (row_grouped_own_copies.cuh: a producer's 17 warps would cap its
// registers at 96).
template <typename Op, bool kBulkCopies>
constexpr bool kProducerWarp = kBulkCopies && !TransformsInput<Op>::value;
template <typename T, typename Op, int kVecs, int kGroupThreads, int kGroups, bool kStaged, bool kBulkCopies>
constexpr auto grouped_kernel() {
  if constexpr (kBulkCopies && TransformsInput<Op>::value) {
    return row_quantize_grouped_own_copies<T, Op, kVecs, kGroupThreads, kGroups>;
  } else if constexpr (kBulkCopies) {
    return row_quantize_grouped_ring<T, Op, kVecs, kGroupThreads, kGroups>;
  } else {
    return row_quantize_grouped<T, Op, kVecs, kGroupThreads, kGroups, kStaged>;
  }
}
template <typename T, typename Op, int kVecs, int kGroupThreads, int kGroups, bool kStaged = false, bool kBulkCopies = false>
struct GroupedLaunch {
  static_assert(!(kStaged && kBulkCopies), "the next row staged by its threads or bulk-copied, not both");
  static constexpr int kThreads = kGroupThreads * kGroups + (kProducerWarp<Op, kBulkCopies> ? 32 : 0);
  static constexpr size_t kSmem = kProducerWarp<Op, kBulkCopies> ? grouped_ring_smem_bytes<Op, kVecs, kGroupThreads, kGroups>()
                                  : kBulkCopies ? grouped_own_copies_smem_bytes<Op, kVecs, kGroupThreads, kGroups>()
                                          : grouped_channel_cache_bytes<Op, kVecs, kGroupThreads>() +
                                                (kStaged ? grouped_stage_bytes<Op, kVecs, kGroupThreads, kGroups>() : 0);
  static constexpr auto kernel = grouped_kernel<T, Op, kVecs, kGroupThreads, kGroups, kStaged, kBulkCopies>();
  static inline std::atomic<int> sm90[kMaxDevices] = {};
  static inline ResidentCtaCache resident = {};

  GroupedRows parts{};
  int64_t grid = 0;
  int64_t busiest_sm_rows = 0;

  Status plan(const RowArgs<T>& a, const Op& op, int sms) {
    if (!runs_sm90_code(kernel, sm90)) return Status::Ok();
    int ctas = 0;
    INT8DIT_RETURN_IF_ERROR(resident_ctas(kernel, resident, kThreads, kSmem, &ctas, kThreads));
    int64_t rows_per_part = a.rows;
    if constexpr (Op::kChannelsVaryByRow) {
      if (op.channels_vary(a.rows)) rows_per_part = op.rows_sharing_channels();
    }
    const int64_t per_part = grouped_ctas_per_part(a.rows, rows_per_part, ctas, kGroups);
    if (per_part == 0) return Status::Ok();
    parts = GroupedRows{rows_per_part, static_cast<int>(per_part)};
    grid = (a.rows + rows_per_part - 1) / rows_per_part * per_part;
    busiest_sm_rows = grouped_busiest_sm_rows(a.rows, rows_per_part, ctas, sms, kGroups);
    return Status::Ok();
  }
  void launch(const RowArgs<T>& a, const Op& op, cudaStream_t stream) const {
    launch_row_kernel(kernel, sm90, /*smem_sized_grid=*/false, grid, kThreads, kSmem, stream, a, op, parts);
  }
};

// A layout an op does not take: plans to take no call, launches nothing.
struct NoGroupedLayout {
  int64_t busiest_sm_rows = 0;
  template <typename T, typename Op>
  Status plan(const RowArgs<T>&, const Op&, int) { return Status::Ok(); }
  template <typename T, typename Op>
  void launch(const RowArgs<T>&, const Op&, cudaStream_t) const {}
};

// The grouped kernel at the row's group size (row_shape.h: grouped_row_threads, 32 or 64 threads), where
// it takes the call; *launched says whether it did. The 64-thread rows of SmoothQuant and RMSNorm take the
// bulk-copy form in 8 groups a CTA where that leaves the busiest SM no more rows than 4 groups a CTA (row_grouped_ring.cuh,
// kGroupedRing64x6, TakesGroupedRing); the others take 128 x 3 in 7 groups instead where that leaves the busiest SM
// fewer rows and every SM a CTA (row_shape.h: kGrouped128x3, choose_grouped_layout). A
// transforming op's rows take each group's own bulk copies instead (row_grouped_own_copies.cuh, row_shape.h:
// kGroupedOwnCopiesTransform64x6 and 32x6), or with INT8DIT_QUANT_GROUPED=staged its staged layouts
// (kStagedTransform64x6 and 32x6), or with INT8DIT_QUANT_GROUPED=registers one CTA an SM of
// kGroupedTransformCtaThreads. With INT8DIT_QUANT_GROUP_THREADS=double, the one-input ops' rows (LayerNorm, RMSNorm,
// SmoothQuant's division) take the doubled layouts (kGroupedDoubled128x3 and 64x3) wherever those take the call.
template <typename T, typename Op>
Status launch_grouped_rows(const RowArgs<T>& a, const Op& op, cudaStream_t stream, bool* launched) {
  *launched = false;
  const int group_threads = grouped_row_threads(a.cols, true);
  if (group_threads == 0) return Status::Ok();
  int device = 0, sms = 0;
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDevice(&device), "cudaGetDevice"));
  INT8DIT_RETURN_IF_ERROR(
      detail::cuda_status(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute"));
  constexpr int kVecs = kGroupedVecsPerThread;
  // A layout alone: planned, and launched where it takes the call.
  auto launch_in = [&](auto&& rows) -> Status {
    INT8DIT_RETURN_IF_ERROR(rows.plan(a, op, sms));
    if (rows.busiest_sm_rows > 0) rows.launch(a, op, stream), *launched = true;
    return Status::Ok();
  };
  if constexpr (TransformsInput<Op>::value) {
    const GroupedTransformRows how = row_path_config().grouped_transform;
    if (how == GroupedTransformRows::kBulk) {
      constexpr GroupedLayout r32 = kGroupedOwnCopiesTransform32x6, r64 = kGroupedOwnCopiesTransform64x6;
      static_assert(r32.vecs == kVecs && r64.vecs == kVecs && r32.group_threads == 32 && r64.group_threads == 64);
      if (group_threads == 32) return launch_in(GroupedLaunch<T, Op, kVecs, 32, r32.groups, false, true>{});
      return launch_in(GroupedLaunch<T, Op, kVecs, 64, r64.groups, false, true>{});
    }
    if (how == GroupedTransformRows::kStaged) {
      constexpr GroupedLayout l32 = kStagedTransform32x6, l64 = kStagedTransform64x6;
      static_assert(l32.vecs == kVecs && l64.vecs == kVecs && l32.group_threads == 32 && l64.group_threads == 64);
      if (group_threads == 32) return launch_in(GroupedLaunch<T, Op, kVecs, 32, l32.groups, true>{});
      return launch_in(GroupedLaunch<T, Op, kVecs, 64, l64.groups, true>{});
    }
    // One layout a group size, one CTA an SM (row_shape.h: kGroupedTransformCtaThreads).
    if (group_threads == 32) return launch_in(GroupedLaunch<T, Op, kVecs, 32, kGroupedTransformCtaThreads / 32>{});
    return launch_in(GroupedLaunch<T, Op, kVecs, 64, kGroupedTransformCtaThreads / 64>{});
  } else {
    // INT8DIT_QUANT_GROUP_THREADS=double: the rows over twice the threads, wherever that layout fits the row and takes
    // the call; otherwise the library's layouts below.
    if (row_path_config().group_threads == GroupThreads::kDouble) {
      constexpr GroupedLayout d64 = kGroupedDoubled64x3, d128 = kGroupedDoubled128x3;
      if (group_threads == 32 && grouped_layout_fits(a.cols, d64)) {
        GroupedLaunch<T, Op, d64.vecs, d64.group_threads, d64.groups> rows;
        INT8DIT_RETURN_IF_ERROR(launch_in(rows));
        if (*launched) return Status::Ok();
      }
      if (group_threads == 64 && grouped_layout_fits(a.cols, d128)) {
        GroupedLaunch<T, Op, d128.vecs, d128.group_threads, d128.groups> rows;
        INT8DIT_RETURN_IF_ERROR(launch_in(rows));
        if (*launched) return Status::Ok();
      }
    }
    if (group_threads == 32) return launch_in(GroupedLaunch<T, Op, kVecs, 32, kGroupedCtaThreads / 32>{});
    static_assert(kGrouped64x6.group_threads * kGrouped64x6.groups == kGroupedCtaThreads && kGrouped64x6.vecs == kVecs);
    GroupedLaunch<T, Op, kGrouped64x6.vecs, kGrouped64x6.group_threads, kGrouped64x6.groups> rows64;
    GroupedLaunch<T, Op, kGrouped128x3.vecs, kGrouped128x3.group_threads, kGrouped128x3.groups> rows128;
    constexpr GroupedLayout r = kGroupedRing64x6;
    // Named only where the op takes it: a GroupedLaunch instantiates its kernel.
    using Ring = GroupedLaunch<T, Op, r.vecs, r.group_threads, r.groups, false, true>;
    std::conditional_t<TakesGroupedRing<Op>::value, Ring, NoGroupedLayout> ring;
    INT8DIT_RETURN_IF_ERROR(rows64.plan(a, op, sms));
    if (grouped_layout_fits(a.cols, kGrouped128x3)) INT8DIT_RETURN_IF_ERROR(rows128.plan(a, op, sms));
    INT8DIT_RETURN_IF_ERROR(ring.plan(a, op, sms));
    switch (choose_grouped_layout(rows64.busiest_sm_rows, rows128.busiest_sm_rows, rows128.grid, ring.busiest_sm_rows, sms)) {
      case GroupedLayoutChoice::kRing64x6:
        ring.launch(a, op, stream), *launched = true;
        break;
      case GroupedLayoutChoice::k128x3:
        rows128.launch(a, op, stream), *launched = true;
        break;
      case GroupedLayoutChoice::k64x6:
        rows64.launch(a, op, stream), *launched = true;
        break;
      case GroupedLayoutChoice::kNone:
        break;
    }
    return Status::Ok();
  }
}

// Calls `launch` with the op a cached kernel runs: wrapped in WithRowBlocks (contiguous rows a CTA)
// where the op's channel values change between the call's rows (LayerNorm with several batch
// elements), else the op itself (strided rows, as measured before).
template <typename Op, typename Launch>
Status with_cached_rows(const Op& op, int64_t rows, Launch&& launch) {
  if constexpr (Op::kChannelsVaryByRow) {
    if (op.channels_vary(rows)) return launch(with_row_blocks(op));
  }
  return launch(op);
}

// The op's channel cache above kMaxChannelCacheBytes, with registers capped for two CTAs an SM
// (row_kernels.cuh: kMaxCappedChannelCacheBytes): launched only where two such CTAs fit an SM of this
// device; elsewhere *launched stays false and nothing is launched. No L1-keeping carveout cap here
// (resident_ctas' keep_l1): two CTAs of up to 96 KB need more than its 164 KB, and one CTA an SM
// measured slower (bench/results/h200/quant_layout_4096x12288_cache_capped.txt).
template <typename T, typename Op, int kVecs>
Status launch_capped_cache(const RowArgs<T>& a, const Op& op, int threads, cudaStream_t stream, bool* launched) {
  constexpr int kMinCtas = 2;
  auto kernel = row_quantize_registers<T, Op, kVecs, true, true, false, kMinCtas>;
  static ResidentCtaCache cache = {};
  *launched = false;
  int ctas = 0, device = 0, sms = 0;
  INT8DIT_RETURN_IF_ERROR(
      resident_ctas(kernel, cache, threads, channel_cache_bytes_per_thread<Op, kVecs>() * kMaxRowThreads, &ctas));
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDevice(&device), "cudaGetDevice"));
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                                              "cudaDeviceGetAttribute"));
  if (ctas < kMinCtas * sms) return Status::Ok();
  const size_t smem = channel_cache_bytes_per_thread<Op, kVecs>() * threads;
  static std::atomic<int> sm90[kMaxDevices] = {};
  const int64_t grid = std::min<int64_t>(a.rows, ctas);
  launch_row_kernel(kernel, sm90, /*smem_sized_grid=*/false, grid, threads, smem, stream, a, for_grid(op, a.rows, grid));
  *launched = true;
  return Status::Ok();
}

// The bulk-copy ring kernel (row_bulk_ring.cuh), persistent: as many CTAs as fit, at most one a row.
// Sets *launched to false, launching nothing, where the loaded binary has no sm_90 code for it.
template <typename T, typename Op, int kVecs, bool kCache, bool kRecips>
Status launch_ring(const RowArgs<T>& a, const Op& op, int threads, int stages, cudaStream_t stream, bool* launched) {
  auto kernel = row_quantize_bulk_ring<T, Op, kVecs, kCache, kRecips>;
  static std::atomic<int> sm90[kMaxDevices] = {};
  *launched = false;
  if (!runs_sm90_code(kernel, sm90)) return Status::Ok();
  // NOTE: the stage count is fixed for the process (row_path_config), so the shared memory a CTA
  // takes is a function of its thread count, which is what the resident-CTA cache is keyed by.
  static ResidentCtaCache cache = {};
  const size_t per_thread = ring_smem_bytes_per_thread<Op, kVecs, kCache, kRecips>(stages);
  int ctas = 0;
  bool smem_sized = false;
  INT8DIT_RETURN_IF_ERROR(resident_ctas(kernel, cache, threads, per_thread * kMaxRowThreads, &ctas, kMaxRowThreads,
                                        /*keep_l1=*/false, &smem_sized));
  launch_row_kernel(kernel, sm90, smem_sized, std::min<int64_t>(a.rows, ctas), threads,
                    per_thread * threads, stream, a, op, stages);
  *launched = true;
  return Status::Ok();
}

// The ring kernel's variant for a call: SmoothQuant's reciprocals where there is a divisor, else the
// op's channel cache where it fits kMaxChannelCacheBytes (as the register kernel), else neither.
template <typename T, typename Op, int kVecs>
Status launch_ring_for(const RowArgs<T>& a, const Op& op, int threads, int stages, cudaStream_t stream, bool* launched) {
  if (a.smooth) return launch_ring<T, Op, kVecs, false, true>(a, op, threads, stages, stream, launched);
  if constexpr (caches_channels<Op, kVecs>()) {
    if (channel_cache_bytes_per_thread<Op, kVecs>() * threads <= kMaxChannelCacheBytes)
      return launch_ring<T, Op, kVecs, true, false>(a, op, threads, stages, stream, launched);
  }
  return launch_ring<T, Op, kVecs, false, false>(a, op, threads, stages, stream, launched);
}

// The wide SmoothQuant kernel (row_path.h: takes_wide_reciprocals): the register kernel with the
// divisors' reciprocals at wide_row_threads(cols) threads x kWideVecsPerThread vectors, persistent, as
// many CTAs as fit (one an SM on the H200: 480 threads at 96 registers for bf16, 101 for fp16, no
// spills; 60 KB of reciprocals), laid out as the layout probe timed it (bench/quant/layout_probe.cu). Only where the loaded binary has
// sm_90 code for it (it was measured on Hopper only, against the ring it replaces there); elsewhere,
// and for a row it does not hold, *launched stays false and nothing is launched.
template <typename T, typename Op>
Status launch_wide_reciprocals(const RowArgs<T>& a, const Op& op, cudaStream_t stream, bool* launched) {
  *launched = false;
  const int threads = wide_row_threads(a.cols);
  if (threads == 0) return Status::Ok();
  static std::atomic<int> sm90[kMaxDevices] = {};
  if (!runs_sm90_code(row_quantize_registers<T, Op, kWideVecsPerThread, true, false, true, 0, kWideRowThreads>, sm90))
    return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(
      (launch_persistent<T, Op, kWideVecsPerThread, false, true, kWideRowThreads>(a, op, threads, stream)));
  *launched = true;
  return Status::Ok();
}

// The vectorized kernel for an op and a row shape: the bulk-copy ring where the row path says so
// (row_path.h: takes_bulk_ring), else the register-row kernel. The register kernel is persistent
// (each CTA loads its next row while it works on the current one, so loads stay in flight through
// the row's reductions) for ops with row
// statistics (LayerNorm, RMSNorm) and for CTAs of 192+ threads, of which only 1-2 fit an SM and one
// CTA a row leaves the SM waiting between a CTA's end and the next one's first loads; one CTA a row
// otherwise, where many small CTAs an SM overlap on their own. Measured on the H200 at 4096 x 3072
// and 4096 x 12288 (bench/results/h200/quant_layout_*.txt): quantize_rows 12.7 us one CTA a row vs
// 13.0 persistent at 96 threads, GELU 54.2 vs 48.9 at 256 threads, LayerNorm 19.1 vs 17.8 at 64.
// SmoothQuant calls at 4 or 6 vectors a thread run persistent with the divisors' reciprocals
// (smooth_division.h): 72.4 -> 55.8 us at 4096 x 12288 (the IEEE division, one CTA a row, before).
// Not at 8 vectors a thread, where the next row's registers leave one 256-thread CTA an SM: there
// quantize_rows with a divisor takes the wide kernel on Hopper (4 vectors a thread, up to 512
// threads: 80.3 us at 4608 x 15360 against the ring's 88.5, quant_layout_4608x15360_wide.txt).
template <typename T, typename Op, int kVecs>
Status launch_vector_rows(const RowArgs<T>& a, const Op& op, int threads, cudaStream_t stream, const char* name) {
  constexpr bool kStats = Op::kStatPasses > 0;
  const RowPathConfig& path = row_path_config();
  // NOTE: instantiated for quantize_rows' 8-vector rows only: the other ops would each compile a
  // wide kernel that no path takes.
  if constexpr (kVecs == 8 && std::is_same_v<Op, IdentityOp>) {
    if (takes_wide_reciprocals(path.path, kVecs, true, a.smooth != nullptr)) {
      bool launched = false;
      INT8DIT_RETURN_IF_ERROR((launch_wide_reciprocals<T, Op>(a, op, stream, &launched)));
      if (launched) return detail::last_launch_status(name);
    }
  }
  // NOTE: the ring copies one input row into shared memory and works on it as loaded; an op reading two
  // inputs, or transforming its row, never takes it.
  if constexpr (!ReadsSecondInput<Op>::value && !TransformsInput<Op>::value) {
    if (takes_bulk_ring(path.path, kVecs, a.smooth != nullptr)) {
      bool launched = false;
      INT8DIT_RETURN_IF_ERROR((launch_ring_for<T, Op, kVecs>(a, op, threads, path.ring_stages, stream, &launched)));
      if (launched) return detail::last_launch_status(name);
    }
  }
  if constexpr (smooth_takes_reciprocals(kVecs)) {
    if (a.smooth) {
      INT8DIT_RETURN_IF_ERROR((launch_persistent<T, Op, kVecs, false, true>(a, op, threads, stream)));
      return detail::last_launch_status(name);
    }
  }
  if constexpr (kVecs < 8 && (kStats || kVecs == 6)) {
    if (kStats || threads >= 192) {
      if constexpr (caches_channels<Op, kVecs>()) {
        const size_t cache_bytes = channel_cache_bytes_per_thread<Op, kVecs>() * threads;
        if (cache_bytes <= kMaxChannelCacheBytes) {
          INT8DIT_RETURN_IF_ERROR(with_cached_rows(op, a.rows, [&](const auto& o) {
            return launch_persistent<T, std::decay_t<decltype(o)>, kVecs, true>(a, o, threads, stream);
          }));
          return detail::last_launch_status(name);
        }
        // Only ops whose cache can outgrow the uncapped limit (LayerNorm; not RMSNorm) get the capped kernel.
        if constexpr (kVecs == 6 && channel_cache_bytes_per_thread<Op, kVecs>() * kMaxRowThreads > kMaxChannelCacheBytes) {
          if (cache_bytes <= kMaxCappedChannelCacheBytes) {
            bool launched = false;
            INT8DIT_RETURN_IF_ERROR(with_cached_rows(op, a.rows, [&](const auto& o) {
              return launch_capped_cache<T, std::decay_t<decltype(o)>, kVecs>(a, o, threads, stream, &launched);
            }));
            if (launched) return detail::last_launch_status(name);
          }
        }
      }
      if constexpr (kVecs == 6 || !caches_channels<Op, kVecs>()) {
        INT8DIT_RETURN_IF_ERROR((launch_persistent<T, Op, kVecs, false>(a, op, threads, stream)));
        return detail::last_launch_status(name);
      }
    }
  }
  const int64_t grid = std::min<int64_t>(a.rows, 0x7fffffff);  // grid.x's limit; the kernel strides past it
  static std::atomic<int> sm90[kMaxDevices] = {};
  launch_row_kernel(row_quantize_registers<T, Op, kVecs, false, false>, sm90, /*smem_sized_grid=*/false, grid, threads,
                    0, stream, a, op);
  return detail::last_launch_status(name);
}

// SmoothQuant's plain rows on their own layout (row_shape.h: smooth_row_shape): one CTA a row of
// kVecs (2 or 3) vectors a thread, the IEEE division.
template <typename T, int kVecs>
Status launch_smooth_rows(const RowArgs<T>& a, int threads, cudaStream_t stream, const char* name) {
  static std::atomic<int> sm90[kMaxDevices] = {};
  const int64_t grid = std::min<int64_t>(a.rows, 0x7fffffff);  // grid.x's limit; the kernel strides past it
  launch_row_kernel(row_quantize_registers<T, IdentityOp, kVecs, false, false>, sm90, /*smem_sized_grid=*/false, grid,
                    threads, 0, stream, a, IdentityOp{});
  return detail::last_launch_status(name);
}

// `op_vector_ok`: the op's own per-channel vectors allow 16-byte loads.
template <typename T, typename Op>
Status launch_row_quantize(const RowArgs<T>& a, const Op& op, bool op_vector_ok, cudaStream_t stream,
                           const char* name) {
  if (a.rows == 0) return Status::Ok();
  if (const std::string& bad = row_path_config().error; !bad.empty())
    return Status(StatusCode::kInvalidArgument, std::string(name) + ": " + bad);
  if constexpr (std::is_same_v<Op, IdentityOp>) {
    // quantize_rows with a divisor on the grouped kernel's rows (Hopper): the division as its op,
    // the divisors and their reciprocals cached for the CTA's groups.
    if (a.smooth && op_vector_ok && vectorizable(a) && row_path_config().path == RowPath::kAuto) {
      SmoothDivisionOp divide;
      divide.smooth = a.smooth;
      bool launched = false;
      INT8DIT_RETURN_IF_ERROR(launch_grouped_rows(a, divide, stream, &launched));
      if (launched) return detail::last_launch_status(name);
    }
    // quantize_rows with a divisor, up to 6144 columns (INT8DIT_QUANT_ROWS=bulk keeps the ring).
    if (a.smooth && op_vector_ok && vectorizable(a) && row_path_config().path != RowPath::kBulkRing) {
      const RowLaunchShape sq = smooth_row_shape(a.cols);
      if (sq.vecs_per_thread == 3) return launch_smooth_rows<T, 3>(a, sq.threads_per_row, stream, name);
      if (sq.vecs_per_thread == 2) return launch_smooth_rows<T, 2>(a, sq.threads_per_row, stream, name);
    }
  }
  const bool vector_ok = op_vector_ok && vectorizable(a);
  // The norms' rows of 1152..1536 and 2304..3072 columns: several a CTA, sharing the channel cache
  // (row_shape.h: grouped_row_threads). Not with a divisor (their ops' cached kernels have none; the
  // fused ops' divisor calls take the reciprocal kernels) nor where INT8DIT_QUANT_ROWS names a path.
  if constexpr (takes_grouped_rows<Op>()) {
    if (!a.smooth && vector_ok && row_path_config().path == RowPath::kAuto) {
      bool launched = false;
      INT8DIT_RETURN_IF_ERROR(launch_grouped_rows(a, op, stream, &launched));
      if (launched) return detail::last_launch_status(name);
    }
  }
  // LayerNorm's 1536-column rows take two warps only where the two-warp grid launches programmatically and
  // the one-warp grid would not (Hopper, INT8DIT_PDL not 0): that is what measured faster; elsewhere every
  // grid launches in stream order and the rows keep the layout measured there.
  bool two_warps = false;
  if constexpr (OneWarpRowsInStreamOrder<Op>::value) {
    static std::atomic<int> sm90[kMaxDevices] = {};
    two_warps = !a.smooth && !detail::env_disables_pdl() && runs_sm90_code(row_quantize_registers<T, Op, 4, true, true>, sm90);
  }
  const RowLaunchShape s = two_warps ? two_warp_row_launch_shape(a.cols, vector_ok)
                                     : row_launch_shape(a.cols, vector_ok, a.smooth ? 4 : kPreferredVecsPerThread);
  switch (s.vecs_per_thread) {
    case 0: {
      if constexpr (TakesWideRows<Op>::value) {
        // Over 16384 columns: one CTA a row of up to 512 threads x 6 vectors (registers capped at 128
        // by the launch bound). Not persistent: the next row's gate and up would need 48 more registers.
        const int threads = wide_transform_row_threads(a.cols);
        if (threads > 0 && op_vector_ok && vectorizable(a)) {
          static std::atomic<int> sm90[kMaxDevices] = {};
          const int64_t grid = std::min<int64_t>(a.rows, 0x7fffffff);  // the kernel strides past grid.x's limit
          launch_row_kernel(row_quantize_registers<T, Op, kWideTransformVecsPerThread, false, false, false, 0,
                                                   kWideRowThreads>,
                            sm90, /*smem_sized_grid=*/false, grid, threads, 0, stream, a, op);
          return detail::last_launch_status(name);
        }
      }
      if constexpr (TransformsInput<Op>::value) {
        // The entry point checks the layout first; the scalar kernel has no transform.
        return Status(StatusCode::kInternal, std::string(name) + ": the transforming op reached the scalar path");
      } else {
        static std::atomic<int> sm90[kMaxDevices] = {};
        launch_row_kernel(row_quantize_streaming<T, Op>, sm90, /*smem_sized_grid=*/false, a.rows, s.threads_per_row, 0,
                          stream, a, op);
        return detail::last_launch_status(name);
      }
    }
    case 1: return launch_vector_rows<T, Op, 1>(a, op, s.threads_per_row, stream, name);
    case 2: return launch_vector_rows<T, Op, 2>(a, op, s.threads_per_row, stream, name);
    case 4: return launch_vector_rows<T, Op, 4>(a, op, s.threads_per_row, stream, name);
    case 6: return launch_vector_rows<T, Op, 6>(a, op, s.threads_per_row, stream, name);
    case 8: return launch_vector_rows<T, Op, 8>(a, op, s.threads_per_row, stream, name);
    default: return Status(StatusCode::kInternal, std::string(name) + ": no kernel for this row length");
  }
}

}  // namespace int8dit::quant
