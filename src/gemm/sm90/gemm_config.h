// Compile-time description of one Hopper W8A8 GEMM configuration: output type, CTA tile, cluster,
// warp-specialized schedule and tile scheduler. Each instantiation file (inst/*.cu) names exactly one.
#pragma once

namespace int8dit::detail::sm90 {

// Which warp-specialized kernel runs the mainloop.
enum class Schedule {
  // Two consumer warp groups split one M tile (64 rows each): the best throughput for large tiles.
  kCooperative,
  // Two consumer warp groups take alternate tiles, so one's epilogue overlaps the other's mainloop:
  // pays off when tiles are short (small M tiles, small K).
  kPingpong,
};

// How output tiles are handed to the persistent CTAs.
enum class TileScheduling {
  kPersistent,  // data-parallel: one CTA owns a whole output tile (all of K)
  kStreamK,     // tiles' K ranges are split over CTAs so the last wave is full (needs a workspace)
};

template <class ElementD_, int kTileM_, int kTileN_, int kTileK_, int kClusterM_, int kClusterN_,
          Schedule kSchedule_, TileScheduling kScheduling_>
struct GemmConfig {
  using ElementD = ElementD_;
  static constexpr int kTileM = kTileM_;
  static constexpr int kTileN = kTileN_;
  static constexpr int kTileK = kTileK_;
  static constexpr int kClusterM = kClusterM_;
  static constexpr int kClusterN = kClusterN_;
  static constexpr Schedule kSchedule = kSchedule_;
  static constexpr TileScheduling kScheduling = kScheduling_;

  // NOTE: stream-K decomposition exists only for the cooperative kernel in CUTLASS 3.x.
  static_assert(kScheduling == TileScheduling::kPersistent || kSchedule == Schedule::kCooperative,
                "stream-K needs the cooperative schedule");
  // NOTE: the cooperative kernel splits the M tile over two warp groups of 64 rows each.
  static_assert(kSchedule != Schedule::kCooperative || kTileM % 128 == 0, "cooperative tiles need M % 128 == 0");
  // NOTE: 8-bit wgmma consumes K in steps of 32 bytes; 128 is one 128-byte swizzle row of int8.
  static_assert(kTileK % 64 == 0, "tile K must be a multiple of 64 int8 elements");
};

}  // namespace int8dit::detail::sm90
