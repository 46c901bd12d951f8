// Hopper configuration choice by (M, N, K, SM count): dispatch's pick when no configuration is forced
// and the tuner has no entry for the shape.
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
  int64_t min_k = 0;       // considered only where K >= min_k (a regime the constants were fitted to)
};

// Efficiency and per-tile overhead fitted (least squares on log time) to the H100 probe run over the
// Flux-dev, DiT-XL/2, 8192^3 and M = 1 shapes (bench/sm90_probe). On the run it was fitted to, the
// pick was within 3% of the fastest configuration on each of the 16 shapes; on a second run (host cost
// hidden) 1.2% slower than the fastest in geomean, 8% at worst (Flux text qkv, M = 512).
// Checked again against the 550 timings of the tuner's M sweeps (bench/results/h100/tune.json) once
// the cluster padding below was modelled: every configuration's median measured/modelled ratio is
// within 4% except 128x256 stream-K (13% slower than modelled: efficiency lowered from 0.884 to 0.80)
// and 64x256 ping-pong (modelled 1.6x too slow at M >= 1024; left as fitted, it is the tuner's pick).
// 128x192 cooperative stays at 0.936: at 1.0, fitted to the H200's config trials (each configuration
// timed in a block of its own), the model picked it at 512x12288x3072, where the interleaved timing of
// the same run had it 15% behind 128x128 ping-pong (41.0 vs 35.8 us; gemm_kn192_trial.json) while its
// block trial had it ahead (34.6 vs 33.8-35.1): fit constants to interleaved timings, not blocks.
// clang-format off
constexpr Candidate kBig      {"sm90_bf16_128x256x128_2x1_coop",          128, 256, 128, 2, false, 1.000,  4.8};
constexpr Candidate kBigSK    {"sm90_bf16_128x256x128_2x1_coop_streamk",  128, 256, 128, 2, true,  0.800, 18.5};
constexpr Candidate kN192     {"sm90_bf16_128x192x128_2x1_coop",          128, 192, 128, 2, false, 0.936,  4.6};
constexpr Candidate kMid      {"sm90_bf16_128x128x128_2x1_coop",          128, 128, 128, 2, false, 0.863,  5.1};
constexpr Candidate kMidPP    {"sm90_bf16_128x128x128_2x1_pingpong",      128, 128, 128, 2, false, 0.870,  2.3};
constexpr Candidate kMidSK    {"sm90_bf16_128x128x128_1x1_coop_streamk",  128, 128, 128, 1, true,  0.665, 19.6};
constexpr Candidate kSmall    {"sm90_bf16_64x128x128_1x1_pingpong",        64, 128, 128, 1, false, 0.443,  0.0};
constexpr Candidate kSmallN256{"sm90_bf16_64x256x128_1x1_pingpong",        64, 256, 128, 1, false, 0.568,  0.9};
// Two tiles run faster, once M spans several tiles, than the probe's single-shape fit says. The H200 M
// sweeps with every configuration timed at every M (two runs, --all-configs; bench/results/h200/
// tune.json is the second; judged with bench/tune/fit_heuristic.py) have 64x256 ping-pong the fastest
// at N = 12288 for M = 577..3008 (up to 1.57x ahead of the old pick) but 1.35-1.6x behind from
// M = 3072 on, and 128x128 ping-pong the fastest at nearly every M > 3072 (1.1-1.4x ahead of 128x256
// cooperative). The same kernels, with the efficiencies those regimes show (0.85: at 0.9 the model
// also picks 64x256 at N = 3072, M = 1536..2304, where it is 1.25x behind):
constexpr Candidate kSmallN256Wide{"sm90_bf16_64x256x128_1x1_pingpong",    64, 256, 128, 1, false, 0.850,  0.9};
// 64x128 ping-pong once M = 257..1024 gives it several tiles a CTA: the probe's 0.443 had it 1.6x
// slower than 64x256 at 512 x 9216 x 3072, where it ran 29.3-29.7 us against 32.7-33.2 in three
// H200 runs (gemm.json, gemm_repeat.json, gemm_flux_ed34c3d.json, config_trials); at 0.70 the model
// picks it there and at 333 x 1536 x 6144 (14.6-14.9 us against stream-K's 21.5-21.8) and nowhere
// else in the two M sweeps of tune_all_configs.json (fit_heuristic.py: geomean pick/best 1.014 ->
// 1.013 at N = 12288, unchanged at N = 3072; 0.775 made a 1.32 cliff at M = 513 vs 576).
constexpr Candidate kSmallMany{"sm90_bf16_64x128x128_1x1_pingpong",        64, 128, 128, 1, false, 0.700,  0.0};
// 128x128 ping-pong at large M: its edge over 128x256 cooperative is the epilogue it hides behind the
// other consumer's mainloop, worth most at short K. At 1.000 / 2.3 (fitted to the K = 3072 sweeps
// alone) the model kept it at long K too, where three H200 runs' config trials (gemm.json,
// gemm_back_to_back.json, gemm_repeat.json) had it 1.09-1.14x behind 128x256 cooperative at
// 4096 x 3072 x 12288 and behind 128x192 cooperative at 8192 x 1152 x 4608. 0.902 / 1.3 (the
// preset-aware refit, `fit_heuristic.py tune_all_configs.json --presets ...`) moves those two picks
// and no pick of the K = 3072 sweeps (their cliffs and regrets unchanged); measured next in the
// library's benchmark: 246.1 -> 217.0 us and 77.4 -> 71.9 us (bench/results/h200/gemm.md).
constexpr Candidate kMidPPMany{"sm90_bf16_128x128x128_2x1_pingpong",      128, 128, 128, 2, false, 0.902,  1.3};
// 128x144 ping-pong: a tile is less efficient than 128x128 (16-column epilogue subtiles), and pays off
// only where its N = 144 removes a mostly empty last wave: M = 4096, N = 1152 (256 tiles, 1.94 waves,
// against 288 tiles of 128x128 in 3). Measured on the H200 (bench/results/h200/gemm_n144_trial.md):
// 16.8 vs 17.9 us at 4096x1152x1152, 37.6 vs 45.3 at 4096x1152x4608; slower at 8192x1152x1152 (27.2
// vs 25.5), 4096x3456x1152 (36.6 vs 34.0) and 4096x4608x1152 (48.5 vs 40.8). 0.85 (fitted to those
// five) has the model pick it at the first two and at none of the others among the M >= 4096 presets.
// Also a candidate for M = 257..1024: at 512 x 9216 x 3072 its 4 x 64 = 256 tiles make 1.94 waves and it
// was the fastest configuration in both runs that timed it there (28.1 and 26.9 us against 64x128's
// 30.2-30.6; gemm.json, gemm_narrow_trial.json), which the model, unchanged, picks.
constexpr Candidate kN144PP   {"sm90_bf16_128x144x128_2x1_pingpong",      128, 144, 128, 2, false, 0.850,  2.3};
// 64-row tiles whose N fills one wave at M = 257..1024 where 64x128 does not (generate_instances.py
// lists the shapes). Efficiencies fitted to one H200 run's trials of every configuration at the nine
// preset shapes with M <= 1024 (bench/results/h200/gemm_narrow_trial.md): 64x192 0.70 has the model
// pick it at 512 x 3072 x 3072 (14.0 us against 15.1 for the next) and 512 x 3072 x 12288 (33.6 against
// 36.4) and not at 512 x 12288 x 3072, where it was 8% behind; 64x48 0.30 picks it at 300 x 1152 x 1152
// (7.8 against 8.6 for 64x128) and nowhere else. The interleaved timings of two runs agree (14.0 us
// against 64x256's 15.3 before; 37.9-38.1 against 128x128 ping-pong's 43.6; 7.7-7.8 against 8.4).
constexpr Candidate kSmallN192{"sm90_bf16_64x192x128_1x1_pingpong",       64, 192, 128, 1, false, 0.700,  0.0};
constexpr Candidate kSmallN48 {"sm90_bf16_64x48x128_1x1_pingpong",         64,  48, 128, 1, false, 0.300,  0.0};
// 128x256 stream-K at long K, where each CTA's share of the k-iterations (~390 at 4608 x 3072 x 15360)
// amortizes its fix-ups: at Flux-dev's single-stream linear2 (4608 x 3072 x 15360) four H200 runs'
// config trials (gemm.json, gemm_03b6a52.json, gemm_back_to_back.json, gemm_repeat.json) had it the
// fastest configuration, at 0.885-0.898 of the time of the model's pick, 128x128 ping-pong (864 tiles:
// 6.5 waves), and 0.93-0.97 of 128x256 cooperative's. Timed in the interleaved rounds too (the
// reports' "best" column against the dispatch's pick), it took 0.930 / 0.945 / 0.934 of the pick's time
// in three of them (329.2 vs 353.8 us, 320.6 vs 339.4, 314.1 vs 336.2, back to back in the last): not
// the block trials' advantage alone, which misled before (kN192, kMidPPMany above). kBigSK's 0.80,
// fitted to the K = 3072 sweeps, never lets the model take it there. The block trials fit an
// efficiency of 0.98 at that shape, the only long-K shape measured so far. 0.93 is the least at which the model picks it there (with the 5%
// stream-K margin), so it takes stream-K at K >= 12288 only where the data-parallel waves waste as
// much as there or more (15 of the 5292 grid picks of tests/cpp/print_sm90_heuristic.cpp at 132 SMs,
// most at M = 4097, one row past a whole tile); it keeps 128x256 cooperative at 4096 x 3072 x 12288,
// where the trials split (stream-K ahead in one run of four, 3-5% behind in the other three), and
// moves no pick of the K = 3072 sweeps (bench/tune/fit_heuristic.py). Not timed yet: the picks it
// moves other than linear2.
constexpr Candidate kBigSKLongK{"sm90_bf16_128x256x128_2x1_coop_streamk",  128, 256, 128, 2, true,  0.930, 18.5, 12288};
// clang-format on

