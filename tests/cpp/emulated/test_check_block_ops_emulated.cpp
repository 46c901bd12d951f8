// `int8dit check`'s block-ops step (tools/int8dit/check_block_ops.cpp) without a GPU: the CUDA runtime
// is stubbed with host memory (cuda_runtime_stubs.cpp) and the library's gated_add and qk_norm_rope
// GPU entry points are stood in for by the CPU reference, with the bugs a kernel typically has
// switched on one at a time. The reference itself must pass over seeds and shapes (head_dim 16 to
// 128); each bug must fail the bit-exact comparison, so the step's poisons, NaN rule and layouts are
// tested on every CI run.
//
// Built apart from the library (tests/CMakeLists.txt), whose GPU entry points this file defines.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "check_block_ops.h"
#include "int8dit/attention.h"
#include "int8dit/residual.h"
#include "emulated_check.h"
#include "ref/half_bits.h"

namespace {

enum class Bug { kNone, kLastElementUnwritten, kOneUlpOff, kRowOfZeros, kCosSinSwapped };
Bug g_bug = Bug::kNone;

// The bugs, applied to a [rows, cols] output (row stride ld) the reference wrote. kRowOfZeros zeros
// row 1: x's NaN row for gated_add, a head of token 0 for qk_norm_rope (rows of head_dim).
void spoil(void* out, int64_t rows, int64_t cols, int64_t ld, uint16_t poison) {
  auto* o = static_cast<uint16_t*>(out);
  if (g_bug == Bug::kLastElementUnwritten) o[(rows - 1) * ld + cols - 1] = poison;
  if (g_bug == Bug::kOneUlpOff) o[cols / 2] ^= 1;
  if (g_bug == Bug::kRowOfZeros && rows > 1)
    for (int64_t k = 0; k < cols; ++k) o[ld + k] = 0;
}

}  // namespace

// The library's GPU entry points, as the reference computes them (and the bug spoils them).
namespace int8dit {

Status gated_add(const GatedAddParams& p, cudaStream_t) {
  if (Status st = ref::gated_add(p); !st.ok()) return st;
  spoil(p.out, p.rows, p.cols, p.ld_out, 0xff80);
  return Status::Ok();
}

Status qk_norm_rope(const QKNormRopeParams& p, cudaStream_t) {
  QKNormRopeParams q = p;
  if (g_bug == Bug::kCosSinSwapped) std::swap(q.cos, q.sin);  // every element written, all rotated wrong
  if (Status st = ref::qk_norm_rope(q); !st.ok()) return st;
  spoil(p.out, p.batches * p.tokens * p.heads, p.head_dim, p.head_dim, 0xff80);
  return Status::Ok();
}

}  // namespace int8dit

namespace {

using int8dit::cli::GpuResult;

GpuResult check(int64_t m, int64_t k, uint32_t seed) {
  return int8dit::cli::check_block_ops(check_activations(m, k, seed), m, k, seed);
}

using BugGuard = ScopedSet<Bug>;

TEST(CheckBlockOpsEmulated, CorrectKernelsPassOverSeedsAndShapes) {
  BugGuard none(g_bug, Bug::kNone);
  // K = 512 (head_dim 128), 16 (16), 48 (16: the largest power of two dividing it), 1008 (16), 192 (64)
  for (const auto& [m, k] : {std::pair<int64_t, int64_t>{77, 512}, {1, 16}, {2, 48}, {64, 1008}, {9, 192}})
    for (uint32_t seed = 1; seed <= 4; ++seed) EXPECT_EQ(check(m, k, seed), GpuResult::kAgrees) << m << " x " << k;
}

TEST(CheckBlockOpsEmulated, KernelsThatLeaveOutputsUnwrittenOrWrongFail) {
  for (const Bug bug : {Bug::kLastElementUnwritten, Bug::kOneUlpOff, Bug::kRowOfZeros, Bug::kCosSinSwapped}) {
    BugGuard with(g_bug, bug);
    EXPECT_EQ(check(77, 512, 1), GpuResult::kMismatch) << "bug " << static_cast<int>(bug);
  }
}

}  // namespace
