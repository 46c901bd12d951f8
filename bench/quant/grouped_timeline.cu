// int8dit_quant_grouped_timeline [OP [M [K]]]: where a call of the grouped row kernel (row_grouped.cuh)
// spends its time, from the warps' own clocks. The benchmark fits each kernel's time as a fixed cost a
// call plus a rate a row (scripts/quant_scaling_fit.py); this says what the fixed cost is made of.
//
// It launches the grouped kernel in the library's 64 x 6 layout (4 groups, two 256-thread CTAs an SM, the
// balanced grid; at 4608 rows the library takes 128 x 3 in 7 groups instead, row_shape.h), instantiated
// here with its milestones stamped (row_grouped.cuh: INT8DIT_GROUPED_TIMELINE), 30 times back to back,
// programmatically as the library does on Hopper, on inputs rotating through >= 256 MB as in
// int8dit_bench_quant, and reads %globaltimer in lane 0 of every warp of the last three calls at: the
// CTA's start, past griddepcontrol.wait, the channel cache filled, its first row's vectors in, each of its
// rows done, its end. Per call it prints, in microseconds from the previous call's last warp
// to finish:
//   start      the first and the median warp's start (launched early, beside the previous call's CTAs)
//   released   the median warp past the wait (the previous grid complete and flushed)
//   filled     the median warp past the cache fill (the channel values in, every warp of the CTA there)
//   row 0 in   its first row's vectors unpacked (after the fill: the later of the two)
//   row i      the median warp's row i done, and the spread (10th..90th percentile) across warps
//   ends       the first, median and last warp to finish
//   SM ends    the same over each SM's last warp, and how far apart one SM's own warps finish
// and the round time (the median warp's time a row, rows 2..n-1) with the fixed cost it implies; first, the
// same kernel timed as int8dit_bench_quant times the library's (stamps off: within ~1-2% of the library's
// time in the benchmark).
// Prints only: a probe, not a results file. OP: layernorm (default), smooth (quantize_rows with a
// SmoothQuant divisor), rmsnorm, plain (quantize_rows' own work in the grouped layout), normalize (LayerNorm
// without its channel values); M default 4096, K default 3072 (2304..3072, a multiple of 8).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace timeline {

constexpr int kPoints = 14;  // 0 start, 1 released, 2 filled, 3..10 rows 0..7 (10: the 8th and later), 11 end,
                             // 12 the SM, 13 the first row's vectors in

template <typename Base>
struct Timed : Base {
  unsigned long long* stamps = nullptr;  // [warps][kPoints], or null: this call is not stamped
};

template <typename Op>
__device__ __forceinline__ void stamp(const Op& op, int point) {
  if (op.stamps == nullptr || (threadIdx.x & 31u) != 0) return;
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  const int warp = static_cast<int>(blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32);
  unsigned long long* const slots = op.stamps + static_cast<size_t>(warp) * kPoints;
  if (point == -2) {  // every row's vectors: keep the first row's
    if (slots[kPoints - 1] == 0) slots[kPoints - 1] = t;
    return;
  }
  const int p = point < 0 ? kPoints - 3 : (point < kPoints - 3 ? point : kPoints - 4);
  slots[p] = t;
  if (point == 0) {
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    slots[kPoints - 2] = sm;
  }
}

}  // namespace timeline

#define INT8DIT_GROUPED_TIMELINE(op, point) ::timeline::stamp(op, point)
#include "quant/row_grouped.cuh"
#include "grouped_probe_ops.h"
#include "quant/row_ops.cuh"
#include "timing.h"

