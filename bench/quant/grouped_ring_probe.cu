// int8dit_quant_grouped_ring_probe [OP [M [K]]]: the grouped row kernel (row_grouped.cuh) against the same
// rows fed from a deep ring of shared-memory row slots that one producer thread fills with bulk copies
// (cp.async.bulk, the TMA's 1-D form), in one process, outputs compared byte for byte.
//
// Why: the grouped kernel streams 5-9% under the copy's rate (docs/quantization.md, "What the grouped
// layout costs on its own") where quantize_rows' one-row CTAs stream at it. Each of its groups holds one
// next row in registers, so an SM has at most 8 rows in flight and none while a group's next row is already
// in; every earlier way of putting more bytes in flight (rows asked of L2, a cp.async stage a thread, more
// groups) cost registers, instructions or the first rows' latency. Here a CTA's rows are in flight
// `stages` deep at no register or instruction cost to its groups (one bulk copy a row, from a producer
// warp that does nothing else), and the groups' rows, their reductions and their channel cache are the
// library's: only where a row's vectors come from differs. It asks whether depth buys the rate.
//
// Each CTA takes exactly the rows its groups take in the library's kernel, in the same order (group g the
// CTA's rows k = g, g + 4, ...; row_shape.h grouped_rows_of), so the grid is the library's balanced one.
// The ring: slot k % stages holds the CTA's k-th row; a full barrier a slot (one arrival, the copy's bytes)
// and an empty barrier a slot (the group's 64 threads each arrive once they hold their vectors). Stages are a
// multiple of the groups: slot s then holds group s % 4's rows only, which it reads in order, so a wait on a
// slot's parity is never two phases early (with 2 stages, group 0 could find row 4's parity "done" while the
// slot still held group 2's row 2).
//
// Also timed: the library's kernel in 8 groups a CTA (one 512-thread CTA an SM), its groups with no row ahead, and
// the 8-group ring at 8 slots (the library's row_grouped_ring.cuh form) with its producer copying each group's
// next row as soon as that group's slot is free instead of in the CTA's row order (stop 55: as fast as the row
// order, 0.995-1.008 of it; bench/results/h100/quant_grouped_ring.txt); and the library's own 128 x 3 layout in 7
// groups and its ring kernel (row_grouped_ring.cuh) in 8 and 9 groups a CTA, for 4608-row calls; and the groups
// each issuing their own row's bulk copy (row_grouped_own_copies.cuh) in 8 groups a CTA with no producer warp.
// Prints only: a probe, not a results file. OP: layernorm (default), smooth (quantize_rows with a SmoothQuant
// divisor), rmsnorm, plain (quantize_rows' own work in the grouped layout); M default 4096, K default 3072
// (2304..3072, a multiple of 8: the 64 x 6 layout, 4 groups a CTA). INT8DIT_RING_STAGES: the stage counts
// to time (default "4,8,12,16,24": multiples of the 4 groups, so that a slot is always one group's; each
// barrier's parity then never runs two phases ahead of the group that waits on it), each in CTAs of 4 groups
// (two an SM, as the library's) and, where a multiple of 8, of 8 groups (one CTA an SM, one channel cache).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "quant/row_bulk_ring.cuh"
#include "quant/row_grouped.cuh"
#include "quant/row_grouped_own_copies.cuh"
#include "quant/row_grouped_ring.cuh"
#include "grouped_probe_ops.h"
#include "quant/row_ops.cuh"
#include "timing.h"

