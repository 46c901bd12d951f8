// swiglu_quantize on the GPU against the CPU reference, within the fused ops' tolerance: silu(gate) *
// up from two separate inputs with strides of their own. Every shape of the quantization tests
// (quant_gpu_test_support.h) that the vector kernels take (the op's only kernels: cols % 8 == 0 up to
// 24576, over 16384 in the 512-thread one, strides of whole vectors); the others must be refused with
// kNotSupported, nothing written.
// Padding is NaN, so a kernel that reads past either input's row gives a NaN scale.
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

bool vector_kernels_take(const Case& c) { return c.cols % 8 == 0 && c.cols <= 24576 && c.ldx % 8 == 0 && c.ldq % 8 == 0; }

// One case against the reference: gate = the case's random rows (with its NaN/Inf rows), up = another
// draw with 8 more padding columns a row (its own stride, so a kernel reading up with gate's is caught).
void expect_case_matches_reference(const Case& c, ToleranceTally& tally) {
  SCOPED_TRACE(c.name());
  auto gate = random_rows(c);
  condition_extreme_column(c, gate);
  Case up_case = c;
  up_case.ldx = c.ldx + 8;
  const auto up = random_rows(up_case);
  const auto smooth = random_smooth(c);
  Outputs ref(c), gpu(c);
  DeviceArray<uint16_t> dgate(gate), dup(up);
  DeviceArray<float> dsmooth(smooth);
  DeviceArray<int8_t> dq(gpu.q);
  DeviceArray<float> dscale(gpu.scale);

  int8dit::SwigluQuantizeParams p;
  p.rows = c.rows, p.cols = c.cols, p.gate = gate.data(), p.ld_gate = c.ldx, p.up = up.data(), p.ld_up = up_case.ldx;
  p.x_type = c.type, p.smooth = c.smooth ? smooth.data() : nullptr;
  p.q = ref.q.data(), p.ldq = c.ldq, p.scale = ref.scale.data();
  ASSERT_TRUE(int8dit::ref::swiglu_quantize(p).ok());

  p.gate = dgate.get(), p.up = dup.get(), p.smooth = c.smooth ? dsmooth.get() : nullptr;
  p.q = dq.get(), p.scale = dscale.get();
  const Status st = int8dit::swiglu_quantize(p, nullptr);
  if (!vector_kernels_take(c)) {
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
  if (c.rows > 3) {
    EXPECT_TRUE(std::isnan(gpu.scale[1]) && std::isnan(gpu.scale[2])) << "NaN/Inf rows have a NaN scale";
  }
}

TEST(SwigluQuantizeGpu, MatchesReferenceWithinToleranceFromTwoPaddedInputs) {
  REQUIRE_GPU();
  ToleranceTally tally;
  int taken = 0;
  for (Case c : cases()) {
    c.y = false;  // the op has no y output
    taken += vector_kernels_take(c);
    expect_case_matches_reference(c, tally);
  }
  EXPECT_GT(taken, 10);
  tally.expect_within_bound();
}

// FLUX.2's feed-forward: gate and up are the two halves of one [rows, 2 cols] output. 3072 is a small
// FLUX.2 configuration's width (the 256-thread kernel); 18432 FLUX.2-dev's (the 512-thread kernel,
// 384 threads x 6 vectors).
void expect_halves_read_in_place(int64_t rows, int64_t cols) {
  SCOPED_TRACE("cols " + std::to_string(cols));
  ToleranceTally tally;
  const Case c{rows, cols, 2 * cols, cols, DType::kBF16, false, false};
  // rows of 2 cols, all of them values (a case of cols columns would pad the up half with NaN): gate in
  // the first cols columns, up in the rest
  const auto h = random_rows(Case{rows, 2 * cols, 2 * cols, 2 * cols, DType::kBF16, false, false});
  Outputs ref(c), gpu(c);
  DeviceArray<uint16_t> dh(h);
  DeviceArray<int8_t> dq(gpu.q);
  DeviceArray<float> dscale(gpu.scale);
  int8dit::SwigluQuantizeParams p;
  p.rows = c.rows, p.cols = c.cols, p.gate = h.data(), p.ld_gate = 2 * cols, p.up = h.data() + cols, p.ld_up = 2 * cols;
  p.q = ref.q.data(), p.ldq = c.ldq, p.scale = ref.scale.data();
  ASSERT_TRUE(int8dit::ref::swiglu_quantize(p).ok());
  p.gate = dh.get(), p.up = dh.get() + cols, p.q = dq.get(), p.scale = dscale.get();
  const Status st = int8dit::swiglu_quantize(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  gpu.q = dq.download();
  gpu.scale = dscale.download();
  expect_within_tolerance(c, gpu, ref, tally);
  tally.expect_within_bound();
  int finite_scales = 0;
  for (float s : gpu.scale) finite_scales += std::isfinite(s);
  EXPECT_GT(finite_scales, c.rows / 2) << "the halves hold values, not padding";
}

TEST(SwigluQuantizeGpu, TheHalvesOfOneProjectionAreReadInPlace) {
  REQUIRE_GPU();
  expect_halves_read_in_place(333, 3072);
  expect_halves_read_in_place(96, 18432);
}

TEST(SwigluQuantizeGpu, RowsOverTheRegisterKernelsLimitRunTheWideKernelUpTo24576) {
  // Over 16384 columns: the 512-thread kernel, from its shortest row (16392: 352 threads, the last
  // vectors on some threads only) to its longest (24576: 512 x 6), strided and smoothed; one past it
  // is refused (the generic cases hold 20000 with a divisor and refuse 32768).
  REQUIRE_GPU();
  ToleranceTally tally;
  const Case taken[] = {{37, 16392, 16400, 16392, DType::kFP16, true, false},
                        {41, 18432, 18432, 18440, DType::kBF16, false, false},
                        {19, 24576, 24584, 24576, DType::kBF16, true, false}};
  for (const Case& c : taken) expect_case_matches_reference(c, tally);
  expect_case_matches_reference(Case{3, 24584, 24584, 24584, DType::kBF16, false, false}, tally);  // refused
  tally.expect_within_bound();
}

TEST(SwigluQuantizeGpu, BadArgumentsAreRefusedBeforeAnythingIsWritten) {
  REQUIRE_GPU();
  RefusedCallBuffers b;
  int8dit::SwigluQuantizeParams p;
  p.rows = 4, p.cols = 64, p.gate = b.dx.get(), p.ld_gate = 64, p.up = b.dx.get(), p.ld_up = 64;
  p.q = b.dq.get(), p.ldq = 48, p.scale = b.dscale.get();
  Status st = int8dit::swiglu_quantize(p, nullptr);
  EXPECT_NE(st.message().find("ldq = 48"), std::string::npos) << st.message();
  p.ldq = 64;
  p.up = b.x.data();  // host memory
  st = int8dit::swiglu_quantize(p, nullptr);
  EXPECT_NE(st.message().find("up (the input the SiLU multiplies)"), std::string::npos) << st.message();
  p.up = b.dx.get(), p.ld_up = 65;  // an odd stride: no 16-byte loads, and no scalar kernel for this op
  st = int8dit::swiglu_quantize(p, nullptr);
  EXPECT_EQ(st.code(), int8dit::StatusCode::kNotSupported) << st.to_string();
  b.expect_nothing_written();
}

}  // namespace
