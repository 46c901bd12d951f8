// concat_swiglu_quantize on the GPU against the CPU reference, within the fused ops' tolerance: the row
// [a | silu(gate) * up] of FLUX.2's single-stream to_out, read from three separate, padded inputs.
// Every shape of the quantization tests (quant_gpu_test_support.h) split into a (about a fifth:
// a_columns) and the gated part; FLUX.2-dev's own row (6144 + 18432) has a test of its own: the vector kernels take it where both widths are
// multiples of 8, the strides allow 16-byte loads and the row is at most 24576 columns (over 16384: the
// 512-thread kernel); otherwise the call is refused with kNotSupported and nothing is written. Padding
// is NaN, so a kernel that reads past any input's row gives a NaN scale. NOTE: new on 2026-12-05, not
// yet run on a GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "quant_gpu_test_support.h"

namespace {

using namespace quant_gpu_test;

bool vector_kernels_take(const Case& c, int64_t a_cols, int64_t pad) {
  return a_cols % 8 == 0 && c.cols % 8 == 0 && c.cols <= 24576 && pad % 8 == 0 && c.ldq % 8 == 0;
}

// One case: a = the first a_cols columns of the case's random rows, gate = the rest, both padded as
// the case pads; up = another draw of the gated part with 8 more padding columns (its own stride).
void expect_case_matches_reference(const Case& c, int64_t a_cols, ToleranceTally& tally) {
  const int64_t h_cols = c.cols - a_cols;
  const int64_t pad = c.ldx - c.cols;
  SCOPED_TRACE(c.name() + " a_cols " + std::to_string(a_cols));
  auto x = random_rows(c);
  condition_extreme_column(c, x);
  const auto a = take_columns(c, x, 0, a_cols, pad);
  const auto gate = take_columns(c, x, a_cols, h_cols, pad);
  Case up_case = c;
  const auto up_rows = random_rows(up_case);
  const auto up = take_columns(c, up_rows, a_cols, h_cols, pad + 8);
  const auto smooth = random_smooth(c);
  Outputs ref(c), gpu(c);
  DeviceArray<uint16_t> da(a), dgate(gate), dup(up);
  DeviceArray<float> dsmooth(smooth);
  DeviceArray<int8_t> dq(gpu.q);
  DeviceArray<float> dscale(gpu.scale);

  int8dit::ConcatSwigluQuantizeParams p;
  p.rows = c.rows, p.a = a.data(), p.a_cols = a_cols, p.lda = a_cols + pad;
  p.gate = gate.data(), p.ld_gate = h_cols + pad, p.up = up.data(), p.ld_up = h_cols + pad + 8, p.h_cols = h_cols;
  p.x_type = c.type, p.smooth = c.smooth ? smooth.data() : nullptr;
  p.q = ref.q.data(), p.ldq = c.ldq, p.scale = ref.scale.data();
  ASSERT_TRUE(int8dit::ref::concat_swiglu_quantize(p).ok());

  p.a = da.get(), p.gate = dgate.get(), p.up = dup.get(), p.smooth = c.smooth ? dsmooth.get() : nullptr;
  p.q = dq.get(), p.scale = dscale.get();
  const Status st = int8dit::concat_swiglu_quantize(p, nullptr);
  if (!vector_kernels_take(c, a_cols, pad)) {
    EXPECT_EQ(st.code(), int8dit::StatusCode::kNotSupported) << st.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    for (int8_t v : dq.download()) ASSERT_EQ(v, kPoisonQ);
    return;
  }
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  gpu.q = dq.download();
  gpu.scale = dscale.download();
  expect_within_tolerance(c, gpu, ref, tally);
}

TEST(ConcatSwigluQuantizeGpu, MatchesReferenceWithinToleranceFromThreePaddedInputs) {
  REQUIRE_GPU();
  ToleranceTally tally;
  const std::vector<Case> all = cases();
  int taken = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    Case c = all[i];
    c.y = false;  // the op has no y output
    const int64_t a_cols = a_columns(c, i);
    taken += vector_kernels_take(c, a_cols, c.ldx - c.cols);
    expect_case_matches_reference(c, a_cols, tally);
  }
  EXPECT_GT(taken, 10);
  tally.expect_within_bound();
}

TEST(ConcatSwigluQuantizeGpu, Flux2DevsRowOfAttentionAndTheHalvesOfOneProjection) {
  // FLUX.2-dev's single stream: a = the attention output [rows, 6144]; gate and up the halves of the MLP
  // part of to_qkv_mlp_proj's [rows, 3 x 6144 + 2 x 18432] output, read in place: 24576 columns, the
  // 512-thread kernel at its capacity.
  REQUIRE_GPU();
  ToleranceTally tally;
  constexpr int64_t kRows = 64, kA = 6144, kH = 18432, kProj = 3 * kA + 2 * kH;
  const Case c{kRows, kA + kH, kA + kH, kA + kH, DType::kBF16, false, false};
  const auto attention = random_rows(Case{kRows, kA, kA, kA, DType::kBF16, false, false});
  const auto projected = random_rows(Case{kRows, kProj, kProj, kProj, DType::kBF16, false, false});
  Outputs ref(c), gpu(c);
  DeviceArray<uint16_t> da(attention), dproj(projected);
  DeviceArray<int8_t> dq(gpu.q);
  DeviceArray<float> dscale(gpu.scale);
  int8dit::ConcatSwigluQuantizeParams p;
  p.rows = kRows, p.a = attention.data(), p.a_cols = kA, p.lda = kA;
  p.gate = projected.data() + 3 * kA, p.ld_gate = kProj, p.up = projected.data() + 3 * kA + kH, p.ld_up = kProj;
  p.h_cols = kH, p.q = ref.q.data(), p.ldq = kA + kH, p.scale = ref.scale.data();
  ASSERT_TRUE(int8dit::ref::concat_swiglu_quantize(p).ok());
  p.a = da.get(), p.gate = dproj.get() + 3 * kA, p.up = dproj.get() + 3 * kA + kH, p.q = dq.get(), p.scale = dscale.get();
  const Status st = int8dit::concat_swiglu_quantize(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  gpu.q = dq.download();
  gpu.scale = dscale.download();
  expect_within_tolerance(c, gpu, ref, tally);
  tally.expect_within_bound();
}

TEST(ConcatSwigluQuantizeGpu, BadArgumentsAreRefusedBeforeAnythingIsWritten) {
  REQUIRE_GPU();
  RefusedCallBuffers b;
  int8dit::ConcatSwigluQuantizeParams p;
  p.rows = 4, p.a = b.dx.get(), p.a_cols = 16, p.lda = 64, p.gate = b.dx.get(), p.ld_gate = 64, p.up = b.dx.get();
  p.ld_up = 64, p.h_cols = 48, p.q = b.dq.get(), p.ldq = 48, p.scale = b.dscale.get();
  Status st = int8dit::concat_swiglu_quantize(p, nullptr);
  EXPECT_NE(st.message().find("ldq = 48"), std::string::npos) << st.message();
  p.ldq = 64;
  p.up = b.x.data();  // host memory
  st = int8dit::concat_swiglu_quantize(p, nullptr);
  EXPECT_NE(st.message().find("up (the input the SiLU multiplies)"), std::string::npos) << st.message();
  p.up = b.dx.get(), p.ld_gate = 49;  // an odd stride: no 16-byte loads, and no scalar kernel for this op
  st = int8dit::concat_swiglu_quantize(p, nullptr);
  EXPECT_EQ(st.code(), int8dit::StatusCode::kNotSupported) << st.to_string();
  b.expect_nothing_written();
}

}  // namespace
