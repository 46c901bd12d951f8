// The Ampere/Ada int8 mainloop: CUTLASS's CuTe sm80 collective (cp.async multi-stage pipeline,
// ldmatrix, mma.sync m16n8k32 s8.s8.s32) specialized for int8dit's TN layout (A [M,K] and B [N,K],
// both K-major). Only types live here; the kernel is sm80_gemm_kernel.cuh.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/gemm/collective/collective_mma.hpp>
#include <cutlass/gemm/dispatch_policy.hpp>

namespace int8dit::sm80 {

using namespace cute;

// One tile configuration: CTA tile BM x BN x BK, a WarpsM x WarpsN grid of warps, Stages smem buffers.
template <int BM, int BN, int BK, int WarpsM, int WarpsN, int Stages>
struct Sm80Mainloop {
  // NOTE: the swizzle below is derived for 64-byte smem rows (BK = 64 int8): it spreads the 8 rows an
  // ldmatrix phase reads over all 32 banks. Another BK needs another swizzle.
  static_assert(BK == 64, "the smem swizzle is written for BK = 64 int8 (64-byte rows)");
  static_assert(BM % (16 * WarpsM) == 0 && BN % (16 * WarpsN) == 0, "a warp's tile must hold whole 16x16 steps");

  static constexpr int kThreads = WarpsM * WarpsN * 32;
  static constexpr int kStages = Stages;
  using TileShape = Shape<Int<BM>, Int<BN>, Int<BK>>;

  // Each warp issues 16x8x32 mma.sync; the N permutation of 16 per warp lets one ldmatrix.x4 feed
  // two MMAs' worth of B (16 n x 32 k), as one feeds A (16 m x 32 k).
  using TiledMma = TiledMMA<MMA_Atom<SM80_16x8x32_S32S8S8S32_TN>, Layout<Shape<Int<WarpsM>, Int<WarpsN>, _1>>,
                            Tile<Int<16 * WarpsM>, Int<16 * WarpsN>, _32>>;

  // K-major 16 x 64 int8 atom; Swizzle<2,4,3> XORs the 16-byte granule index (bits 4-5) with row bits
  // 1-2, so rows r..r+7 of one granule land in 8 distinct 16-byte bank groups.
  using SmemLayoutAtom = decltype(composition(Swizzle<2, 4, 3>{}, Layout<Shape<_16, Int<BK>>, Stride<Int<BK>, _1>>{}));

  // 16-byte cp.async per thread, BK/16 threads per row; CACHEGLOBAL skips L1 for streamed tiles.
  static constexpr int kThreadsPerRow = BK / 16;
  using GmemTiledCopy = decltype(make_tiled_copy(
      Copy_Atom<SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>, int8_t>{},
      Layout<Shape<Int<kThreads / kThreadsPerRow>, Int<kThreadsPerRow>>, Stride<Int<kThreadsPerRow>, _1>>{},
      Layout<Shape<_1, _16>>{}));
  using SmemCopyAtom = Copy_Atom<SM75_U32x4_LDSM_N, int8_t>;

  using StrideAB = cute::Stride<int64_t, _1>;
  using Collective = cutlass::gemm::collective::CollectiveMma<
      cutlass::gemm::MainloopSm80CpAsync<Stages>, TileShape,
      int8_t, StrideAB, int8_t, StrideAB, TiledMma,
      GmemTiledCopy, SmemLayoutAtom, SmemCopyAtom, cute::identity,
      GmemTiledCopy, SmemLayoutAtom, SmemCopyAtom, cute::identity>;

  static constexpr size_t kSmemBytes = sizeof(typename Collective::SharedStorage);
};

}  // namespace int8dit::sm80
