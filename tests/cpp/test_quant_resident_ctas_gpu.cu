// resident_ctas (src/quant/row_launch.cuh) says whether a persistent grid's CTAs an SM are set by their
// shared memory, which decides whether a one-warp grid launches programmatically (row_path.h:
// launches_programmatically). Checked on two marker kernels of the same footprint as LayerNorm's cached
// one-warp rows (32 threads, 12 KB of dynamic shared memory) and with no dynamic shared memory, on the
// GPU's own occupancy rules, and for a second thread count reading a carveout a first one capped (the
// case the first form of the rule missed at c5ccc31).
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include "quant/row_launch.cuh"

namespace int8dit::quant {
namespace {

// A few registers a thread: registers never set the count, so shared memory (or nothing) does.
__global__ void marker_with_shared(float* out) {
  extern __shared__ float cache[];
  cache[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncwarp();
  if (out) out[threadIdx.x] = cache[31 - threadIdx.x % 32];
}
__global__ void marker_for_second_count(float* out) {
  extern __shared__ float cache[];
  cache[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  if (out) out[threadIdx.x] = cache[blockDim.x - 1 - threadIdx.x];
}

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

TEST(ResidentCtas, SaysWhenSharedMemorySetsTheCtasAnSm) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA GPU: this test runs on the GPU machine";
  static ResidentCtaCache cache = {};
  constexpr size_t kSmemPerThread = 384;  // 12 KB a 32-thread CTA, as LayerNorm's 32 x 6 channel cache
  int ctas = 0;
  bool smem_limited = false;
  ASSERT_TRUE(resident_ctas(marker_with_shared, cache, 32, kSmemPerThread * kMaxRowThreads, &ctas, kMaxRowThreads,
                            /*keep_l1=*/true, &smem_limited)
                  .ok());
  EXPECT_GT(ctas, 0);
  EXPECT_TRUE(smem_limited) << "12 KB one-warp CTAs of a light kernel: shared memory holds their count";
  EXPECT_FALSE(launches_programmatically(32, smem_limited));
  // The cached answer is the same.
  int again = 0;
  bool limited_again = false;
  ASSERT_TRUE(resident_ctas(marker_with_shared, cache, 32, kSmemPerThread * kMaxRowThreads, &again, kMaxRowThreads,
                            true, &limited_again)
                  .ok());
  EXPECT_EQ(again, ctas);
  EXPECT_EQ(limited_again, smem_limited);

  static ResidentCtaCache no_smem_cache = {};
  ASSERT_TRUE(resident_ctas(marker_with_shared, no_smem_cache, 32, 0, &ctas, kMaxRowThreads, false, &smem_limited).ok());
  EXPECT_FALSE(smem_limited) << "no dynamic shared memory: it cannot be what sets the count";
}

TEST(ResidentCtas, ASecondThreadCountSeesTheCarveoutTheFirstCapped) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA GPU: this test runs on the GPU machine";
  static ResidentCtaCache cache = {};
  constexpr size_t kSmemPerThread = 384;
  int ctas = 0;
  bool limited64 = false, limited32 = false;
  // 64 threads first (as the 3072-column rows of the same LayerNorm kernel), then 32.
  ASSERT_TRUE(resident_ctas(marker_for_second_count, cache, 64, kSmemPerThread * kMaxRowThreads, &ctas,
                            kMaxRowThreads, true, &limited64)
                  .ok());
  ASSERT_TRUE(resident_ctas(marker_for_second_count, cache, 32, kSmemPerThread * kMaxRowThreads, &ctas,
                            kMaxRowThreads, true, &limited32)
                  .ok());
  EXPECT_TRUE(limited64);
  EXPECT_TRUE(limited32) << "the 32-thread CTAs are held by shared memory at the carveout the 64-thread query set";
}

}  // namespace
}  // namespace int8dit::quant
