// CPU reference of concat_gelu_quantize (Flux's single-stream proj_out input, [a | GELU(h)]): the
// row it quantizes, built here from the definition, and its argument validation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "int8dit/reference.h"
#include "quant_ref_test_support.h"

namespace {

using namespace quant_ref_test;

float gelu_tanh(float x) {  // as x * sigmoid(2u): the 0.5 * x * (1 + tanh(u)) form cancels for x < 0
  const double d = x;
  return static_cast<float>(d / (1.0 + std::exp(-2.0 * 0.7978845608028654 * (d + 0.044715 * d * d * d))));
}

TEST(QuantRefConcatGelu, QuantizesTheRowOfAThenGeluOfHFromStridedInputs) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // a: 2 rows x 3 columns, lda 4; h: 2 rows x 2 columns, ldh 3; q: ldq 6 (one padding column).
  const auto a = bf16({0.5f, -1.0f, 2.0f, nan, 3.0f, 0.25f, -0.75f, nan});
  const auto h = bf16({1.0f, -2.0f, nan, 4.0f, -0.5f, nan});
  for (const bool smoothed : {false, true}) {
    SCOPED_TRACE(smoothed ? "with a SmoothQuant divisor" : "no divisor");
    const std::vector<float> smooth = {1.0f, 2.0f, 0.5f, 4.0f, 0.25f};
    Outputs got(2, 6), want(2, 5);
    int8dit::ConcatGeluQuantizeParams p;
    p.rows = 2, p.a = a.data(), p.a_cols = 3, p.lda = 4, p.h = h.data(), p.h_cols = 2, p.ldh = 3;
    p.smooth = smoothed ? smooth.data() : nullptr;
    p.q = got.q.data(), p.ldq = 6, p.scale = got.scale.data();
    ASSERT_TRUE(int8dit::ref::concat_gelu_quantize(p).ok());

    // The definition: [a_0, a_1, a_2, GELU(h_0), GELU(h_1)] in fp32, through quantize_rows.
    std::vector<float> rows;
    for (int r = 0; r < 2; ++r) {
      for (int k = 0; k < 3; ++k) rows.push_back(bf16_to_float(a[r * 4 + k]));
      for (int k = 0; k < 2; ++k) rows.push_back(gelu_tanh(bf16_to_float(h[r * 3 + k])));
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

TEST(QuantRefConcatGelu, GeluAppliesToHOnlyAndNaNInEitherInputGivesANaNScale) {
  // a = [4, -4], h = [-4]: GELU(-4) = -7.0e-5, so the row max is 4 from a, untouched by GELU.
  const auto a = bf16({4.0f, -4.0f, 1.0f, std::numeric_limits<float>::quiet_NaN()});
  const auto h = bf16({-4.0f, 1.0f});
  Outputs out(2, 3);
  int8dit::ConcatGeluQuantizeParams p;
  p.rows = 2, p.a = a.data(), p.a_cols = 2, p.lda = 2, p.h = h.data(), p.h_cols = 1, p.ldh = 1;
  p.q = out.q.data(), p.ldq = 3, p.scale = out.scale.data();
  ASSERT_TRUE(int8dit::ref::concat_gelu_quantize(p).ok());
  EXPECT_EQ(out.scale[0], 4.0f / 127.0f);
  EXPECT_EQ(out.q[0], 127);
  EXPECT_EQ(out.q[1], -127);
  EXPECT_EQ(out.q[2], 0);  // -7.0e-5 / (4 / 127) rounds to 0: GELU was applied
  EXPECT_TRUE(std::isnan(out.scale[1]));
}

TEST(QuantRefConcatGelu, GelusTinyNegativeTailIsNotRoundedToZero) {
  // GELU(-8) = -8 * sigmoid(2u) ~ -1e-21: the form 0.5 * x * (1 + tanh(u)) cancels to exactly 0 in
  // double there, which made this row a zero row (scale 0) where the GPU, computing x / (1 + 2^a),
  // gives the tiny value and scale |GELU(-8)| / 127.
  const auto a = bf16({0.0f});
  const auto h = bf16({-8.0f});
  Outputs out(1, 2);
  int8dit::ConcatGeluQuantizeParams p;
  p.rows = 1, p.a = a.data(), p.a_cols = 1, p.lda = 1, p.h = h.data(), p.h_cols = 1, p.ldh = 1;
  p.q = out.q.data(), p.ldq = 2, p.scale = out.scale.data();
  ASSERT_TRUE(int8dit::ref::concat_gelu_quantize(p).ok());
  const float g = gelu_tanh(-8.0f);
  ASSERT_LT(g, 0.0f);
  EXPECT_NEAR(out.scale[0], -g / 127.0f, -g / 127.0f * 1e-6f);
  EXPECT_EQ(out.q[0], 0);
  EXPECT_EQ(out.q[1], -127);
}

TEST(QuantRefConcatGelu, BadArgumentsSayWhatIsWrongAndWriteNothing) {
  const auto x = bf16({1, 2, 3, 4, 5, 6, 7, 8});
  Outputs out(2, 4);
  int8dit::ConcatGeluQuantizeParams p;
  p.rows = 2, p.a = x.data(), p.a_cols = 2, p.lda = 4, p.h = x.data() + 2, p.h_cols = 2, p.ldh = 4;
  p.q = out.q.data(), p.ldq = 4, p.scale = out.scale.data();
  auto expect_refused = [&](const char* says) {
    const auto st = int8dit::ref::concat_gelu_quantize(p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << says;
    EXPECT_NE(st.message().find(says), std::string::npos) << st.message();
  };
  p.a_cols = 0;
  expect_refused("call gelu_quantize");
  p.a_cols = 2, p.ldh = 1;
  expect_refused("ldh = 1 is smaller than h_cols = 2");
  p.ldh = 4, p.ldq = 3;
  expect_refused("ldq = 3 is smaller than a_cols + h_cols = 4");
  p.ldq = 4, p.h = nullptr;
  expect_refused("h (the input GELU applies to) is null");
  p.h = x.data() + 2, p.x_type = DType::kFP32;
  expect_refused("bf16 or fp16");
  p.x_type = DType::kBF16, p.rows = -1;
  expect_refused("negative size");
  for (int8_t v : out.q) EXPECT_EQ(v, kPoisonQ);
  for (float s : out.scale) EXPECT_EQ(s, kPoisonScale);

  p.rows = 0, p.a = nullptr, p.h = nullptr, p.q = nullptr, p.scale = nullptr;
  EXPECT_TRUE(int8dit::ref::concat_gelu_quantize(p).ok()) << "no rows: nothing to read or write";
}

}  // namespace
