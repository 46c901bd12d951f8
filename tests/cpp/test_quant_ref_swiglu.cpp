// CPU reference of swiglu_quantize (a gated MLP's second-linear input, silu(gate) * up): the row it
// quantizes, built here from the definition, and its argument validation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "int8dit/reference.h"
#include "quant_ref_test_support.h"

namespace {

using namespace quant_ref_test;

float swiglu(float g, float u) {
  const double d = g;
  return static_cast<float>(d / (1.0 + std::exp(-d)) * u);
}

TEST(QuantRefSwiglu, QuantizesSiluOfGateTimesUpFromStridedInputs) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // gate: 2 rows x 3 columns, ld 4; up: 2 rows x 3, ld 5; q: ldq 4 (one padding column).
  const auto gate = bf16({0.5f, -1.0f, 2.0f, nan, -3.0f, 0.25f, 8.0f, nan});
  const auto up = bf16({1.0f, -2.0f, 0.5f, nan, nan, 4.0f, -0.5f, 3.0f, nan, nan});
  for (const bool smoothed : {false, true}) {
    SCOPED_TRACE(smoothed ? "with a SmoothQuant divisor" : "no divisor");
    const std::vector<float> smooth = {1.0f, 2.0f, 0.5f};
    Outputs got(2, 4), want(2, 3);
    int8dit::SwigluQuantizeParams p;
    p.rows = 2, p.cols = 3, p.gate = gate.data(), p.ld_gate = 4, p.up = up.data(), p.ld_up = 5;
    p.smooth = smoothed ? smooth.data() : nullptr;
    p.q = got.q.data(), p.ldq = 4, p.scale = got.scale.data();
    ASSERT_TRUE(int8dit::ref::swiglu_quantize(p).ok());

    // The definition: silu(gate_k) * up_k in fp32, through quantize_rows.
    std::vector<float> rows;
    for (int r = 0; r < 2; ++r)
      for (int k = 0; k < 3; ++k) rows.push_back(swiglu(bf16_to_float(gate[r * 4 + k]), bf16_to_float(up[r * 5 + k])));
    int8dit::QuantizeRowsParams qp;
    qp.rows = 2, qp.cols = 3, qp.x = rows.data(), qp.x_type = DType::kFP32, qp.ldx = 3;
    qp.smooth = p.smooth, qp.q = want.q.data(), qp.ldq = 3, qp.scale = want.scale.data();
    ASSERT_TRUE(int8dit::ref::quantize_rows(qp).ok());

    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(got.scale[r], want.scale[r]) << "row " << r;
      for (int k = 0; k < 3; ++k) EXPECT_EQ(got.q[r * 4 + k], want.q[r * 3 + k]) << "row " << r << " column " << k;
      EXPECT_EQ(got.q[r * 4 + 3], kPoisonQ) << "q's padding written, row " << r;
    }
  }
}

TEST(QuantRefSwiglu, TheGateGoesThroughSiluAndUpDoesNot) {
  // gate = [8, -8], up = [1, 1]: silu(8) = 7.9973, silu(-8) = -0.00268: the row max is silu(8), and
  // -0.00268 / (7.9973 / 127) rounds to 0. Swapped (gate = [1, 1], up = [8, -8]): silu(1) * 8 = 5.849
  // and -5.849, a row of +-127.
  const auto big = bf16({8.0f, -8.0f});
  const auto ones = bf16({1.0f, 1.0f});
  Outputs out(1, 2), swapped(1, 2);
  int8dit::SwigluQuantizeParams p;
  p.rows = 1, p.cols = 2, p.gate = big.data(), p.ld_gate = 2, p.up = ones.data(), p.ld_up = 2;
  p.q = out.q.data(), p.ldq = 2, p.scale = out.scale.data();
  ASSERT_TRUE(int8dit::ref::swiglu_quantize(p).ok());
  EXPECT_FLOAT_EQ(out.scale[0], swiglu(8.0f, 1.0f) / 127.0f);
  EXPECT_EQ(out.q[0], 127);
  EXPECT_EQ(out.q[1], 0);
  p.gate = ones.data(), p.up = big.data(), p.q = swapped.q.data(), p.scale = swapped.scale.data();
  ASSERT_TRUE(int8dit::ref::swiglu_quantize(p).ok());
  EXPECT_EQ(swapped.q[0], 127);
  EXPECT_EQ(swapped.q[1], -127);
}

TEST(QuantRefSwiglu, BadArgumentsAreRefusedWithWhatToChange) {
  const auto x = bf16({1.0f, 2.0f, 3.0f, 4.0f});
  Outputs out(1, 4);
  int8dit::SwigluQuantizeParams p;
  p.rows = 1, p.cols = 4, p.gate = x.data(), p.ld_gate = 4, p.up = x.data(), p.ld_up = 4;
  p.q = out.q.data(), p.ldq = 4, p.scale = out.scale.data();
  auto refused = [&](const char* what) {
    const int8dit::Status st = int8dit::ref::swiglu_quantize(p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << what;
    EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
  };
  p.ld_up = 3;
  refused("ld_up = 3 is smaller than cols = 4");
  p.ld_up = 4, p.ldq = 2;
  refused("ldq = 2 is smaller than cols = 4");
  p.ldq = 4, p.x_type = DType::kFP32;
  refused("use bf16 or fp16");
  p.x_type = DType::kBF16, p.up = nullptr;
  refused("up (the input the SiLU multiplies) is null");
  p.up = x.data(), p.cols = 0;
  refused("cols = 0");
  for (int8_t v : out.q) EXPECT_EQ(v, kPoisonQ);
  EXPECT_EQ(out.scale[0], kPoisonScale);
}

}  // namespace
