// CPU reference of the fused quantization producers (LayerNorm + adaLN, RMSNorm, GELU), checked on
// rows small enough to compute by hand, plus their argument validation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "int8dit/reference.h"
#include "ref/half_bits.h"

#include "quant_ref_test_support.h"

namespace {

using namespace quant_ref_test;

TEST(QuantRefLayerNormModulate, HandComputedRowQuantizesToKnownValues) {
  const auto x = bf16({1, 2, 3, 4});
  const auto zero = bf16({0, 0, 0, 0});
  Outputs out(1, 4);
  int8dit::LayerNormModulateQuantizeParams p;
  p.rows = 1, p.cols = 4, p.x = x.data(), p.ldx = 4, p.eps = 0.0f, p.tokens_per_batch = 1;
  p.mod_shift = zero.data(), p.mod_scale = zero.data(), p.ld_mod = 4;
  p.q = out.q.data(), p.ldq = 4, p.scale = out.scale.data();
  ASSERT_TRUE(int8dit::ref::layernorm_modulate_quantize(p).ok());
  // x_hat = (x - 2.5) / sqrt(1.25) = {-1.342, -0.447, 0.447, 1.342}; 0.447 / 1.342 * 127 = 42.33
  EXPECT_EQ(out.q, (std::vector<int8_t>{-127, -42, 42, 127}));
  EXPECT_NEAR(out.scale[0], 1.5 / std::sqrt(1.25) / 127.0, 1e-7);
}

TEST(QuantRefLayerNormModulate, EachBatchElementUsesItsOwnShiftAndScaleAndYIsWritten) {
  // 2 batches x 2 tokens, K = 4; the modulation vectors sit in a wider tensor (ld_mod = 8).
  const auto x = bf16({1, 2, 3, 4, 4, 3, 2, 1, 1, 2, 3, 4, 4, 3, 2, 1});
  const auto shift = bf16({0, 0, 0, 0, 9, 9, 9, 9, 0.5f, 0.5f, 0.5f, 0.5f, 9, 9, 9, 9});
  const auto scale = bf16({0, 0, 0, 0, 9, 9, 9, 9, 1, 1, 1, 1, 9, 9, 9, 9});
  Outputs out(4, 4);
  std::vector<uint16_t> y(16, 0xffff);
  int8dit::LayerNormModulateQuantizeParams p;
  p.rows = 4, p.cols = 4, p.x = x.data(), p.ldx = 4, p.eps = 1e-6f, p.tokens_per_batch = 2;
  p.mod_shift = shift.data(), p.mod_scale = scale.data(), p.ld_mod = 8;
  p.q = out.q.data(), p.ldq = 4, p.scale = out.scale.data(), p.y = y.data(), p.ldy = 4;
  ASSERT_TRUE(int8dit::ref::layernorm_modulate_quantize(p).ok());
  const double rstd = 1.0 / std::sqrt(1.25 + static_cast<double>(1e-6f));
  for (int r = 0; r < 4; ++r) {
    for (int k = 0; k < 4; ++k) {
      const double xv = bf16_to_float(x[r * 4 + k]);
      const double want = r < 2 ? (xv - 2.5) * rstd : (xv - 2.5) * rstd * 2.0 + 0.5;
      EXPECT_EQ(y[r * 4 + k], float_to_bf16(static_cast<float>(want))) << "row " << r << " col " << k;
    }
  }
  // Batch 1: v = 2 x_hat + 0.5 = {-2.18, -0.39, 1.39, 3.18}: amax 3.18, so -2.18 -> -87.
  EXPECT_EQ(out.q[8], static_cast<int8_t>(std::nearbyint(-(1.5 * rstd * 2 - 0.5) / (1.5 * rstd * 2 + 0.5) * 127)));
  EXPECT_EQ(out.q[11], 127);
  EXPECT_NEAR(out.scale[2], (1.5 * rstd * 2 + 0.5) / 127.0, 1e-6);
  EXPECT_EQ(out.scale[0], out.scale[1]);
}

TEST(QuantRefLayerNormModulate, RmsNormStatisticsSubtractNoMean) {
  // LTX-Video's norms: v = x / sqrt(mean(x^2) + eps) * (1 + scale) + shift
  const auto x = bf16({3, 4});
  const auto shift = bf16({0.5f, -0.5f});
  const auto scale = bf16({0, 1});
  Outputs out(1, 2);
  std::vector<uint16_t> y(2, 0xffff);
  int8dit::LayerNormModulateQuantizeParams p;
  p.rows = 1, p.cols = 2, p.x = x.data(), p.ldx = 2, p.eps = 0.0f, p.tokens_per_batch = 1, p.rms_norm = true;
  p.mod_shift = shift.data(), p.mod_scale = scale.data(), p.ld_mod = 2;
  p.q = out.q.data(), p.ldq = 2, p.scale = out.scale.data(), p.y = y.data(), p.ldy = 2;
  ASSERT_TRUE(int8dit::ref::layernorm_modulate_quantize(p).ok());
  // rms = sqrt(12.5); v = {3 / rms + 0.5, 8 / rms - 0.5} = {1.3485, 1.7627}; 1.3485 / 1.7627 * 127 = 97.2
  const double rms = std::sqrt(12.5);
  EXPECT_EQ(y, (std::vector<uint16_t>{float_to_bf16(static_cast<float>(3 / rms + 0.5)),
                                      float_to_bf16(static_cast<float>(8 / rms - 0.5))}));
  EXPECT_EQ(out.q, (std::vector<int8_t>{97, 127}));
  EXPECT_NEAR(out.scale[0], (8 / rms - 0.5) / 127.0, 1e-7);
  // the same row as a LayerNorm (mean 3.5, x_hat = {-1, 1}, v = {-0.5, 1.5}) gives other values
  p.rms_norm = false;
  ASSERT_TRUE(int8dit::ref::layernorm_modulate_quantize(p).ok());
  EXPECT_EQ(out.q, (std::vector<int8_t>{-42, 127}));
}

TEST(QuantRefLayerNormModulate, ScaleIsWeightTakesTheNormsOwnWeightAndBias) {
  // A LayerNorm with elementwise affine: v = x_hat * weight + bias (no 1 + scale)
  const auto x = bf16({3, 4});
  const auto bias = bf16({0.25f, -0.5f});
  const auto weight = bf16({2, 0.5f});
  Outputs out(1, 2);
  std::vector<uint16_t> y(2, 0xffff);
  int8dit::LayerNormModulateQuantizeParams p;
  p.rows = 1, p.cols = 2, p.x = x.data(), p.ldx = 2, p.eps = 0.0f, p.tokens_per_batch = 1, p.scale_is_weight = true;
  p.mod_shift = bias.data(), p.mod_scale = weight.data(), p.ld_mod = 2;
  p.q = out.q.data(), p.ldq = 2, p.scale = out.scale.data(), p.y = y.data(), p.ldy = 2;
  ASSERT_TRUE(int8dit::ref::layernorm_modulate_quantize(p).ok());
  // mean 3.5, x_hat = {-1, 1}: v = {-2 + 0.25, 0.5 - 0.5} = {-1.75, 0}
  EXPECT_EQ(y, (std::vector<uint16_t>{float_to_bf16(-1.75f), float_to_bf16(0.0f)}));
  EXPECT_EQ(out.q, (std::vector<int8_t>{-127, 0}));
  EXPECT_NEAR(out.scale[0], 1.75 / 127.0, 1e-7);
  // as a modulation: v = {-1 * 3 + 0.25, 1 * 1.5 - 0.5} = {-2.75, 1}; 1 / 2.75 * 127 = 46.2
  p.scale_is_weight = false;
  ASSERT_TRUE(int8dit::ref::layernorm_modulate_quantize(p).ok());
  EXPECT_EQ(out.q, (std::vector<int8_t>{-127, 46}));
}

TEST(QuantRefRmsNorm, HandComputedRowWithWeight) {
  const auto x = bf16({3, 4});
  const auto w = bf16({1, 2});
  Outputs out(1, 2);
  int8dit::RmsNormQuantizeParams p;
  p.rows = 1, p.cols = 2, p.x = x.data(), p.ldx = 2, p.eps = 0.0f, p.weight = w.data();
  p.q = out.q.data(), p.ldq = 2, p.scale = out.scale.data();
  ASSERT_TRUE(int8dit::ref::rmsnorm_quantize(p).ok());
  // rms = sqrt(12.5); v = {0.849, 2.263}; 0.849 / 2.263 * 127 = 47.6
  EXPECT_EQ(out.q, (std::vector<int8_t>{48, 127}));
  EXPECT_NEAR(out.scale[0], 8.0 / std::sqrt(12.5) / 127.0, 1e-7);
}

TEST(QuantRefGelu, TanhApproximationValuesAndSmoothDivisor) {
  const auto x = bf16({1, -1, 0, 2});
  Outputs out(1, 4), smoothed(1, 4);
  std::vector<uint16_t> y(4);
  int8dit::GeluQuantizeParams p;
  p.rows = 1, p.cols = 4, p.x = x.data(), p.ldx = 4;
  p.q = out.q.data(), p.ldq = 4, p.scale = out.scale.data(), p.y = y.data(), p.ldy = 4;
  ASSERT_TRUE(int8dit::ref::gelu_quantize(p).ok());
  EXPECT_EQ(y[0], float_to_bf16(0.8411920f));
  EXPECT_EQ(y[1], float_to_bf16(-0.1588080f));
  EXPECT_EQ(y[2], float_to_bf16(0.0f));
  EXPECT_EQ(y[3], float_to_bf16(1.9545977f));
  EXPECT_EQ(out.q[1], -10);  // -0.1588 / 1.9546 * 127 = -10.3
  EXPECT_EQ(out.q[3], 127);

  // A uniform divisor of 2 halves every value: the same int8 values, half the scale, and y unchanged.
  const std::vector<float> two(4, 2.0f);
  p.smooth = two.data(), p.q = smoothed.q.data(), p.scale = smoothed.scale.data();
  ASSERT_TRUE(int8dit::ref::gelu_quantize(p).ok());
  EXPECT_EQ(smoothed.q, out.q);
  EXPECT_EQ(smoothed.scale[0], out.scale[0] / 2.0f);
}

TEST(QuantRefGelu, ZeroRowGivesZerosAndScaleZeroNaNRowGivesNaNScale) {
  const auto x = bf16({0, 0, 0, 1, std::numeric_limits<float>::quiet_NaN(), 2});
  Outputs out(2, 3);
  int8dit::GeluQuantizeParams p;
  p.rows = 2, p.cols = 3, p.x = x.data(), p.ldx = 3, p.q = out.q.data(), p.ldq = 3, p.scale = out.scale.data();
  ASSERT_TRUE(int8dit::ref::gelu_quantize(p).ok());
  EXPECT_EQ(out.scale[0], 0.0f);
  EXPECT_TRUE(std::isnan(out.scale[1]));
  EXPECT_EQ(out.q, (std::vector<int8_t>{0, 0, 0, 0, 0, 0}));
}

TEST(QuantRefRmsNorm, StridedRowsLeaveThePaddingAlone) {
  // ldx = 5 and ldq = 6 for K = 3: the elements past K in each row are neither read nor written.
  const auto x = bf16({1, 2, 3, 999, 999, 4, 5, 6, 999, 999});
  const auto w = bf16({1, 1, 1});
  Outputs out(2, 6);
  int8dit::RmsNormQuantizeParams p;
  p.rows = 2, p.cols = 3, p.x = x.data(), p.ldx = 5, p.weight = w.data();
  p.q = out.q.data(), p.ldq = 6, p.scale = out.scale.data();
  ASSERT_TRUE(int8dit::ref::rmsnorm_quantize(p).ok());
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(out.q[r * 6 + 2], 127);
    for (int k = 3; k < 6; ++k) EXPECT_EQ(out.q[r * 6 + k], kPoisonQ);
  }
}