namespace {

using bench_quant::check_cuda;
using bench_quant::device_alloc;
using int8dit::quant::GroupedRows;
using int8dit::quant::RowArgs;
using T = __nv_bfloat16;

// The layouts the probe launches (INT8DIT_TIMELINE_LAYOUT): the library's 64 x 6 in 4 groups (two 256-thread
// CTAs an SM), or INT8DIT_QUANT_GROUP_THREADS=double's 128 x 3 in 4 groups (row_shape.h: kGroupedDoubled128x3, two
// 512-thread CTAs an SM held to 64 registers by row_quantize_grouped's launch bounds): the same 8 rows an SM, each
// over twice the threads.
struct Layout64x6 {
  static constexpr int kVecs = 6, kGroupThreads = 64, kGroups = 4;
  static constexpr const char* kName = "64 x 6 in 4 groups";
};
struct Layout128x3 {
  static constexpr int kVecs = int8dit::quant::kGroupedDoubled128x3.vecs;
  static constexpr int kGroupThreads = int8dit::quant::kGroupedDoubled128x3.group_threads;
  static constexpr int kGroups = int8dit::quant::kGroupedDoubled128x3.groups;
  static constexpr const char* kName = "128 x 3 in 4 groups, two CTAs an SM";
};

using grouped_probe::PlainRowsOp;

// LayerNorm's statistics and normalization without its channel values (the cache filled, never read):
// beside layernorm and plain, what the modulation's values cost and what the statistics cost.
struct NormalizeOnlyOp : int8dit::quant::LayerNormModulateOp<T> {
  __device__ void apply8_cached(int, float (&v)[int8dit::quant::kVecElems], const float4*, int) const {
#pragma unroll
    for (int e = 0; e < int8dit::quant::kVecElems; ++e) v[e] = fmaf(v[e], this->rstd, this->neg_mean_rstd);
  }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

template <typename Layout, typename Op>
int run_layout(const std::string& name, Op op, int64_t m, int64_t k) {
  constexpr int kVecs = Layout::kVecs, kGroupThreads = Layout::kGroupThreads, kGroups = Layout::kGroups;
  using Timed = timeline::Timed<Op>;
  auto kernel = int8dit::quant::row_quantize_grouped<T, Timed, kVecs, kGroupThreads, kGroups, false>;
  constexpr int threads = kGroupThreads * kGroups;
  const size_t smem = int8dit::quant::grouped_channel_cache_bytes<Timed, kVecs, kGroupThreads>();
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)), "smem");
  int per_sm = 0, sms = 0;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem), "occupancy");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "SM count");
  int64_t grid = int8dit::quant::grouped_ctas_per_part(m, m, int64_t{per_sm} * sms, kGroups);
  // INT8DIT_TIMELINE_ROWS_A_GROUP=R: a grid of ceil(M / (4 R)) CTAs instead, R rows a group, more CTAs than
  // fit at once where R is small (then not persistent: the hardware starts a CTA as one ends).
  const char* rows_a_group_env = std::getenv("INT8DIT_TIMELINE_ROWS_A_GROUP");
  if (const int64_t rows = rows_a_group_env ? std::atoll(rows_a_group_env) : 0; rows > 0 && grid > 0)
    grid = (m + kGroups * rows - 1) / (kGroups * rows);
  if (grid == 0) {
    std::fprintf(stderr, "int8dit_quant_grouped_timeline: the grouped kernel does not take %lld rows\n", static_cast<long long>(m));
    std::exit(1);
  }
  const int warps = static_cast<int>(grid) * threads / 32;

  const size_t mk = static_cast<size_t>(m * k);
  const int sets = static_cast<int>(std::clamp(256e6 / (3.0 * mk) + 1.0, 2.0, 16.0));
  std::vector<uint16_t*> xs(sets);
  std::vector<int8_t*> qs(sets);
  std::vector<float*> scales(sets);
  for (int s = 0; s < sets; ++s) {
    xs[s] = device_alloc<uint16_t>(mk), qs[s] = device_alloc<int8_t>(mk), scales[s] = device_alloc<float>(m);
    bench_quant::fill_bf16(xs[s], mk, 500u + s);
  }
  constexpr int kCalls = 30, kStamped = 3;
  unsigned long long* stamps = device_alloc<unsigned long long>(static_cast<size_t>(kStamped) * warps * timeline::kPoints);
  check_cuda(cudaMemset(stamps, 0, sizeof(unsigned long long) * kStamped * warps * timeline::kPoints), "memset");
  check_cuda(cudaDeviceSynchronize(), "fill");

  cudaLaunchAttribute programmatic{};
  programmatic.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  programmatic.val.programmaticStreamSerializationAllowed = 1;
  auto launch = [&](int c, unsigned long long* stamp_to) {
    RowArgs<T> a;
    a.rows = m, a.cols = k, a.x = reinterpret_cast<const T*>(xs[c % sets]), a.ldx = k, a.q = qs[c % sets], a.ldq = k;
    a.scale = scales[c % sets];
    Timed timed;
    static_cast<Op&>(timed) = op;
    timed.stamps = stamp_to;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(static_cast<unsigned>(grid));
    config.blockDim = dim3(threads);
    config.dynamicSmemBytes = smem;
    config.attrs = &programmatic;
    config.numAttrs = 1;
    check_cuda(cudaLaunchKernelEx(&config, kernel, a, timed, GroupedRows{m, static_cast<int>(grid)}), "launch");
  };
  const double us = bench_quant::median_us([&](int c) { launch(c, nullptr); });
  for (int c = 0; c < kCalls; ++c) {
    const int stamped = c - (kCalls - kStamped);
    launch(c, stamped >= 0 ? stamps + static_cast<size_t>(stamped) * warps * timeline::kPoints : nullptr);
  }
  check_cuda(cudaDeviceSynchronize(), "calls");
  std::vector<unsigned long long> host(static_cast<size_t>(kStamped) * warps * timeline::kPoints);
  check_cuda(cudaMemcpy(host.data(), stamps, host.size() * sizeof(host[0]), cudaMemcpyDeviceToHost), "read back");

  const int rows_a_group = static_cast<int>((m + grid * kGroups - 1) / (grid * kGroups));
  cudaFuncAttributes attributes{};
  check_cuda(cudaFuncGetAttributes(&attributes, kernel), "attributes");
  std::printf("%s %lld x %lld, %s: %lld CTAs of %d threads (%d an SM, %d SMs, %d registers, %zu bytes of stack), %d warps, up to %d rows a group\n",
              name.c_str(), static_cast<long long>(m), static_cast<long long>(k), Layout::kName, static_cast<long long>(grid), threads,
              per_sm, sms, attributes.numRegs, attributes.localSizeBytes, warps, rows_a_group);
  std::printf("  timed (int8dit_bench_quant's way: median of 15 batches of 20 calls, programmatic, rotating inputs): %.2f us\n", us);
  double previous_end = 0.0;
  for (int s = 0; s < kStamped; ++s) {
    auto at = [&](int w, int p) { return static_cast<double>(host[(static_cast<size_t>(s) * warps + w) * timeline::kPoints + p]) * 1e-3; };
    std::vector<double> start, released, filled, end, arrived;
    std::vector<std::vector<double>> row(timeline::kPoints - 6);
    for (int w = 0; w < warps; ++w) {
      start.push_back(at(w, 0)), released.push_back(at(w, 1)), filled.push_back(at(w, 2)), end.push_back(at(w, timeline::kPoints - 3)), arrived.push_back(at(w, timeline::kPoints - 1));
      for (int r = 0; r < rows_a_group && r < timeline::kPoints - 6; ++r) {
        if (at(w, 3 + r) > 0) row[r].push_back(at(w, 3 + r));
      }
    }
    const double t0 = s == 0 ? percentile(start, 0.0) : previous_end;
    std::printf("call %d (us from %s):\n", kCalls - kStamped + s, s == 0 ? "its first warp's start" : "the previous call's last end");
    std::printf("  start      first %7.2f  median %7.2f\n", percentile(start, 0.0) - t0, percentile(start, 0.5) - t0);
    std::printf("  released   first %7.2f  median %7.2f  last %7.2f\n", percentile(released, 0.0) - t0, percentile(released, 0.5) - t0,
                percentile(released, 1.0) - t0);
    std::printf("  filled     first %7.2f  median %7.2f  last %7.2f\n", percentile(filled, 0.0) - t0, percentile(filled, 0.5) - t0,
                percentile(filled, 1.0) - t0);
    std::printf("  row 0 in   first %7.2f  median %7.2f  last %7.2f  (its vectors unpacked, past the fill)\n",
                percentile(arrived, 0.0) - t0, percentile(arrived, 0.5) - t0, percentile(arrived, 1.0) - t0);
    for (int r = 0; r < rows_a_group && r < timeline::kPoints - 6; ++r) {
      std::printf("  row %d      p10   %7.2f  median %7.2f  p90  %7.2f  (%zu warps)\n", r, percentile(row[r], 0.1) - t0,
                  percentile(row[r], 0.5) - t0, percentile(row[r], 0.9) - t0, row[r].size());
    }
    std::printf("  ends       first %7.2f  median %7.2f  last %7.2f\n", percentile(end, 0.0) - t0, percentile(end, 0.5) - t0,
                percentile(end, 1.0) - t0);
    // The ends by SM: each SM's last warp, and the spread of its own warps' ends.
    {
      std::vector<double> sm_last(1024, 0.0), sm_first(1024, 1e300);
      for (int w = 0; w < warps; ++w) {
        const size_t sm = static_cast<size_t>(host[(static_cast<size_t>(s) * warps + w) * timeline::kPoints + timeline::kPoints - 2]) % 1024;
        sm_last[sm] = std::max(sm_last[sm], end[w]), sm_first[sm] = std::min(sm_first[sm], end[w]);
      }
      std::vector<double> lasts, spreads;
      for (size_t sm = 0; sm < sm_last.size(); ++sm) {
        if (sm_last[sm] > 0) lasts.push_back(sm_last[sm] - t0), spreads.push_back(sm_last[sm] - sm_first[sm]);
      }
      std::printf("  SM ends    first %7.2f  median %7.2f  last %7.2f  (%zu SMs; within an SM first to last warp: median %.2f, max %.2f)\n",
                  percentile(lasts, 0.0), percentile(lasts, 0.5), percentile(lasts, 1.0), lasts.size(), percentile(spreads, 0.5),
                  percentile(spreads, 1.0));
    }
    const int last_full = std::min(rows_a_group, timeline::kPoints - 6) - 2;
    if (s > 0 && last_full >= 1) {
      const double per_row = (percentile(row[last_full], 0.5) - percentile(row[0], 0.5)) / last_full;
      const double call = percentile(end, 1.0) - t0;
      std::printf("  a row (median warp, rows 1..%d): %.2f us; call %.2f us = %.2f us fixed + %.2f rows x that\n", last_full,
                  per_row, call, call - rows_a_group * per_row, static_cast<double>(rows_a_group));
    }
    previous_end = percentile(end, 1.0);
  }
  for (int s = 0; s < sets; ++s) cudaFree(xs[s]), cudaFree(qs[s]), cudaFree(scales[s]);
  cudaFree(stamps);
  return 0;
}

