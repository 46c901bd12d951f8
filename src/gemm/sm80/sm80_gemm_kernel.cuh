// The mma.sync W8A8 GEMM kernel and its launcher, a header-only template: each file in inst/
// instantiates sm80_gemm_run for one {output type, tile, warps, stages} (see gen_instantiations.py).
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <atomic>
#include <string>

#include "core/cuda_check.h"
#include "gemm/sm80/sm80_epilogue.cuh"
#include "gemm/sm80/sm80_gemm_run.h"
#include "gemm/sm80/sm80_mainloop.cuh"

namespace int8dit::sm80 {

// One CTA computes one BM x BN tile of D: blockIdx.x walks M, blockIdx.y walks N.
template <DType Out, class Mainloop>
__global__ void __launch_bounds__(Mainloop::kThreads, 1) sm80_w8a8_gemm_kernel(const Sm80GemmArgs args) {
  using namespace cute;
  using X = Underscore;
  extern __shared__ __align__(128) char smem[];

  auto tile = typename Mainloop::TileShape{};
  const int m_blk = blockIdx.x, n_blk = blockIdx.y;
  Tensor mA = make_tensor(make_gmem_ptr(args.a), make_shape(args.m, args.k), make_stride(args.lda, _1{}));
  Tensor mB = make_tensor(make_gmem_ptr(args.b), make_shape(args.n, args.k), make_stride(args.ldb, _1{}));
  Tensor gA = local_tile(mA, tile, make_coord(m_blk, n_blk, _), Step<_1, X, _1>{});  // (BM, BK, k_tiles)
  Tensor gB = local_tile(mB, tile, make_coord(m_blk, n_blk, _), Step<X, _1, _1>{});  // (BN, BK, k_tiles)

  // The collective predicates rows past M / N and starts on the partial K tile (k_residue <= 0).
  const int m0 = m_blk * size<0>(tile), n0 = n_blk * size<1>(tile);
  auto residue_mnk = make_tuple(args.m - m0, args.n - n0, args.k - size<1>(gA) * size<2>(gA));

  typename Mainloop::TiledMma tiled_mma;
  Tensor acc = partition_fragment_C(tiled_mma, take<0, 2>(tile));
  clear(acc);
  typename Mainloop::Collective mainloop;
  mainloop(acc, gA, gB, acc, make_coord_iterator(size<2>(gA)), int(size<2>(gA)), residue_mnk, int(threadIdx.x), smem);

  sm80_epilogue<Out>(args, acc, tiled_mma, take<0, 2>(tile), m0, n0, int(threadIdx.x));
}

template <DType Out, int BM, int BN, int BK, int WarpsM, int WarpsN, int Stages>
Status sm80_gemm_run(const GemmParams& p, cudaStream_t stream) {
  using Mainloop = Sm80Mainloop<BM, BN, BK, WarpsM, WarpsN, Stages>;
  auto* kernel = &sm80_w8a8_gemm_kernel<Out, Mainloop>;
  constexpr int kSmem = static_cast<int>(Mainloop::kSmemBytes);

  // NOTE: tiles over 48 KiB of smem need the opt-in attribute, set once per device (it is per context).
  if constexpr (kSmem > 48 * 1024) {
    constexpr int kMaxDevices = 64;
    static std::array<std::atomic<bool>, kMaxDevices> opted_in{};
    int dev = 0;
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaGetDevice(&dev), "cudaGetDevice"));
    if (dev >= kMaxDevices || !opted_in[dev].load(std::memory_order_acquire)) {
      const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
      if (err != cudaSuccess) {
        cudaGetLastError();
        return Status(StatusCode::kNotSupported,
                      "this GPU cannot give " + std::to_string(kSmem) + " bytes of shared memory to one block (" +
                          cudaGetErrorString(err) + "): force a configuration with a smaller tile");
      }
      if (dev < kMaxDevices) opted_in[dev].store(true, std::memory_order_release);
    }
  }

  const Sm80GemmArgs args{static_cast<int>(p.m), static_cast<int>(p.n), static_cast<int>(p.k),
                          p.a, p.lda, p.b, p.ldb,
                          p.scale_a, p.scale_b, p.bias,
                          p.scale_a_mode == ScaleMode::kPerRow, p.scale_b_mode == ScaleMode::kPerCol,
                          p.d, p.ldd};
  const dim3 grid(static_cast<unsigned>((p.m + BM - 1) / BM), static_cast<unsigned>((p.n + BN - 1) / BN));
  kernel<<<grid, Mainloop::kThreads, kSmem, stream>>>(args);
  return detail::last_launch_status("sm80_w8a8_gemm_kernel");
}

}  // namespace int8dit::sm80