namespace {

using bench_quant::check_cuda;
using bench_quant::device_alloc;
using int8dit::quant::GroupedRows;
using int8dit::quant::RowArgs;
using T = __nv_bfloat16;
constexpr int kVecs = 6, kGroupThreads = 64, kGroups = 4;
constexpr int kConsumerThreads = kGroupThreads * kGroups;
constexpr int kMaxStages = 24;
constexpr int kWideGroups = 8;  // the ring's second form: one 544-thread CTA an SM, 8 groups, one channel cache

using grouped_probe::PlainRowsOp;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
// Whether the barrier's phase of this parity has completed, without waiting (mbarrier.test_wait).
__device__ __forceinline__ bool phase_done(uint64_t* bar, uint32_t parity) {
  uint32_t done = 0;
  asm volatile(
      "{\n .reg .pred p;\n mbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
      : "=r"(done)
      : "r"(int8dit::quant::smem_address(bar)), "r"(parity)
      : "memory");
  return done != 0;
}
// The CTA's k-th row (the library's order: grouped_rows_of for group 0, k % groups the group).
template <int kCtaGroups>
__device__ __forceinline__ int64_t cta_row(const int8dit::quant::GroupedRowRange& r, int k) {
  return r.first + static_cast<int64_t>(k / kCtaGroups) * r.step + k % kCtaGroups;
}
#endif

// Dynamic shared memory: the op's channel cache (as the grouped kernel), then `stages` row slots of
// kVecs x kGroupThreads 16-byte vectors.
template <typename Op>
size_t ring_kernel_smem(int stages) {
  return int8dit::quant::grouped_channel_cache_bytes<Op, kVecs, kGroupThreads>() +
         static_cast<size_t>(stages) * kVecs * kGroupThreads * sizeof(uint4);
}

// kCtaGroups 4: two CTAs an SM (the launch bounds cap the registers for that), as the library's 64 x 6
// grid; 8: one CTA an SM.
template <typename Op, int kCtaGroups>
__global__ void __launch_bounds__(kGroupThreads* kCtaGroups + 32, kCtaGroups == 4 ? 2 : 1)
    grouped_ring_rows(RowArgs<T> a, Op op, GroupedRows parts, int stages, bool as_slots_free) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using namespace int8dit::quant;
  constexpr int kGroups = kCtaGroups, kConsumerThreads = kGroupThreads * kCtaGroups;
  release_dependent_launch();
  wait_for_previous_grid();
  a.smooth = nullptr;  // as the grouped kernel: its ops divide themselves
  extern __shared__ float4 channel_cache[];
  __shared__ float partials[kGroups][2][kGroupThreads / 32];
  __shared__ uint64_t full[kMaxStages], empty[kMaxStages];
  constexpr int kSlotVecs = kVecs * kGroupThreads;
  uint4* const ring = reinterpret_cast<uint4*>(channel_cache + grouped_channel_cache_bytes<Op, kVecs, kGroupThreads>() / sizeof(float4));
  const GroupedRowRange rows = grouped_rows_of(static_cast<int>(blockIdx.x), 0, kGroups, a.rows, parts);
  const uint32_t row_bytes = static_cast<uint32_t>(a.cols * sizeof(T));
  const int tid = static_cast<int>(threadIdx.x);
  const bool is_producer = tid == kConsumerThreads;  // lane 0 of the last warp; its other lanes idle

  uint64_t policy = 0;
  if (is_producer) {
    for (int s = 0; s < stages; ++s) bulk::barrier_init_count(&full[s], 1), bulk::barrier_init_count(&empty[s], kGroupThreads);
    bulk::fence_barrier_init();
    policy = evict_first_policy();
    for (int k = 0; k < stages && cta_row<kGroups>(rows, k) < rows.end; ++k)  // in flight while the cache fills
      bulk::copy_row(ring + k * kSlotVecs, a.x + cta_row<kGroups>(rows, k) * a.ldx, row_bytes, &full[k], policy);
  }
  const int nvec = static_cast<int>(a.cols / kVecElems);
  constexpr int kChanStep = Op::kChannelVec4s * kGroupThreads;
  op.begin_row(rows.part_first);
  for (int s = tid; s < kVecs * kGroupThreads && tid < kConsumerThreads; s += kConsumerThreads) {
    const int i = s / kGroupThreads, l = s % kGroupThreads;
    if (l + i * kGroupThreads < nvec) op.fill8((l + i * kGroupThreads) * kVecElems, channel_cache + i * kChanStep + l, kGroupThreads);
  }
  __syncthreads();  // the cache filled, and the ring's barriers initialised for every thread

