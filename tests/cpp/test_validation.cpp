// Every argument error of the GEMM and of row quantization: the code is kInvalidArgument and the
// message names what was wrong. Checked through validate(), the CPU reference and the GPU entry
// points (which validate before touching CUDA, so these run without a GPU too).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "host_array.h"
#include "int8dit/gemm.h"
#include "int8dit/quantize.h"
#include "int8dit/reference.h"

namespace int8dit {
namespace {

// A valid bf16 GEMM on 64-byte aligned host buffers, M = 4, N = 8, K = 32.
struct ValidGemm {
  HostArray<int8_t> a{4 * 32, 1}, b{8 * 32, 1};
  HostArray<float> sa{4, 1.0f}, sb{8, 1.0f}, bias{8, 0.0f};
  HostArray<uint16_t> d{4 * 8 * 2, 0x7777};
  GemmParams p;
  ValidGemm() {
    p.m = 4, p.n = 8, p.k = 32;
    p.a = a.data(), p.lda = 32;
    p.b = b.data(), p.ldb = 32;
    p.scale_a = sa.data(), p.scale_b = sb.data(), p.bias = bias.data();
    p.d = d.data(), p.d_type = DType::kBF16, p.ldd = 8;
  }
};

// The error must come back the same from validate(), the reference and the GPU entry point.
void expect_invalid(const GemmParams& p, const std::string& needle) {
  const Status v = validate(p);
  EXPECT_EQ(v.code(), StatusCode::kInvalidArgument) << v.to_string();
  EXPECT_NE(v.message().find(needle), std::string::npos) << "message \"" << v.message() << "\" lacks \"" << needle << "\"";
  const Status r = ref::gemm_w8a8(p);
  EXPECT_EQ(r.code(), StatusCode::kInvalidArgument) << r.to_string();
  EXPECT_EQ(r.message(), v.message());
  const Status g = gemm_w8a8(p, nullptr);
  EXPECT_EQ(g.code(), StatusCode::kInvalidArgument) << g.to_string();
  EXPECT_EQ(g.message(), v.message());
  EXPECT_EQ(gemm_can_implement(p).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gemm_workspace_size(p), 0u);
  EXPECT_EQ(gemm_selected_config(p), "");
}

TEST(GemmValidation, ValidProblemPassesAndTheReferenceRunsIt) {
  ValidGemm g;
  EXPECT_TRUE(validate(g.p).ok()) << validate(g.p).to_string();
  EXPECT_TRUE(ref::gemm_w8a8(g.p).ok());
}

TEST(GemmValidation, NullPointersAreRejectedByName) {
  { ValidGemm g; g.p.a = nullptr; expect_invalid(g.p, "A (the int8 activations) is null"); }
  { ValidGemm g; g.p.b = nullptr; expect_invalid(g.p, "B (the int8 weights) is null"); }
  { ValidGemm g; g.p.d = nullptr; expect_invalid(g.p, "D (the output) is null"); }
  { ValidGemm g; g.p.scale_a = nullptr; expect_invalid(g.p, "scale_a"); }
  { ValidGemm g; g.p.scale_b = nullptr; expect_invalid(g.p, "scale_b"); }
}

TEST(GemmValidation, NullBiasIsAllowed) {
  ValidGemm g;
  g.p.bias = nullptr;
  EXPECT_TRUE(validate(g.p).ok());
}

TEST(GemmValidation, NegativeSizesAreRejected) {
  for (int which = 0; which < 3; ++which) {
    ValidGemm g;
    (which == 0 ? g.p.m : which == 1 ? g.p.n : g.p.k) = -1;
    expect_invalid(g.p, "negative size");
  }
}

TEST(GemmValidation, NOrKOfZeroIsRejected) {
  { ValidGemm g; g.p.n = 0; expect_invalid(g.p, "N = 0"); }
  { ValidGemm g; g.p.k = 0; expect_invalid(g.p, "K = 0"); }
}

TEST(GemmValidation, MOfZeroIsAnEmptyBatchOkAndWritesNothing) {
  ValidGemm g;
  g.p.m = 0;
  EXPECT_TRUE(validate(g.p).ok());
  EXPECT_TRUE(ref::gemm_w8a8(g.p).ok());
  EXPECT_TRUE(gemm_w8a8(g.p, nullptr).ok()) << "M = 0 must succeed before any CUDA call";
  for (size_t i = 0; i < g.d.size(); ++i) ASSERT_EQ(g.d[i], 0x7777) << "element " << i << " written";
  // An empty batch reads nothing, so null pointers are fine.
  g.p.a = nullptr, g.p.d = nullptr;
  EXPECT_TRUE(validate(g.p).ok());
}

TEST(GemmValidation, KNotAMultipleOf16IsRejectedWithThePaddingAdvice) {
  ValidGemm g;
  g.p.k = 24;
  expect_invalid(g.p, "K = 24 must be a multiple of 16");
  expect_invalid(g.p, "pad");
}

TEST(GemmValidation, KAbove131072IsRejectedAsAccumulatorOverflow) {
  ValidGemm g;
  g.p.k = kMaxK + 16;
  g.p.lda = g.p.ldb = g.p.k;
  expect_invalid(g.p, "K = 131088 exceeds 131072");
  ValidGemm at_limit;
  at_limit.p.k = at_limit.p.lda = at_limit.p.ldb = kMaxK;
  EXPECT_TRUE(validate(at_limit.p).ok()) << "K = 131072 itself is allowed";
}

TEST(GemmValidation, LeadingDimensionsSmallerThanTheRowAreRejected) {
  { ValidGemm g; g.p.lda = 16; expect_invalid(g.p, "lda = 16 is smaller than K = 32"); }
  { ValidGemm g; g.p.ldb = 16; expect_invalid(g.p, "ldb = 16 is smaller than K = 32"); }
  { ValidGemm g; g.p.ldd = 4; expect_invalid(g.p, "ldd = 4 is smaller than N = 8"); }
}

TEST(GemmValidation, MisalignedPointersAreRejected) {
  { ValidGemm g; g.p.a = g.a.data() + 1; expect_invalid(g.p, "A is not 16-byte aligned"); }
  { ValidGemm g; g.p.b = g.b.data() + 8; expect_invalid(g.p, "B is not 16-byte aligned"); }
  { ValidGemm g; g.p.d = g.d.data() + 1; expect_invalid(g.p, "D is not 16-byte aligned"); }
  {
    ValidGemm g;
    g.p.scale_a = reinterpret_cast<const float*>(reinterpret_cast<const char*>(g.sa.data()) + 2);
    expect_invalid(g.p, "4-byte aligned");
  }
  {
    ValidGemm g;
    g.p.bias = reinterpret_cast<const float*>(reinterpret_cast<const char*>(g.bias.data()) + 1);
    expect_invalid(g.p, "4-byte aligned");
  }
}

TEST(GemmValidation, MisalignedLeadingDimensionsAreRejected) {
  { ValidGemm g; g.p.lda = 40; expect_invalid(g.p, "lda = 40 must be a multiple of 16"); }
  { ValidGemm g; g.p.ldb = 33; expect_invalid(g.p, "ldb = 33 must be a multiple of 16"); }
  { ValidGemm g; g.p.ldd = 12; expect_invalid(g.p, "ldd = 12 must be a multiple of 8 for bf16"); }
  {
    ValidGemm g;
    g.p.d_type = DType::kFP32;
    g.p.ldd = 10;
    expect_invalid(g.p, "ldd = 10 must be a multiple of 4 for fp32");
  }
}

TEST(GemmValidation, UnsupportedOutputTypeIsRejected) {
  ValidGemm g;
  g.p.d_type = DType::kInt8;
  expect_invalid(g.p, "output type int8 is not supported");
}

TEST(GemmValidation, RawInt32ModeWithScalesOrBiasIsRejected) {
  ValidGemm g;
  g.p.d_type = DType::kInt32;
  expect_invalid(g.p, "raw int32 output takes no scales or bias");
  g.p.scale_a = g.p.scale_b = nullptr;
  expect_invalid(g.p, "raw int32 output takes no scales or bias");  // the bias alone
  g.p.bias = nullptr;
  EXPECT_TRUE(validate(g.p).ok());
}

TEST(GemmValidation, UnknownScaleModesAreRejected) {
  { ValidGemm g; g.p.scale_a_mode = ScaleMode::kPerCol; expect_invalid(g.p, "scale_a_mode"); }
  { ValidGemm g; g.p.scale_b_mode = ScaleMode::kPerRow; expect_invalid(g.p, "scale_b_mode"); }
}

TEST(GemmValidation, WorkspaceBytesWithoutAWorkspaceIsRejected) {
  ValidGemm g;
  g.p.workspace_bytes = 256;
  expect_invalid(g.p, "workspace is null");
}

TEST(GemmValidation, MessagesCarryTheCodeNameInToString) {
  ValidGemm g;
  g.p.k = 1000;
  g.p.lda = g.p.ldb = 1008;
  EXPECT_EQ(validate(g.p).to_string(),
            "invalid argument: K = 1000 must be a multiple of 16: pad the input features with zeros (in both "
            "activations and weights)");
}

// ---- row quantization ----

struct ValidQuantize {
  HostArray<uint16_t> x{3 * 16, 0x3f80};
  HostArray<int8_t> q{3 * 16, 0};
  HostArray<float> scale{3, 0.0f};
  QuantizeRowsParams p;
  ValidQuantize() {
    p.rows = 3, p.cols = 16;
    p.x = x.data(), p.x_type = DType::kBF16, p.ldx = 16;
    p.q = q.data(), p.ldq = 16, p.scale = scale.data();
  }
};

void expect_invalid(const QuantizeRowsParams& p, const std::string& needle) {
  const Status v = validate(p);
  EXPECT_EQ(v.code(), StatusCode::kInvalidArgument) << v.to_string();
  EXPECT_NE(v.message().find(needle), std::string::npos) << "message \"" << v.message() << "\" lacks \"" << needle << "\"";
  EXPECT_EQ(ref::quantize_rows(p).message(), v.message());
  const Status g = quantize_rows(p, nullptr);
  EXPECT_EQ(g.code(), StatusCode::kInvalidArgument) << g.to_string();
  EXPECT_EQ(quantize_weights(p, nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(QuantizeValidation, ValidProblemPassesAndTheReferenceRunsIt) {
  ValidQuantize v;
  EXPECT_TRUE(validate(v.p).ok());
  EXPECT_TRUE(ref::quantize_rows(v.p).ok());
  EXPECT_EQ(v.scale[0], 1.0f / 127.0f);
}

TEST(QuantizeValidation, NullPointersAreRejectedByName) {
  { ValidQuantize v; v.p.x = nullptr; expect_invalid(v.p, "x (the input) is null"); }
  { ValidQuantize v; v.p.q = nullptr; expect_invalid(v.p, "q (the int8 output) is null"); }
  { ValidQuantize v; v.p.scale = nullptr; expect_invalid(v.p, "scale (the per-row fp32 output) is null"); }
}

TEST(QuantizeValidation, NegativeSizesAndZeroColumnsAreRejected) {
  { ValidQuantize v; v.p.rows = -2; expect_invalid(v.p, "negative size"); }
  { ValidQuantize v; v.p.cols = -1; expect_invalid(v.p, "negative size"); }
  { ValidQuantize v; v.p.cols = 0; expect_invalid(v.p, "cols (K) = 0"); }
}

TEST(QuantizeValidation, MoreRowsThanAGridHoldsAreRejectedWithTheAdviceToSplit) {
  // The kernels launch up to a CTA a row; a grid's x dimension ends at 2^31 - 1 (and a 32-bit cast
  // of 2^32 rows would launch none). The check comes before any pointer is read.
  ValidQuantize v;
  v.p.rows = int64_t{1} << 31;
  expect_invalid(v.p, "rows = 2147483648 is more than one call takes (2^31 - 1): split the rows over calls");
  int8dit::GeluQuantizeParams gelu;
  gelu.rows = int64_t{1} << 32, gelu.cols = 8, gelu.ldx = 8, gelu.ldq = 8;
  EXPECT_NE(ref::gelu_quantize(gelu).message().find("gelu_quantize: rows = 4294967296 is more"), std::string::npos);
  int8dit::ConcatGeluQuantizeParams concat;
  concat.rows = int64_t{1} << 31, concat.a_cols = 8, concat.lda = 8, concat.h_cols = 8, concat.ldh = 8, concat.ldq = 16;
  EXPECT_NE(ref::concat_gelu_quantize(concat).message().find("concat_gelu_quantize: rows = 2147483648"),
            std::string::npos);
}

TEST(QuantizeValidation, LeadingDimensionsSmallerThanTheRowAreRejected) {
  { ValidQuantize v; v.p.ldx = 8; expect_invalid(v.p, "ldx = 8 is smaller than cols = 16"); }
  { ValidQuantize v; v.p.ldq = 15; expect_invalid(v.p, "ldq = 15 is smaller than cols = 16"); }
}

TEST(QuantizeValidation, UnsupportedInputTypesAreRejected) {
  for (DType t : {DType::kInt8, DType::kInt32}) {
    ValidQuantize v;
    v.p.x_type = t;
    expect_invalid(v.p, std::string("input type ") + to_string(t) + " cannot be quantized");
  }
}

TEST(QuantizeValidation, ZeroRowsIsOkAndWritesNothing) {
  ValidQuantize v;
  v.p.rows = 0;
  v.scale[0] = 42.0f;
  EXPECT_TRUE(validate(v.p).ok());
  EXPECT_TRUE(ref::quantize_rows(v.p).ok());
  EXPECT_TRUE(quantize_rows(v.p, nullptr).ok()) << "rows = 0 must succeed before any CUDA call";
  EXPECT_EQ(v.scale[0], 42.0f);
}

}  // namespace
}  // namespace int8dit