TEST(QuantRefValidation, BadArgumentsSayWhatIsWrongAndWriteNothing) {
  const auto x = bf16({1, 2, 3, 4, 5, 6});
  Outputs out(2, 3);
  int8dit::LayerNormModulateQuantizeParams ln;
  ln.rows = 2, ln.cols = 3, ln.x = x.data(), ln.ldx = 3, ln.tokens_per_batch = 4;
  ln.mod_shift = x.data(), ln.mod_scale = x.data(), ln.ld_mod = 3;
  ln.q = out.q.data(), ln.ldq = 3, ln.scale = out.scale.data();
  auto st = int8dit::ref::layernorm_modulate_quantize(ln);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("tokens_per_batch = 4"), std::string::npos) << st.message();
  ln.tokens_per_batch = 1;
  ln.mod_scale = nullptr;
  st = int8dit::ref::layernorm_modulate_quantize(ln);
  EXPECT_NE(st.message().find("mod_scale"), std::string::npos) << st.message();
  ln.mod_scale = x.data();
  ln.eps = std::numeric_limits<float>::quiet_NaN();
  st = int8dit::ref::layernorm_modulate_quantize(ln);
  EXPECT_NE(st.message().find("eps"), std::string::npos) << st.message();

  int8dit::RmsNormQuantizeParams rms;
  rms.rows = 2, rms.cols = 3, rms.x = x.data(), rms.ldx = 3, rms.q = out.q.data(), rms.ldq = 3, rms.scale = out.scale.data();
  st = int8dit::ref::rmsnorm_quantize(rms);
  EXPECT_NE(st.message().find("weight"), std::string::npos) << st.message();

  int8dit::GeluQuantizeParams gelu;
  gelu.rows = 2, gelu.cols = 3, gelu.x = x.data(), gelu.ldx = 3, gelu.q = out.q.data(), gelu.ldq = 2, gelu.scale = out.scale.data();
  st = int8dit::ref::gelu_quantize(gelu);
  EXPECT_NE(st.message().find("ldq = 2"), std::string::npos) << st.message();
  gelu.ldq = 3;
  gelu.x_type = DType::kFP32;
  st = int8dit::ref::gelu_quantize(gelu);
  EXPECT_NE(st.message().find("bf16 or fp16"), std::string::npos) << st.message();

  for (int8_t v : out.q) EXPECT_EQ(v, kPoisonQ);
  for (float s : out.scale) EXPECT_EQ(s, kPoisonScale);
}