  if (tid >= kConsumerThreads) {
    if (is_producer && as_slots_free && stages == kGroups) {
      // A slot a group: each group's next row as soon as its slot is free, whichever group frees one first
      // (the loop below takes them in the CTA's row order, so one slow group holds the others' next rows).
      int next[kGroups];  // the CTA's row index k of each group's next copy
#pragma unroll
      for (int g = 0; g < kGroups; ++g) next[g] = g + stages;
      for (bool any = true; any;) {
        any = false;
        bool issued = false;
#pragma unroll
        for (int g = 0; g < kGroups; ++g) {
          const int64_t row = cta_row<kGroups>(rows, next[g]);
          if (row >= rows.end) continue;
          any = true;
          if (!phase_done(&empty[g], static_cast<uint32_t>((next[g] / stages - 1) & 1))) continue;
          bulk::fence_proxy_async();
          bulk::copy_row(ring + g * kSlotVecs, a.x + row * a.ldx, row_bytes, &full[g], policy);
          next[g] += stages;
          issued = true;
        }
        if (any && !issued) __nanosleep(32);  // leave the consumers' warps the issue slots while every slot is in use
      }
    } else if (is_producer) {
      for (int k = stages;; ++k) {
        const int64_t row = cta_row<kGroups>(rows, k);
        if (row >= rows.end) break;
        const int s = k % stages;
        bulk::wait_phase(&empty[s], static_cast<uint32_t>((k / stages - 1) & 1));  // the slot's previous row read
        bulk::fence_proxy_async();
        bulk::copy_row(ring + s * kSlotVecs, a.x + row * a.ldx, row_bytes, &full[s], policy);
      }
    }
    return;
  }

  const int group = tid / kGroupThreads;
  const GroupLanes<kGroupThreads> lanes{tid % kGroupThreads};
  GroupReducer<kGroupThreads> reduce{partials[group], 1 + group, lanes.lane()};
  bool has[kVecs];
  int8dit::quant::present_group_vector_slots<kVecs, kGroupThreads>(lanes.lane(), nvec, has);
  float4* const channels = channel_cache + lanes.lane();
  for (int k = group;; k += kGroups) {
    const int64_t row = cta_row<kGroups>(rows, k);
    if (row >= rows.end) break;
    const int s = k % stages;
    bulk::wait_phase(&full[s], static_cast<uint32_t>((k / stages) & 1));
    const uint4* slot = ring + s * kSlotVecs + lanes.lane();
    float v[kVecs][kVecElems];
    uint4 raw[kVecs];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) raw[i] = slot[i * kGroupThreads];
    }
    bulk::barrier_arrive(&empty[s]);
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) unpack8<T>(raw[i], v[i]);
    }
    quantize_held_row<T, Op, kVecs, true, false>(a, op, row, v, has, reduce, channels, nullptr, lanes);
  }
#endif
}

