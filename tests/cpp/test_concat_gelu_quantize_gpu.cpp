// concat_gelu_quantize on the GPU against the CPU reference, within the fused ops' tolerance: the
// row [a | GELU(h)] of Flux's single-stream proj_out, read from two separate, padded inputs. Every
// shape of the quantization tests (quant_gpu_test_support.h), split in two: where a's width is a
// multiple of 8 the vector kernels run (each vector from one input), where it is not, the scalar
// path. Padding is NaN, so a kernel that reads past either input's row gives a NaN scale.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "quant_gpu_test_support.h"

namespace {

using namespace quant_gpu_test;

// One case against the reference: a = the first a_cols columns of the case's random rows, padded as
// the case pads; h = the rest, with h_pad padding columns (its own stride, so a kernel reading h with
// a's stride is caught).
void expect_case_matches_reference(const Case& c, int64_t a_cols, int64_t h_pad, ToleranceTally& tally) {
  const int64_t h_cols = c.cols - a_cols;
  const int64_t pad = c.ldx - c.cols;  // the case's padding, odd where its stride is odd
  SCOPED_TRACE(c.name() + " a_cols " + std::to_string(a_cols) + " ldh " + std::to_string(h_cols + h_pad));
  auto x = random_rows(c);
  condition_extreme_column(c, x);
  auto a = take_columns(c, x, 0, a_cols, pad);
  const auto h = take_columns(c, x, a_cols, h_cols, h_pad);
  // random_rows puts its NaN and Inf in h's columns (the middle and the last): a NaN in a's part too.
  constexpr int64_t kRowWithNaNInA = 5;
  if (c.rows > kRowWithNaNInA) a[kRowWithNaNInA * (a_cols + pad) + a_cols / 2] = to_half(kNaN, c.type);
  const auto smooth = random_smooth(c);
  Outputs ref(c), gpu(c);
  DeviceArray<uint16_t> da(a), dh(h);
  DeviceArray<float> dsmooth(smooth);
  DeviceArray<int8_t> dq(gpu.q);
  DeviceArray<float> dscale(gpu.scale);

  int8dit::ConcatGeluQuantizeParams p;
  p.rows = c.rows, p.a = a.data(), p.a_cols = a_cols, p.lda = a_cols + pad;
  p.h = h.data(), p.h_cols = h_cols, p.ldh = h_cols + h_pad, p.x_type = c.type;
  p.smooth = c.smooth ? smooth.data() : nullptr;
  p.q = ref.q.data(), p.ldq = c.ldq, p.scale = ref.scale.data();
  ASSERT_TRUE(int8dit::ref::concat_gelu_quantize(p).ok());

  p.a = da.get(), p.h = dh.get(), p.smooth = c.smooth ? dsmooth.get() : nullptr, p.q = dq.get(), p.scale = dscale.get();
  const Status st = int8dit::concat_gelu_quantize(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  gpu.q = dq.download();
  gpu.scale = dscale.download();
  expect_within_tolerance(c, gpu, ref, tally);
  if (c.rows > 3) {
    EXPECT_TRUE(std::isnan(gpu.scale[1]) && std::isnan(gpu.scale[2])) << "NaN/Inf rows have a NaN scale";
  }
  if (c.rows > kRowWithNaNInA) EXPECT_TRUE(std::isnan(gpu.scale[kRowWithNaNInA])) << "a NaN in a gives a NaN scale";
}

TEST(ConcatGeluQuantizeGpu, MatchesReferenceWithinToleranceFromTwoPaddedInputs) {
  REQUIRE_GPU();
  ToleranceTally tally;
  const std::vector<Case> all = cases();
  for (size_t i = 0; i < all.size(); ++i) {
    Case c = all[i];
    c.y = false;  // the op has no y output
    expect_case_matches_reference(c, a_columns(c, i), c.ldx - c.cols + 8, tally);
  }
  tally.expect_within_bound();
}

TEST(ConcatGeluQuantizeGpu, AnHThatAllowsNo16ByteLoadsIsReadAsItIs) {
  // a's width is a multiple of 8 and every other operand allows vectors, but h's row stride is odd:
  // the op must not take the vector kernels (which would load h in misaligned 16-byte vectors, a fault
  // or wrong values); the scalar path must read it right.
  REQUIRE_GPU();
  ToleranceTally tally;
  for (const Case& c : {Case{64, 5120, 5120, 5120, DType::kBF16, false, false},
                        Case{9, 15360, 15360, 15360, DType::kFP16, true, false}})
    expect_case_matches_reference(c, c.cols / 5, 3, tally);
  tally.expect_within_bound();
}

TEST(ConcatGeluQuantizeGpu, BadArgumentsAreRefusedBeforeAnythingIsWritten) {
  REQUIRE_GPU();
  RefusedCallBuffers b;
  int8dit::ConcatGeluQuantizeParams p;
  p.rows = 4, p.a = b.dx.get(), p.a_cols = 16, p.lda = 64, p.h = b.dx.get(), p.h_cols = 48, p.ldh = 64;
  p.q = b.dq.get(), p.ldq = 48, p.scale = b.dscale.get();
  Status st = int8dit::concat_gelu_quantize(p, nullptr);
  EXPECT_NE(st.message().find("ldq = 48"), std::string::npos) << st.message();
  p.ldq = 64;
  p.h = b.x.data();  // host memory
  st = int8dit::concat_gelu_quantize(p, nullptr);
  EXPECT_NE(st.message().find("h (the input GELU applies to)"), std::string::npos) << st.message();
  b.expect_nothing_written();
}

}  // namespace
