// int8dit_pdl_placement_probe: where the CTAs of back-to-back persistent launches land, with and
// without programmatic dependent launch (PDL), for the question of docs/quantization_history.md (Next 0):
// the one-warp LayerNorm rows (1536 columns: 32 threads, 12 KB of channel cache a CTA, the 71%
// carveout that holds 12 CTAs an SM) take ~7% longer back to back with PDL than in stream order,
// while the wider row kernels gain from it. One guess is that CTAs of the next launch, placed while
// the previous launch still runs, are not held to the CTAs an SM that the persistent grid is sized
// for. This probe launches a marker kernel with the same launch footprint (threads, dynamic shared
// memory, carveout hint, a grid of exactly the resident CTAs, launch_dependents at its start as the
// row kernels do), which records for every CTA its SM, its warp slot and global-timer stamps, and
// reports per launch: CTAs an SM (min / max), the most CTAs of any two launches resident on one SM
// at once (from each CTA's arrival, waiting included), how many CTAs arrived before the previous
// launch ended ("early"), how many warps share a scheduler (warp slot % 4) at most, and the spread of
// start times.
//
//   int8dit_pdl_placement_probe [THREADS SMEM_BYTES CARVEOUT_PERCENT SPIN_US LAUNCHES]
//   (default 32 12288 71 16 20: the one-warp LayerNorm CTA at 8192 x 1536, ~16 us a launch)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "timing.h"