// The library's groups with no row ahead: each group loads a row only when it reaches it (registers, as the
// library's; the first row after the cache fill). Half the library's rows in flight an SM: whether fewer
// rows asked of DRAM at once stream faster, as the deeper rings' losses suggest.
template <typename Op>
__global__ void __launch_bounds__(kConsumerThreads) grouped_rows_loaded_in_turn(RowArgs<T> a, Op op, GroupedRows parts) {
  using namespace int8dit::quant;
  release_dependent_launch();
  wait_for_previous_grid();
  a.smooth = nullptr;
  extern __shared__ float4 channel_cache[];
  __shared__ float partials[kGroups][2][kGroupThreads / 32];
  const int tid = static_cast<int>(threadIdx.x);
  const int group = tid / kGroupThreads;
  const GroupLanes<kGroupThreads> lanes{tid % kGroupThreads};
  GroupReducer<kGroupThreads> reduce{partials[group], 1 + group, lanes.lane()};
  const int nvec = static_cast<int>(a.cols / kVecElems);
  bool has[kVecs];
  int8dit::quant::present_group_vector_slots<kVecs, kGroupThreads>(lanes.lane(), nvec, has);
  const GroupedRowRange rows = grouped_rows_of(static_cast<int>(blockIdx.x), group, kGroups, a.rows, parts);
  constexpr int kChanStep = Op::kChannelVec4s * kGroupThreads;
  op.begin_row(rows.part_first);
  for (int s = tid; s < kVecs * kGroupThreads; s += kConsumerThreads) {
    const int i = s / kGroupThreads, l = s % kGroupThreads;
    if (l + i * kGroupThreads < nvec) op.fill8((l + i * kGroupThreads) * kVecElems, channel_cache + i * kChanStep + l, kGroupThreads);
  }
  __syncthreads();
  float4* const channels = channel_cache + lanes.lane();
  for (int64_t row = rows.first; row < rows.end; row += rows.step) {
    const uint4* xr = reinterpret_cast<const uint4*>(a.x + row * a.ldx) + lanes.lane();
    uint4 raw[kVecs];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) raw[i] = __ldcs(xr + i * kGroupThreads);
    }
    float v[kVecs][kVecElems];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (has[i]) unpack8<T>(raw[i], v[i]);
    }
    quantize_held_row<T, Op, kVecs, true, false>(a, op, row, v, has, reduce, channels, nullptr, lanes);
  }
}

struct Buffers {
  std::vector<uint16_t*> x;
  std::vector<int8_t*> q;
  std::vector<float*> scale;
};

std::vector<int> stage_counts() {
  const char* env = std::getenv("INT8DIT_RING_STAGES");
  std::vector<int> out;
  std::stringstream list(env ? env : "4,8,12,16,24");
  for (std::string item; std::getline(list, item, ',');) {
    const int s = std::atoi(item.c_str());
    if (s < kGroups || s > kMaxStages || s % kGroups != 0) {
      std::fprintf(stderr, "int8dit_quant_grouped_ring_probe: INT8DIT_RING_STAGES holds '%s'; each must be a multiple of %d in %d..%d\n",
                   item.c_str(), kGroups, kGroups, kMaxStages);
      std::exit(2);
    }
    out.push_back(s);
  }
  return out;
}

