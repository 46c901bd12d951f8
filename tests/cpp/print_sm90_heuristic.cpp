// Prints the Hopper heuristic's pick (src/gemm/sm90/heuristic.cu) for a grid of bf16 shapes, one
// "sm_count m n k configuration" line each, for tests/check_heuristic_mirror.py, which replays the
// Python mirror of the same model (bench/tune/fit_heuristic.py) on every line. The heuristic's
// constants are fitted and judged with that mirror, so it must pick what the library picks.
// Host code only: runs without a GPU. Exits 77 (ctest: skipped) where no sm_90 kernel is built.
#include <cstdint>
#include <cstdio>
#include <initializer_list>

#include "gemm/kernel_registry.h"
#include "int8dit/gemm.h"

int main() {
  using int8dit::detail::sm90_heuristic;
  if (int8dit::detail::sm90_kernels().empty()) {
    std::printf("no sm_90 kernels in this build: nothing to compare\n");
    return 77;
  }
  // M across every bucket edge and the DiT token counts; N and K the DiT hidden sizes and MLP widths.
  const std::initializer_list<int64_t> ms = {1,    16,   64,   65,   128,  256,  257,  300,  333,  448,  512,  513,
                                             576,  768,  1024, 1025, 1536, 2048, 2304, 3008, 3009, 3072, 4096, 4097,
                                             4608, 5120, 8192, 16384};
  const std::initializer_list<int64_t> ns = {1152, 1536, 3072, 3456, 4608, 6144, 9216, 12288, 21504};
  const std::initializer_list<int64_t> ks = {1152, 1536, 3072, 4608, 6144, 12288, 15360};
  for (const int sm_count : {132, 114, 78}) {
    for (const int64_t m : ms) {
      for (const int64_t n : ns) {
        for (const int64_t k : ks) {
          int8dit::GemmParams p;
          p.m = m, p.n = n, p.k = k;
          p.lda = k, p.ldb = k, p.ldd = n;
          p.d_type = int8dit::DType::kBF16;
          const int8dit::detail::GemmKernel* pick = sm90_heuristic(p, sm_count);
          std::printf("%d %lld %lld %lld %s\n", sm_count, static_cast<long long>(m), static_cast<long long>(n),
                      static_cast<long long>(k), pick ? pick->name : "none");
        }
      }
    }
  }
  return 0;
}