namespace {

using bench_quant::check_cuda;

// One a warp: lane 0 of every warp writes its own (warp_in_cta 0 stands for the CTA).
struct CtaRecord {
  uint32_t sm = 0, warp_slot = 0, warp_in_cta = 0;
  uint64_t arrive_ns = 0;  // when the CTA began, before griddepcontrol.wait: it holds its SM slot from here
  uint64_t start_ns = 0, end_ns = 0;  // after griddepcontrol.wait, and when the CTA is done
};

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Holds its SM slot for spin_ns after the previous launch completes, as a persistent row kernel holds
// it for its rows; dynamic shared memory is only occupied (its size sets the CTAs an SM).
__global__ void marker(CtaRecord* records, uint64_t spin_ns) {
  const uint64_t arrive = global_ns();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  const uint64_t start = global_ns();
  while (global_ns() - start < spin_ns) {
  }
  if (threadIdx.x % 32 == 0) {
    uint32_t sm, slot;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    asm volatile("mov.u32 %0, %%warpid;" : "=r"(slot));
    const uint32_t warp = threadIdx.x / 32;
    records[blockIdx.x * (blockDim.x / 32) + warp] = {sm, slot, warp, arrive, start, global_ns()};
  }
}

struct LaunchStats {
  int min_per_sm = 0, max_per_sm = 0, max_warps_per_scheduler = 0;
  double start_spread_us = 0;  // last CTA's start - first CTA's start
  double span_us = 0;          // first start to last end
};

// NOTE: counted by the %smid values seen, which need not be 0..sms-1 on every part; SMs that got no CTA
// make the minimum 0.
LaunchStats stats_of(const std::vector<CtaRecord>& r, int sms) {
  std::map<uint32_t, int> per_sm;
  std::map<std::pair<uint32_t, uint32_t>, int> per_scheduler;
  uint64_t first = UINT64_MAX, last = 0, end = 0;
  for (const CtaRecord& c : r) {
    per_sm[c.sm] += c.warp_in_cta == 0;
    ++per_scheduler[{c.sm, c.warp_slot % 4}];
    first = std::min(first, c.start_ns), last = std::max(last, c.start_ns), end = std::max(end, c.end_ns);
  }
  LaunchStats s;
  s.min_per_sm = INT32_MAX;
  for (const auto& [sm, n] : per_sm) s.min_per_sm = std::min(s.min_per_sm, n), s.max_per_sm = std::max(s.max_per_sm, n);
  if (static_cast<int>(per_sm.size()) < sms) s.min_per_sm = 0;  // an SM that got no CTA
  for (const auto& [key, n] : per_scheduler) s.max_warps_per_scheduler = std::max(s.max_warps_per_scheduler, n);
  s.start_spread_us = (last - first) / 1e3;
  s.span_us = (end - first) / 1e3;
  return s;
}

// The most warps (of launches a and b together) resident on one SM at one instant, a warp counting from
// its arrival (waiting in griddepcontrol.wait included) to its end; divide by the warps a CTA for CTAs.
int max_overlap_per_sm(const std::vector<CtaRecord>& a, const std::vector<CtaRecord>& b) {
  std::map<uint32_t, std::vector<std::pair<uint64_t, int>>> events;  // SM -> (time, +1 arrival / -1 end)
  for (const auto* launch : {&a, &b})
    for (const CtaRecord& c : *launch) events[c.sm].push_back({c.arrive_ns, 1}), events[c.sm].push_back({c.end_ns, -1});
  int most = 0;
  for (auto& [sm, ev] : events) {
    std::sort(ev.begin(), ev.end(), [](const auto& x, const auto& y) { return x.first != y.first ? x.first < y.first : x.second < y.second; });
    int now = 0;
    for (const auto& e : ev) most = std::max(most, now += e.second);
  }
  return most;
}

void run(bool pdl, int threads, int smem, int carveout, uint64_t spin_ns, int launches, int grid, int sms) {
  const int warps = threads / 32;
  const int records = grid * warps;  // a launch's
  CtaRecord* d = bench_quant::device_alloc<CtaRecord>(static_cast<size_t>(records) * launches);
  cudaStream_t stream;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  for (int i = 0; i < launches; ++i) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(static_cast<unsigned>(grid));
    cfg.blockDim = dim3(static_cast<unsigned>(threads));
    cfg.dynamicSmemBytes = static_cast<size_t>(smem);
    cfg.stream = stream;
    cfg.attrs = pdl ? &attr : nullptr;
    cfg.numAttrs = pdl ? 1 : 0;
    check_cuda(cudaLaunchKernelEx(&cfg, marker, d + static_cast<size_t>(i) * records, spin_ns), "launch");
  }
  check_cuda(cudaStreamSynchronize(stream), "sync");
  std::vector<CtaRecord> h(static_cast<size_t>(records) * launches);
  check_cuda(cudaMemcpy(h.data(), d, h.size() * sizeof(CtaRecord), cudaMemcpyDeviceToHost), "copy");
  std::printf("\n%s, %d launches of %d CTAs (%d threads, %d B dynamic shared memory, carveout %d%%):\n",
              pdl ? "PDL (launch_dependents at the start, as the row kernels)" : "stream order", launches, grid, threads,
              smem, carveout);
  std::printf("%6s %10s %10s %16s %16s %8s %14s %10s\n", "launch", "min/SM", "max/SM", "max warps/sched",
              "max with prev/SM", "early", "start spread", "span us");
  for (int i = 0; i < launches; ++i) {
    const std::vector<CtaRecord> cur(h.begin() + static_cast<ptrdiff_t>(i) * records,
                                     h.begin() + static_cast<ptrdiff_t>(i + 1) * records);
    const LaunchStats s = stats_of(cur, sms);
    int overlap = 0, early = 0;
    if (i > 0) {
      const std::vector<CtaRecord> prev(h.begin() + static_cast<ptrdiff_t>(i - 1) * records,
                                        h.begin() + static_cast<ptrdiff_t>(i) * records);
      overlap = max_overlap_per_sm(prev, cur) / warps;
      uint64_t prev_end = 0;
      for (const CtaRecord& c : prev) prev_end = std::max(prev_end, c.end_ns);
      for (const CtaRecord& c : cur) early += c.warp_in_cta == 0 && c.arrive_ns < prev_end;
    }
    std::printf("%6d %10d %10d %16d %16d %8d %11.2f us %10.2f\n", i, s.min_per_sm, s.max_per_sm,
                s.max_warps_per_scheduler, overlap, early, s.start_spread_us, s.span_us);
  }
  cudaFree(d);
  cudaStreamDestroy(stream);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::printf("usage: int8dit_pdl_placement_probe [THREADS SMEM_BYTES CARVEOUT_PERCENT SPIN_US LAUNCHES]\n"
                "  (default 32 12288 71 16 20: the one-warp LayerNorm CTA at 8192 x 1536; see the file's header)\n");
    return 0;
  }
  if (argc != 1 && argc != 6) {
    std::fprintf(stderr, "int8dit_pdl_placement_probe: give all five numbers or none (try --help)\n");
    return 2;
  }
  const int threads = argc == 6 ? std::atoi(argv[1]) : 32;
  const int smem = argc == 6 ? std::atoi(argv[2]) : 12288;
  const int carveout = argc == 6 ? std::atoi(argv[3]) : 71;
  const double spin_us = argc == 6 ? std::atof(argv[4]) : 16.0;
  const int launches = argc == 6 ? std::atoi(argv[5]) : 20;
  if (threads < 32 || threads > 1024 || threads % 32 || smem < 0 || carveout < 0 || carveout > 100 || !(spin_us > 0) ||
      launches < 2) {
    std::fprintf(stderr, "int8dit_pdl_placement_probe: THREADS a multiple of 32 up to 1024, SMEM >= 0, CARVEOUT 0..100, "
                         "SPIN_US > 0 and LAUNCHES >= 2\n");
    return 2;
  }
  int device = 0, sms = 0, cc = 0, per_sm = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "sm count");
  check_cuda(cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, device), "cc");
  if (cc < 9) {
    std::fprintf(stderr, "int8dit_pdl_placement_probe: programmatic dependent launch needs sm_90 or newer\n");
    return 1;
  }
  check_cuda(cudaFuncSetAttribute(marker, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "smem opt-in");
  check_cuda(cudaFuncSetAttribute(marker, cudaFuncAttributePreferredSharedMemoryCarveout, carveout), "carveout");
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, marker, threads, smem), "occupancy");
  if (per_sm == 0) {
    std::fprintf(stderr, "int8dit_pdl_placement_probe: no CTA of %d threads and %d B of shared memory fits an SM at "
                         "a %d%% carveout: ask for less shared memory or a larger carveout\n", threads, smem, carveout);
    return 1;
  }
  const int grid = per_sm * sms;  // the persistent grid, as resident_ctas() sizes it
  std::printf("%d SMs, %d CTAs an SM by the occupancy API: grid %d\n", sms, per_sm, grid);
  const auto spin_ns = static_cast<uint64_t>(spin_us * 1e3);
  run(false, threads, smem, carveout, spin_ns, launches, grid, sms);
  run(true, threads, smem, carveout, spin_ns, launches, grid, sms);
  return 0;
}