// INT8DIT_TIMELINE_LAYOUT: 64x6 (default, the library's) or 128x3 (two 512-thread CTAs an SM).
template <typename Op>
int run(const std::string& name, Op op, int64_t m, int64_t k) {
  const char* layout = std::getenv("INT8DIT_TIMELINE_LAYOUT");
  const std::string which = layout ? layout : "64x6";
  if (which == "64x6") return run_layout<Layout64x6>(name, op, m, k);
  if (which == "128x3") return run_layout<Layout128x3>(name, op, m, k);
  std::fprintf(stderr, "int8dit_quant_grouped_timeline: INT8DIT_TIMELINE_LAYOUT = '%s': the layouts are 64x6 and 128x3\n", which.c_str());
  return 2;
}


}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: int8dit_quant_grouped_timeline [layernorm|smooth|rmsnorm|plain|normalize [M [K]]]   (default: layernorm 4096 3072)\n"
      "  Stamps the grouped row kernel's milestones in every warp of three back-to-back calls and prints where\n"
      "  a call's time goes. K: 2304..3072, a multiple of 8 (the 64 x 6 layout). plain: quantize_rows' own work\n"
      "  (no statistics, no channel values) in the grouped layout, for what the layout itself costs; normalize:\n"
      "  LayerNorm without its modulation's channel values.\n"
      "  INT8DIT_TIMELINE_ROWS_A_GROUP=R: R rows a group (a grid of ceil(M / 4R) CTAs, not persistent where more\n"
      "  than fit at once) instead of the library's balanced persistent grid.\n"
      "  INT8DIT_TIMELINE_LAYOUT=128x3: 128 x 3 in 4 groups, two 512-thread CTAs an SM (registers held to 64),\n"
      "  instead of the library's 64 x 6 in 4 groups.\n";
  const std::string op = argc > 1 ? argv[1] : "layernorm";
  if (op == "--help" || op == "-h") return std::printf("%s", usage), 0;
  const int64_t m = argc > 2 ? std::atoll(argv[2]) : 4096, k = argc > 3 ? std::atoll(argv[3]) : 3072;
  if ((op != "layernorm" && op != "smooth" && op != "rmsnorm" && op != "plain" && op != "normalize") || m <= 0 || k < 2304 || k > 3072 || k % 8 != 0 || argc > 4) {
    std::fprintf(stderr, "int8dit_quant_grouped_timeline: not a case it takes\n%s", usage);
    return 2;
  }
  if (const int rc = grouped_probe::require_hopper("int8dit_quant_grouped_timeline"); rc != 0) return rc;
  const grouped_probe::ChannelVectors vectors(k);
  uint16_t* const mod = vectors.mod;
  float* const divisor = vectors.divisor;
  int rc = 0;
  if (op == "layernorm") {
    int8dit::quant::LayerNormModulateOp<T> ln;
    grouped_probe::set_layernorm_fields(ln, mod, m, k);
    rc = run("LayerNorm + modulation", ln, m, k);
  } else if (op == "rmsnorm") {
    rc = run("RMSNorm", grouped_probe::rmsnorm_op(mod, k), m, k);
  } else if (op == "normalize") {
    NormalizeOnlyOp norm;
    grouped_probe::set_layernorm_fields(norm, mod, m, k);  // it reads none of the channel values
    rc = run("LayerNorm without its channel values", norm, m, k);
  } else if (op == "plain") {
    rc = run("quantize_rows' work (no statistics or channel values)", PlainRowsOp{}, m, k);
  } else {
    int8dit::quant::SmoothDivisionOp divide;
    divide.smooth = divisor;
    rc = run("quantize_rows with a SmoothQuant divisor", divide, m, k);
  }
  return rc;
}