// A stream-K pick costs a workspace and a memset launch per call: take it only when the model says it
// is this much faster than the best data-parallel candidate.
constexpr double kStreamKMargin = 0.05;

// M bucket -> candidates.
struct Bucket {
  int64_t max_m;
  std::vector<Candidate> candidates;
};
const std::vector<Bucket>& buckets() {
  static const std::vector<Bucket> table = {
      // One M tile of 64 rows at most: a 128-row tile would be half padding, so the 64-row ping-pong
      // tiles, plus stream-K for long K, where N alone gives too few tiles for 132 SMs.
      {64, {kSmall, kSmallN256, kMidSK}},
      // Small batches of tokens (M <= 256): few tiles; 64-row tiles double them, a 128x128 ping-pong
      // tile is efficient once M fills it, and stream-K fills the machine when K is long. At wide N
      // one wave of 128x256 tiles covers it (M = 129..256, N = 12288: 96 tiles, 1.3x ahead of the
      // 192 tiles of 128x128 in two waves).
      {256, {kSmall, kSmallN256, kMidPP, kMidSK, kBigSK, kBig}},
      // M = 257..1024 (the Flux text stream, SD3's and PixArt's text tokens): 3-8 M tiles, so N
      // decides. 128x256 leaves most SMs idle at N = 3072 (48 tiles): 128x128 tiles (ping-pong hides
      // the epilogue), 128x192 where N is a multiple of 192, stream-K for long K.
      // 64x128 stays a candidate up to M = 1024: at M = 257..448 it still fits one wave where a 2x1
      // cluster of 128-row tiles pads to the next (measured 12.2 vs 15.5 us at M = 320, N = K = 3072).
      // 64x256 and 64x128 ping-pong at their measured multi-tile efficiencies (above); 128x144 where
      // N = 9216 fills two waves with it; the 64x192 and 64x48 tiles that fill one wave (last: a tie
      // keeps the tiles measured on more shapes).
      {1024, {kMidPP, kMid, kN192, kSmallN256Wide, kBigSK, kMidSK, kSmallMany, kN144PP, kSmallN192, kSmallN48}},
      // M = 1025..3008 (a few waves): as for large M, plus 64x256 ping-pong, which wins at wide N up to
      // M = 3008 and falls behind from M = 3072 on (measured; not modelled).
      {3008, {kBig, kN192, kMidPP, kMid, kBigSK, kSmallN256Wide}},
      // Large M (image tokens): several waves; 128x128 ping-pong (its epilogue hidden behind the other
      // consumer's mainloop) unless N or the wave count fits 256 or 192 better (Flux-dev's N = 21504),
      // or the last wave is mostly empty (stream-K).
      {INT64_MAX, {kBig, kN192, kMidPPMany, kN144PP, kMid, kBigSK, kBigSKLongK}},
  };
  return table;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Estimated time in units of "one 128x256 k-iteration on one SM".
double estimated_time(const Candidate& c, int64_t m, int64_t n, int64_t k, int sm_count) {
  const int64_t ctas = std::max<int64_t>(c.cluster_size, sm_count / c.cluster_size * c.cluster_size);
  // The persistent tile scheduler pads the M tiles to a whole number of clusters (clusters are 2x1
  // along M): 5 M tiles of a 2x1 cluster run as 6. Leaving this out made the model believe that
  // M = 576, N = 3072 (5 x 24 = 120 tiles of 128x128) fits 132 SMs in one wave; it runs 144 tiles in
  // two, 1.7x slower than M = 704 on a one-wave 64x256 tile (tune.json, the heuristic's worst cliff).
  const int64_t m_tiles = ceil_div(ceil_div(m, c.tile_m), c.cluster_size) * c.cluster_size;
  const int64_t tiles = m_tiles * ceil_div(n, c.tile_n);
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
      const GemmKernel* best_dp = nullptr;  // best data-parallel candidate
      const GemmKernel* best_sk = nullptr;  // best stream-K candidate
      double dp_time = 0, sk_time = 0;
      for (const auto& [c, k] : b.candidates) {
        if (!k || p.k < c.min_k || !k->can_implement(p).ok()) continue;
        const double t = estimated_time(c, p.m, p.n, p.k, sm_count);
        // Ties keep the earlier (preferred) candidate.
        if (c.stream_k && (!best_sk || t < sk_time)) best_sk = k, sk_time = t;
        if (!c.stream_k && (!best_dp || t < dp_time)) best_dp = k, dp_time = t;
      }
      const GemmKernel* best =
          best_sk && (!best_dp || sk_time < (1.0 - kStreamKMargin) * dp_time) ? best_sk : best_dp;
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
