// CPU reference of concat_swiglu_quantize (FLUX.2's single-stream to_out input, [a | silu(gate) * up]):
// the row it quantizes, built here from the definition, and its argument validation.
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

TEST(QuantRefConcatSwiglu, QuantizesAThenSiluOfGateTimesUpFromStridedInputs) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // a: 2 rows x 2 columns, lda 3; gate: 2 x 3, ld 4; up: 2 x 3, ld 5; q: ldq 6 (one padding column).
  const auto a = bf16({3.0f, -0.75f, nan, -1.5f, 6.0f, nan});
  const auto gate = bf16({0.5f, -1.0f, 2.0f, nan, -3.0f, 0.25f, 8.0f, nan});
  const auto up = bf16({1.0f, -2.0f, 0.5f, nan, nan, 4.0f, -0.5f, 3.0f, nan, nan});
  for (const bool smoothed : {false, true}) {
    SCOPED_TRACE(smoothed ? "with a SmoothQuant divisor" : "no divisor");
    const std::vector<float> smooth = {0.5f, 1.5f, 1.0f, 2.0f, 0.5f};
    Outputs got(2, 6), want(2, 5);
    int8dit::ConcatSwigluQuantizeParams p;
    p.rows = 2, p.a = a.data(), p.a_cols = 2, p.lda = 3;
    p.gate = gate.data(), p.ld_gate = 4, p.up = up.data(), p.ld_up = 5, p.h_cols = 3;
    p.smooth = smoothed ? smooth.data() : nullptr;
    p.q = got.q.data(), p.ldq = 6, p.scale = got.scale.data();
    ASSERT_TRUE(int8dit::ref::concat_swiglu_quantize(p).ok());

    // The definition: a's values, then silu(gate_k) * up_k in fp32, through quantize_rows.
    std::vector<float> rows;
    for (int r = 0; r < 2; ++r) {
      for (int k = 0; k < 2; ++k) rows.push_back(bf16_to_float(a[r * 3 + k]));
      for (int k = 0; k < 3; ++k) rows.push_back(swiglu(bf16_to_float(gate[r * 4 + k]), bf16_to_float(up[r * 5 + k])));
    }
    int8dit::QuantizeRowsParams qp;
    qp.rows = 2, qp.cols = 5, qp.x = rows.data(), qp.x_type = DType::kFP32, qp.ldx = 5;
    qp.smooth = p.smooth, qp.q = want.q.data(), qp.ldq = 5, qp.scale = want.scale.data();
    ASSERT_TRUE(int8dit::ref::quantize_rows(qp).ok());

    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(got.scale[r], want.scale[r]) << "row " << r;
      for (int k = 0; k < 5; ++k) EXPECT_EQ(got.q[r * 6 + k], want.q[r * 5 + k]) << "row " << r << " column " << k;
      EXPECT_EQ(got.q[r * 6 + 5], kPoisonQ) << "q's padding written, row " << r;
    }
  }
}

TEST(QuantRefConcatSwiglu, AIsTakenAsItIsAndOnlyTheGatedPartGoesThroughSilu) {
  // a = [-8], gate = [8], up = [1]: the row is [-8, silu(8) = 7.9973]: its max is a's 8, so a quantizes
  // to -127 and the product to round(7.9973 / (8 / 127)) = 127. Had SiLU touched a: silu(-8) = -0.0027.
  const auto a = bf16({-8.0f});
  const auto gate = bf16({8.0f});
  const auto up = bf16({1.0f});
  Outputs out(1, 2);
  int8dit::ConcatSwigluQuantizeParams p;
  p.rows = 1, p.a = a.data(), p.a_cols = 1, p.lda = 1, p.gate = gate.data(), p.ld_gate = 1, p.up = up.data();
  p.ld_up = 1, p.h_cols = 1, p.q = out.q.data(), p.ldq = 2, p.scale = out.scale.data();
  ASSERT_TRUE(int8dit::ref::concat_swiglu_quantize(p).ok());
  EXPECT_FLOAT_EQ(out.scale[0], 8.0f / 127.0f);
  EXPECT_EQ(out.q[0], -127);
  EXPECT_EQ(out.q[1], 127);
}

TEST(QuantRefConcatSwiglu, BadArgumentsAreRefusedWithWhatToChange) {
  const auto x = bf16({1.0f, 2.0f, 3.0f, 4.0f});
  Outputs out(1, 6);
  int8dit::ConcatSwigluQuantizeParams p;
  p.rows = 1, p.a = x.data(), p.a_cols = 2, p.lda = 2, p.gate = x.data(), p.ld_gate = 4, p.up = x.data();
  p.ld_up = 4, p.h_cols = 4, p.q = out.q.data(), p.ldq = 6, p.scale = out.scale.data();
  auto refused = [&](const char* what) {
    const int8dit::Status st = int8dit::ref::concat_swiglu_quantize(p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << what;
    EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
  };
  p.ld_gate = 3;
  refused("ld_gate = 3 is smaller than h_cols = 4");
  p.ld_gate = 4, p.ldq = 5;
  refused("ldq = 5 is smaller than a_cols + h_cols = 6");
  p.ldq = 6, p.lda = 1;
  refused("lda = 1 is smaller than a_cols = 2");
  p.lda = 2, p.x_type = DType::kFP32;
  refused("use bf16 or fp16");
  p.x_type = DType::kBF16, p.up = nullptr;
  refused("up (the input the SiLU multiplies) is null");
  p.up = x.data(), p.a_cols = 0;
  refused("with no a, call swiglu_quantize");
  for (int8_t v : out.q) EXPECT_EQ(v, kPoisonQ);
  EXPECT_EQ(out.scale[0], kPoisonScale);
}

}  // namespace