template <typename Op>
int run(const std::string& name, Op op, int64_t m, int64_t k, const std::vector<int>& depths) {
  int sms = 0;
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "SM count");
  const size_t mk = static_cast<size_t>(m * k);
  const int sets = static_cast<int>(std::clamp(256e6 / (3.0 * mk) + 1.0, 2.0, 16.0));
  Buffers b;
  for (int s = 0; s < sets; ++s) {
    b.x.push_back(device_alloc<uint16_t>(mk)), b.q.push_back(device_alloc<int8_t>(mk)), b.scale.push_back(device_alloc<float>(m));
    bench_quant::fill_bf16(b.x[s], mk, 900u + s);
  }
  check_cuda(cudaDeviceSynchronize(), "fill");
  cudaLaunchAttribute programmatic{};
  programmatic.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  programmatic.val.programmaticStreamSerializationAllowed = 1;

  // One candidate: its kernel's launch for call c, and what it was launched as.
  struct Candidate {
    std::string label;
    std::function<void(int)> launch;
    double best = 0.0;
    std::vector<double> times;
    bool same_layout = true;  // same rows, groups and reduction order as the first: outputs compared byte for byte
  };
  std::vector<Candidate> candidates;
  auto args_for = [&](int c) {
    RowArgs<T> a;
    a.rows = m, a.cols = k, a.x = reinterpret_cast<const T*>(b.x[c % sets]), a.ldx = k, a.q = b.q[c % sets], a.ldq = k;
    a.scale = b.scale[c % sets];
    return a;
  };
  // A candidate: `kernel` of `threads` threads and `smem` bytes of dynamic shared memory a CTA, `groups` rows a CTA
  // at once, on the balanced grid of the CTAs that fit (grouped_ctas_per_part), launched programmatically with the
  // call's RowArgs, the op, the grid's GroupedRows and `extra`; not added (and said so) where none fits.
  auto add = [&](const std::string& what, auto kernel, int threads, size_t smem, int groups, auto... extra) {
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)), "smem");
    int per_sm = 0;
    check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem), "occupancy");
    const int64_t grid = int8dit::quant::grouped_ctas_per_part(m, m, int64_t{per_sm} * sms, groups);
    if (grid == 0) {
      std::printf("  %s: does not fit (%zu bytes of shared memory a CTA)\n", what.c_str(), smem);
      return;
    }
    char label[160];
    std::snprintf(label, sizeof label, "%s: %lld CTAs, %d an SM, %zu KB shared", what.c_str(), static_cast<long long>(grid), per_sm,
                  smem / 1024);
    candidates.push_back({label, [=](int c) {
                            cudaLaunchConfig_t config{};
                            config.gridDim = dim3(static_cast<unsigned>(grid));
                            config.blockDim = dim3(static_cast<unsigned>(threads));
                            config.dynamicSmemBytes = smem;
                            config.attrs = const_cast<cudaLaunchAttribute*>(&programmatic);
                            config.numAttrs = 1;
                            check_cuda(cudaLaunchKernelEx(&config, kernel, args_for(c), op, GroupedRows{m, static_cast<int>(grid)}, extra...),
                                       "launch");
                          }});
  };
  const size_t cache = int8dit::quant::grouped_channel_cache_bytes<Op, kVecs, kGroupThreads>();
  add("grouped (library)", int8dit::quant::row_quantize_grouped<T, Op, kVecs, kGroupThreads, kGroups, false>, kConsumerThreads, cache,
      kGroups);
  // the library's kernel in 8 groups, one 512-thread CTA an SM: the 8-group ring's layout without its ring
  add("grouped, 8 groups a CTA", int8dit::quant::row_quantize_grouped<T, Op, kVecs, kGroupThreads, kWideGroups, false>,
      kGroupThreads * kWideGroups, cache, kWideGroups);
  add("grouped, no row ahead", grouped_rows_loaded_in_turn<Op>, kConsumerThreads, cache, kGroups);
  auto add_ring = [&](auto groups_constant, int stages) {
    constexpr int kCtaGroups = decltype(groups_constant)::value;
    char what[64];
    std::snprintf(what, sizeof what, "ring, %d groups, %2d stages", kCtaGroups, stages);
    add(what, grouped_ring_rows<Op, kCtaGroups>, kGroupThreads * kCtaGroups + 32, ring_kernel_smem<Op>(stages), kCtaGroups, stages,
        false);
    if (stages == kCtaGroups && kCtaGroups == kWideGroups) {  // the library's form (row_grouped_ring.cuh), copies as slots free
      std::snprintf(what, sizeof what, "ring, %d groups, %2d stages, copies as slots free", kCtaGroups, stages);
      add(what, grouped_ring_rows<Op, kCtaGroups>, kGroupThreads * kCtaGroups + 32, ring_kernel_smem<Op>(stages), kCtaGroups, stages,
          true);
    }
  };
  for (const int stages : depths) add_ring(std::integral_constant<int, kGroups>{}, stages);
  for (const int stages : depths) {
    if (stages % kWideGroups == 0) add_ring(std::integral_constant<int, kWideGroups>{}, stages);
  }
  // The library's own kernels in the layouts a 4608-row call could take: 128 x 3 in 7 groups (its choice there
  // for every op: 5 rows a group, 35 an SM), and row_grouped_ring.cuh's in 8 and 9 groups of 64 x 6 a CTA
  // (9: 128 CTAs of 4 rows a group, 36 an SM; 608 threads cap the registers at 104).
  const size_t before_128x3 = candidates.size();
  add("library's 128 x 3 in 7 groups", int8dit::quant::row_quantize_grouped<T, Op, 3, 128, 7, false>, 128 * 7,
      int8dit::quant::grouped_channel_cache_bytes<Op, 3, 128>(), 7);
  if (candidates.size() > before_128x3) candidates.back().same_layout = false;  // another reduction order
  add("library's ring, 8 groups", int8dit::quant::row_quantize_grouped_ring<T, Op, kVecs, kGroupThreads, 8>, kGroupThreads * 8 + 32,
      int8dit::quant::grouped_ring_smem_bytes<Op, kVecs, kGroupThreads, 8>(), 8);
  add("library's ring, 9 groups", int8dit::quant::row_quantize_grouped_ring<T, Op, kVecs, kGroupThreads, 9>, kGroupThreads * 9 + 32,
      int8dit::quant::grouped_ring_smem_bytes<Op, kVecs, kGroupThreads, 9>(), 9);
  // Each group's own bulk copies (row_grouped_own_copies.cuh, the gated residual LayerNorm's form): 8 groups in 16
  // warps, so 128 registers a thread where the producer warp's 17 cap them at 96.
  add("own copies, 8 groups", int8dit::quant::row_quantize_grouped_own_copies<T, Op, kVecs, kGroupThreads, 8>, kGroupThreads * 8,
      int8dit::quant::grouped_own_copies_smem_bytes<Op, kVecs, kGroupThreads, 8>(), 8);

  // Outputs: each candidate's q and scales for set 0 against the library kernel's, byte for byte.
  std::vector<int8_t> q_ref(mk), q_got(mk);
  std::vector<float> s_ref(static_cast<size_t>(m)), s_got(static_cast<size_t>(m));
  bool all_same = true;
  for (size_t c = 0; c < candidates.size(); ++c) {
    check_cuda(cudaMemset(b.q[0], 0x5a, mk), "poison q");
    check_cuda(cudaMemset(b.scale[0], 0x5a, sizeof(float) * m), "poison scales");
    candidates[c].launch(0);
    check_cuda(cudaDeviceSynchronize(), candidates[c].label.c_str());
    auto& q = c == 0 ? q_ref : q_got;
    auto& s = c == 0 ? s_ref : s_got;
    check_cuda(cudaMemcpy(q.data(), b.q[0], mk, cudaMemcpyDeviceToHost), "q back");
    check_cuda(cudaMemcpy(s.data(), b.scale[0], sizeof(float) * m, cudaMemcpyDeviceToHost), "scales back");
    if (c > 0 && !candidates[c].same_layout) {
      std::printf("  not compared: %s (another layout's reduction order)\n", candidates[c].label.c_str());
    } else if (c > 0) {
      const bool same = std::memcmp(q.data(), q_ref.data(), mk) == 0 && std::memcmp(s.data(), s_ref.data(), sizeof(float) * m) == 0;
      if (!same) std::printf("  OUTPUTS DIFFER: %s against the library's grouped kernel\n", candidates[c].label.c_str());
      all_same = all_same && same;
    }
  }

  constexpr int kRounds = 3;  // candidates take turns, so that each sees the same clocks and minute
  for (int r = 0; r < kRounds; ++r) {
    for (auto& c : candidates) c.times.push_back(bench_quant::median_us(c.launch));
  }
  std::printf("%s %lld x %lld (%d input sets rotating; each time: int8dit_bench_quant's median of 15 batches of 20 calls, "
              "programmatic; %d rounds taking turns)\n",
              name.c_str(), static_cast<long long>(m), static_cast<long long>(k), sets, kRounds);
  const double base = [&] {
    std::vector<double> t = candidates[0].times;
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }();
  std::string summary;
  for (auto& c : candidates) {
    std::vector<double> t = c.times;
    std::sort(t.begin(), t.end());
    const double median = t[t.size() / 2];
    std::printf("  %-72s rounds", c.label.c_str());
    for (double x : c.times) std::printf(" %6.2f", x);
    std::printf("  median %6.2f us  %.3f of the library's\n", median, median / base);
    char part[64];
    std::snprintf(part, sizeof part, "%s%.2f (%.3f)", summary.empty() ? "" : ", ", median, median / base);
    summary += part;
  }
  std::printf("SUMMARY %s %lld x %lld: library first, then 8 groups a CTA, no row ahead, each ring, the library's 128 x 3, its ring in 8 and 9 groups, own copies in 8: %s; outputs %s\n", name.c_str(), static_cast<long long>(m),
              static_cast<long long>(k), summary.c_str(), all_same ? "the same" : "DIFFER");
  for (int s = 0; s < sets; ++s) cudaFree(b.x[s]), cudaFree(b.q[s]), cudaFree(b.scale[s]);
  return all_same ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: int8dit_quant_grouped_ring_probe [layernorm|smooth|rmsnorm|plain [M [K]]]   (default: layernorm 4096 3072)\n"
      "  Times the grouped row kernel (64 x 6, 4 groups a CTA) against the same groups fed from a ring of row slots\n"
      "  in shared memory that one producer thread fills with bulk copies, in one process, 3 rounds taking turns,\n"
      "  and compares their outputs byte for byte (exit 3 where they differ). K: 2304..3072, a multiple of 8.\n"
      "  INT8DIT_RING_STAGES=4,8,12,16,24: the ring depths to time (row slots a CTA: multiples of 4 up to 24), each in\n"
      "  CTAs of 4 groups (two an SM) and, where a multiple of 8, in CTAs of 8 groups (one an SM); at 8 slots the 8-group\n"
      "  ring also with its producer copying each group's next row as soon as the group's slot is free.\n"
      "  Also timed: the library's kernel in 8 groups a CTA, its groups with no row ahead, its 128 x 3 layout in 7 groups\n"
      "  (outputs not compared: another reduction order), its ring kernel in 8 and 9 groups a CTA, and each group's own\n"
      "  bulk copies in 8 groups a CTA (row_grouped_own_copies.cuh).\n";
  const std::string op = argc > 1 ? argv[1] : "layernorm";
  if (op == "--help" || op == "-h") return std::printf("%s", usage), 0;
  const int64_t m = argc > 2 ? std::atoll(argv[2]) : 4096, k = argc > 3 ? std::atoll(argv[3]) : 3072;
  if ((op != "layernorm" && op != "smooth" && op != "rmsnorm" && op != "plain") || m <= 0 || k < 2304 || k > 3072 || k % 8 != 0 ||
      argc > 4) {
    std::fprintf(stderr, "int8dit_quant_grouped_ring_probe: not a case it takes\n%s", usage);
    return 2;
  }
  const std::vector<int> depths = stage_counts();  // refused before the GPU is looked for
  if (const int rc = grouped_probe::require_hopper("int8dit_quant_grouped_ring_probe"); rc != 0) return rc;
  const grouped_probe::ChannelVectors vectors(k);
  uint16_t* const mod = vectors.mod;
  float* const divisor = vectors.divisor;
  int rc = 0;
  if (op == "layernorm") {
    int8dit::quant::LayerNormModulateOp<T> ln;
    grouped_probe::set_layernorm_fields(ln, mod, m, k);
    rc = run("LayerNorm + modulation", ln, m, k, depths);
  } else if (op == "rmsnorm") {
    rc = run("RMSNorm", grouped_probe::rmsnorm_op(mod, k), m, k, depths);
  } else if (op == "plain") {
    rc = run("quantize_rows' work (no statistics or channel values)", PlainRowsOp{}, m, k, depths);
  } else {
    int8dit::quant::SmoothDivisionOp divide;
    divide.smooth = divisor;
    rc = run("quantize_rows with a SmoothQuant divisor", divide, m, k, depths);
  }
  return rc;
}
