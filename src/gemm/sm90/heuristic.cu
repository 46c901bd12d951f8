// Hopper configuration choice by (M, N, K, SM count), used until the tuner's cache lands.
//
// Two steps. An M bucket names the candidate configurations worth considering (table below, with the
// reason for each bucket). Among them a small wave model picks the one whose last wave wastes least:
// a persistent kernel runs ceil(tiles / CTAs) waves of whole tiles; stream-K spreads all k-iterations
// evenly and pays a fix-up per tile. Per-tile efficiencies are relative tensor-pipe throughputs of the
// tile shapes (bigger tiles reuse shared memory better), measured on the H100 with bench/sm90_probe.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "gemm/kernel_registry.h"

namespace int8dit::detail {
namespace {

struct Candidate {
  const char* name;
  int tile_m, tile_n, tile_k;
  int cluster_size;  // CTAs per cluster: the persistent grid is a multiple of it
  bool stream_k;
  double efficiency;       // relative per-SM throughput of a full tile (128x256 cooperative = 1)
  double epilogue_ktiles;  // cost of a tile's prologue + epilogue, in k-iterations (pingpong hides most)
};

// clang-format off
constexpr Candidate kBig      {"sm90_bf16_128x256x128_2x1_coop",          128, 256, 128, 2, false, 1.00, 2.0};
constexpr Candidate kBigSK    {"sm90_bf16_128x256x128_2x1_coop_streamk",  128, 256, 128, 2, true,  0.97, 3.0};
constexpr Candidate kN192     {"sm90_bf16_128x192x128_2x1_coop",          128, 192, 128, 2, false, 0.96, 2.0};
constexpr Candidate kMid      {"sm90_bf16_128x128x128_2x1_coop",          128, 128, 128, 2, false, 0.88, 2.0};
constexpr Candidate kMidPP    {"sm90_bf16_128x128x128_2x1_pingpong",      128, 128, 128, 2, false, 0.92, 0.5};
constexpr Candidate kMidSK    {"sm90_bf16_128x128x128_1x1_coop_streamk",  128, 128, 128, 1, true,  0.85, 3.0};
constexpr Candidate kSmall    {"sm90_bf16_64x128x128_1x1_pingpong",        64, 128, 128, 1, false, 0.72, 0.5};
constexpr Candidate kSmallN256{"sm90_bf16_64x256x128_1x1_pingpong",        64, 256, 128, 1, false, 0.82, 0.5};
// clang-format on

// M bucket -> candidates.
struct Bucket {
  int64_t max_m;
  std::vector<Candidate> candidates;
};
const std::vector<Bucket>& buckets() {
  static const std::vector<Bucket> table = {
      // One M tile of 64 rows at most: a 128-row tile would be half padding, so only the 64-row
      // ping-pong tiles, plus stream-K for long K where N alone gives too few tiles for 132 SMs.
      {64, {kSmall, kSmallN256, kMidSK}},
      // Text tokens, small batches (M <= 256): still few tiles; 64-row tiles double them and stream-K
      // fills the machine when K is long.
      {256, {kSmall, kSmallN256, kMidSK, kBigSK}},
      // M = 512..1024 (Flux text stream): 4-8 M tiles, so N decides; 128x256 leaves most SMs idle at
      // N = 3072 (48 tiles), so stream-K on the big tile or twice the tiles with 128x128.
      {1024, {kBigSK, kMidSK, kMid, kMidPP, kN192, kSmallN256}},
      // Large M (image tokens, M >= 2048): enough tiles for several waves; the big tile wins unless N
      // is a multiple of 192 that 256 splits badly (N = 1152, 3072 = 12 x 256 fits both), or the last
      // wave is mostly empty (stream-K).
      {INT64_MAX, {kBig, kN192, kMid, kMidPP, kBigSK}},
  };
  return table;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Estimated time in units of "one 128x256 k-iteration on one SM".
double estimated_time(const Candidate& c, int64_t m, int64_t n, int64_t k, int sm_count) {
  const int64_t ctas = std::max<int64_t>(c.cluster_size, sm_count / c.cluster_size * c.cluster_size);
  const int64_t tiles = ceil_div(m, c.tile_m) * ceil_div(n, c.tile_n);
  const int64_t k_iters = ceil_div(k, c.tile_k);
  const double iter_cost = double(c.tile_m) * c.tile_n / (128.0 * 256.0) / c.efficiency;
  if (c.stream_k) {
    const double iters_per_cta = std::ceil(double(tiles * k_iters) / double(ctas));
    return (iters_per_cta + c.epilogue_ktiles) * iter_cost;
  }
  const double waves = double(ceil_div(tiles, ctas));
  return waves * (double(k_iters) + c.epilogue_ktiles) * iter_cost;
}

const GemmKernel* find(const std::vector<GemmKernel>& table, const char* name) {
  for (const GemmKernel& k : table)
    if (std::strcmp(k.name, name) == 0) return &k;
  return nullptr;
}

// The buckets with each candidate's table entry looked up once (null where it was not built).
struct ResolvedBucket {
  int64_t max_m;
  std::vector<std::pair<Candidate, const GemmKernel*>> candidates;
};
const std::vector<ResolvedBucket>& resolved_buckets() {
  static const std::vector<ResolvedBucket> resolved = [] {
    std::vector<ResolvedBucket> out;
    for (const Bucket& b : buckets()) {
      ResolvedBucket r{b.max_m, {}};
      for (const Candidate& c : b.candidates) r.candidates.emplace_back(c, find(sm90_kernels(), c.name));
      out.push_back(r);
    }
    return out;
  }();
  return resolved;
}

}  // namespace

const GemmKernel* sm90_heuristic(const GemmParams& p, int sm_count) {
  const std::vector<GemmKernel>& table = sm90_kernels();
  if (p.d_type == DType::kBF16) {
    for (const ResolvedBucket& b : resolved_buckets()) {
      if (p.m > b.max_m) continue;
      const GemmKernel* best = nullptr;
      double best_time = 0;
      for (const auto& [c, k] : b.candidates) {
        if (!k || !k->can_implement(p).ok()) continue;
        const double t = estimated_time(c, p.m, p.n, p.k, sm_count);
        if (!best || t < best_time) best = k, best_time = t;  // ties keep the earlier (preferred) one
      }
      if (best) return best;
      break;
    }
  }
  // fp16, fp32 and int32 outputs carry one general configuration each; also the fallback for bf16.
  for (const GemmKernel& k : table)
    if (k.d_type == p.d_type && k.can_implement(p).ok()) return &k;
  return nullptr;
}

}  // namespace int8dit::detail
