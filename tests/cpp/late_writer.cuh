// A kernel that stands in for "the kernel before" in the programmatic-launch tests: it releases its
// dependents at once (griddepcontrol.launch_dependents), spins for a while, then overwrites some byte
// ranges and records what one word of an output held meanwhile. A kernel launched programmatically
// right behind it starts during the spin (test_gemm_programmatic_launch_gpu.cu's probe checks that it
// does on this GPU); it must nevertheless compute with the new bytes and write nothing before the
// writer is done.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace int8dit::test {

constexpr uint64_t kLateWriterSpinNs = 300'000;  // far longer than a launch: the early start cannot be missed

__device__ inline void release_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ inline uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Byte ranges the writer overwrites: dst[i] = src[i] for i < bytes, for each of `count` regions.
struct Copies {
  struct Region {
    void* dst = nullptr;
    const void* src = nullptr;
    int64_t bytes = 0;
  };
  Region regions[3];
  int count = 0;

  Copies& add(void* dst, const void* src, int64_t bytes) {
    regions[count++] = {dst, src, bytes};
    return *this;
  }
};

// Releases its dependents, waits spin_ns, performs `copies`, and records the first word of `d` (what
// an output of the kernel behind it held while this kernel ran) in *d_seen.
__global__ void late_writer(Copies copies, const uint32_t* d, uint32_t* d_seen, uint64_t spin_ns) {
  release_dependents();
  const uint64_t start = global_ns();
  while (global_ns() - start < spin_ns) {
  }
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int r = 0; r < copies.count; ++r) {
    auto* dst = static_cast<uint8_t*>(copies.regions[r].dst);
    const auto* src = static_cast<const uint8_t*>(copies.regions[r].src);
    for (int64_t i = first; i < copies.regions[r].bytes; i += step) dst[i] = src[i];
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) *d_seen = *d;
}

}  // namespace int8dit::test
