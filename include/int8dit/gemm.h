// int8dit: the fused W8A8 GEMM (DESIGN.md "Semantics").
//
//   acc[m][n] = sum_k A[m][k] * B[n][k]                       exact int32
//   D[m][n]   = float(acc) * (scale_a[m] * scale_b[n]) + bias[n]   fp32, rounded once to D's type
//
// A: int8 activations [M, K] row-major (lda >= K). B: int8 weights [N, K] row-major, the nn.Linear
// layout (ldb >= K), so D = A B^T ("TN"). D: [M, N] row-major (ldd >= N).
// With d_type == kInt32 the raw accumulator is written and scales/bias must be null.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "int8dit/status.h"
#include "int8dit/types.h"

namespace int8dit {

enum class ScaleMode {
  kPerTensor,  // one fp32 value
  kPerRow,     // scale_a: one per row of A (per token), length M
  kPerCol,     // scale_b: one per row of B (per output channel), length N
};

struct GemmParams {
  int64_t m = 0, n = 0, k = 0;

  const int8_t* a = nullptr;  // [M, K]
  int64_t lda = 0;
  const int8_t* b = nullptr;  // [N, K]
  int64_t ldb = 0;

  const float* scale_a = nullptr;  // kPerRow (length M) or kPerTensor (length 1)
  ScaleMode scale_a_mode = ScaleMode::kPerRow;
  const float* scale_b = nullptr;  // kPerCol (length N) or kPerTensor (length 1)
  ScaleMode scale_b_mode = ScaleMode::kPerCol;
  const float* bias = nullptr;     // optional, fp32, length N

  void* d = nullptr;               // [M, N]
  DType d_type = DType::kBF16;     // kBF16, kFP16, kFP32 or kInt32 (raw accumulator)
  int64_t ldd = 0;

  void* workspace = nullptr;       // caller-owned, at least gemm_workspace_size() bytes
  size_t workspace_bytes = 0;
};

// Which kernel family serves a GPU of compute capability `cc` (major*10+minor), for the user's eyes.
enum class KernelFamily {
  kNone,          // below sm_80: not supported
  kSm80MmaSync,   // Ampere / Ada: cp.async + mma.sync m16n8k32
  kSm90Wgmma,     // Hopper: TMA + wgmma, warp-specialized
};
KernelFamily kernel_family_for(int cc);
const char* to_string(KernelFamily f);

// Optional per-call control (benchmarks, the CLI and the tuner force configurations with it).
struct GemmOptions {
  // Name of a kernel configuration to force (see gemm_config_names()); empty = dispatch picks.
  const char* config = nullptr;
  // Force the Ampere/Ada (mma.sync) family even on Hopper, to test it there.
  bool force_sm80 = false;
  // Check that every pointer is device memory of the current device: one driver query per pointer
  // (~0.15-0.2 us each on the H200's host) the first time, then from each thread's memory of the
  // allocations it found good (a pointer into a freed allocation is not caught once remembered).
  // Off skips even that where the caller already knows, as torch does.
  bool check_pointers = true;
  // Hopper: launch with programmatic dependent launch (PDL), so the GEMM's blocks start and set up
  // (barriers, TMA descriptors) while the kernel before it in the stream finishes; they read and write
  // global memory only once that kernel has completed and its writes are visible (griddepcontrol.wait).
  // false, or INT8DIT_PDL=0 in the environment, launches in plain stream order. Ampere/Ada ignore it.
  bool programmatic_launch = true;
};

// Argument checks (sizes, strides, alignment, types), no CUDA calls. The GEMM runs these itself.
Status validate(const GemmParams& p);
// validate() plus: this GPU has a kernel family and a configuration that serves the problem.
Status gemm_can_implement(const GemmParams& p, const GemmOptions* opts = nullptr);
// Bytes of workspace the chosen configuration needs (0 for most).
size_t gemm_workspace_size(const GemmParams& p, const GemmOptions* opts = nullptr);

// Run on `stream` (device pointers). M = 0 is an empty batch: Ok, nothing written.
Status gemm_w8a8(const GemmParams& p, cudaStream_t stream, const GemmOptions* opts = nullptr);

// The configuration dispatch would pick for this problem on the current GPU ("" if none).
std::string gemm_selected_config(const GemmParams& p, const GemmOptions* opts = nullptr);
// Names of every configuration built into this library for the current GPU's family, comma-separated.
std::string gemm_config_names(const GemmOptions* opts = nullptr);

}  // namespace int8dit