TEST(QuantRefValidation, EmptyBatchIsOkAndNeedsNoPointers) {
  int8dit::GeluQuantizeParams p;
  p.rows = 0, p.cols = 8, p.ldx = 8, p.ldq = 8;
  EXPECT_TRUE(int8dit::ref::gelu_quantize(p).ok());
}

// LayerNorm + modulation of 2 rows (2 batch elements, one token each) of 4 columns, optionally with the
// gated residual update; q, scale and x_out written to `out` and `x_out`.
int8dit::Status layernorm_rows(const std::vector<uint16_t>& x, const std::vector<uint16_t>* update,
                               const std::vector<uint16_t>* gate, Outputs& out, std::vector<uint16_t>* x_out) {
  static const auto mod = bf16({0.5f, -0.25f, 0.0f, 1.0f, 0.25f, 0.5f, -0.5f, 0.0f});  // shift | scale, per batch
  int8dit::LayerNormModulateQuantizeParams p;
  p.rows = 2, p.cols = 4, p.x = x.data(), p.ldx = 4, p.eps = 1e-6f, p.tokens_per_batch = 1;
  p.mod_shift = mod.data(), p.mod_scale = mod.data() + 4, p.ld_mod = 4;
  p.q = out.q.data(), p.ldq = 4, p.scale = out.scale.data();
  if (update) {
    p.update = update->data(), p.ld_update = 4, p.x_out = x_out->data(), p.ld_x_out = 4;
    if (gate) p.gate = gate->data(), p.ld_gate = 4;
  }
  return int8dit::ref::layernorm_modulate_quantize(p);
}

TEST(QuantRefLayerNormModulate, GatedResidualUpdateNormalizesAndWritesXPlusGateTimesUpdate) {
  const auto x = bf16({1, 2, 3, 4, -1, 0, 1, 8});
  const auto update = bf16({1, 1, 1, 1, 2, -2, 0.5f, 4});
  const auto gate = bf16({2, 2, 2, 2, 0.5f, 0.5f, 0.5f, -1});
  const auto r_gated = bf16({3, 4, 5, 6, 0, -1, 1.25f, 4});  // x + gate * update, exact in bf16
  const auto r_plain = bf16({2, 3, 4, 5, 1, -2, 1.5f, 12});  // no gate: x + update
  for (const bool gated : {true, false}) {
    SCOPED_TRACE(gated ? "gate" : "no gate (1)");
    Outputs fused(2, 4), want(2, 4);
    std::vector<uint16_t> x_out(8, 0xffff);
    ASSERT_TRUE(layernorm_rows(x, &update, gated ? &gate : nullptr, fused, &x_out).ok());
    const auto& r = gated ? r_gated : r_plain;
    EXPECT_EQ(x_out, r);
    ASSERT_TRUE(layernorm_rows(r, nullptr, nullptr, want, nullptr).ok());
    EXPECT_EQ(fused.q, want.q);
    EXPECT_EQ(fused.scale, want.scale);
  }
}

TEST(QuantRefLayerNormModulate, GatedResidualArgumentsComeTogether) {
  const auto x = bf16({1, 2, 3, 4, 5, 6, 7, 8});
  Outputs out(2, 4);
  std::vector<uint16_t> x_out(8, 0);
  int8dit::LayerNormModulateQuantizeParams p;
  p.rows = 2, p.cols = 4, p.x = x.data(), p.ldx = 4, p.tokens_per_batch = 1, p.mod_shift = x.data(),
  p.mod_scale = x.data(), p.ld_mod = 4, p.q = out.q.data(), p.ldq = 4, p.scale = out.scale.data();
  p.gate = x.data(), p.ld_gate = 4;
  auto st = int8dit::ref::layernorm_modulate_quantize(p);
  EXPECT_NE(st.message().find("set update too"), std::string::npos) << st.message();
  p.update = x.data(), p.ld_update = 4;
  st = int8dit::ref::layernorm_modulate_quantize(p);
  EXPECT_NE(st.message().find("ld_x_out = 0"), std::string::npos) << st.message();
  p.ld_x_out = 4;
  st = int8dit::ref::layernorm_modulate_quantize(p);
  EXPECT_NE(st.message().find("x_out (where the updated residual"), std::string::npos) << st.message();
  p.ld_gate = 2, p.x_out = x_out.data();
  st = int8dit::ref::layernorm_modulate_quantize(p);
  EXPECT_NE(st.message().find("ld_gate = 2"), std::string::npos) << st.message();
  for (int8_t v : out.q) EXPECT_EQ(v, kPoisonQ);
}

}  // namespace
