// qk_norm_rope (attention.h) on the GPU against the CPU reference, bit for bit (the header fixes the
// sum's order and asks for IEEE sqrt and division, so the two compute the same bits): bf16 and fp16,
// every head_dim, with and without the weight (of the activations' type or fp32) and the rotation, LayerNorm
// statistics and split-halves pairs (head_dim 64 and 128), queries read as a strided view of a
// fused QKV output and written into a token slice of a joined buffer whose other rows and padding stay
// poisoned, in place, rows holding NaN and Inf, a Flux-sized call, and the calls the kernel must
// refuse, refused with nothing written.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "int8dit/attention.h"
#include "quant_gpu_test_support.h"

namespace {

using namespace quant_gpu_test;
using int8dit::QKNormRopeParams;

bool same_value(uint16_t got, uint16_t want, DType t) {
  return got == want || (std::isnan(from_half(got, t)) && std::isnan(from_half(want, t)));
}

struct Shape {
  int64_t batches, tokens, text_tokens, heads, head_dim;
};

struct Inputs {
  std::vector<uint16_t> qkv;  // [batches, tokens, 3, heads, head_dim]: the queries are part 0
  std::vector<uint16_t> weight;
  std::vector<float> weight32;  // the fp32 weight (weight_fp32): values bf16/fp16 cannot hold
  std::vector<uint16_t> bias;   // a LayerNorm's bias
  std::vector<float> cos, sin;  // [text_tokens + tokens, head_dim]
  std::vector<float> wide_cos, wide_sin;  // [text_tokens + tokens, heads * head_dim]: a value a channel (LTX's)
};

Inputs random_inputs(const Shape& s, DType type, bool specials) {
  Inputs in;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(-6.0f, 6.0f);
  const int64_t row = 3 * s.heads * s.head_dim;
  in.qkv.resize(static_cast<size_t>(s.batches * s.tokens * row));
  for (int64_t r = 0; r < s.batches * s.tokens * 3 * s.heads; ++r) {
    const float m = std::exp2(mag(rng()));  // rows of very different sizes
    for (int64_t j = 0; j < s.head_dim; ++j) in.qkv[r * s.head_dim + j] = to_half(normal(rng()) * m, type);
  }
  if (specials && s.tokens >= 3) {
    in.qkv[1 * row + 3] = to_half(kNaN, type);  // token 1, head 0
    in.qkv[2 * row + s.head_dim - 1] = to_half(kInf, type);  // token 2, head 0
    for (int64_t j = 0; j < s.head_dim; ++j) in.qkv[row + s.head_dim + j] = to_half(0.0f, type);  // token 1, head 1
  }
  // (heads * head_dim values: a norm across heads reads them all, a per-head norm the first head_dim)
  for (int64_t j = 0; j < s.heads * s.head_dim; ++j) in.weight.push_back(to_half(1.0f + 0.25f * normal(rng()), type));
  for (int64_t j = 0; j < s.heads * s.head_dim; ++j) in.weight32.push_back(1.0f + 0.25f * normal(rng()));
  for (int64_t j = 0; j < s.head_dim; ++j) in.bias.push_back(to_half(0.5f * normal(rng()), type));
  const int64_t rope_rows = s.text_tokens + s.tokens;
  for (int64_t r = 0; r < rope_rows; ++r) {
    for (int64_t j = 0; j < s.head_dim; j += 2) {
      const double theta = r * std::pow(10000.0, -static_cast<double>(j) / s.head_dim);
      for (int e = 0; e < 2; ++e) {
        in.cos.push_back(static_cast<float>(std::cos(theta)));
        in.sin.push_back(static_cast<float>(std::sin(theta)));
      }
    }
    for (int64_t j = 0; j < s.heads * s.head_dim; j += 2) {
      const double theta = (r + 1) * std::pow(10000.0, -static_cast<double>(j) / (s.heads * s.head_dim));
      for (int e = 0; e < 2; ++e) {
        in.wide_cos.push_back(static_cast<float>(std::cos(theta)));
        in.wide_sin.push_back(static_cast<float>(std::sin(theta)));
      }
    }
  }
  return in;
}

// The queries of `in` into the image rows of a joined [batches, text + tokens, heads, head_dim] buffer
// (or in place over the qkv buffer), on the GPU and with the reference, compared whole.
// layer_norm: subtract_mean; halves: rope_split_halves (CogView4's LayerNorm and pairs); norm_heads: the
// norm across that many heads (Wan's, LTX-Video's); wide_rope: tables with a value a channel of every head
// (rope_head_stride = head_dim, LTX-Video's).
void check_case(const Shape& s, DType type, bool weight, bool rope, bool in_place, bool specials,
                bool normalize = true, bool heads_major_out = false, bool fp32_weight = false,
                bool layer_norm = false, bool halves = false, bool bias = false, int64_t norm_heads = 1,
                bool wide_rope = false) {
  SCOPED_TRACE(std::string(layer_norm ? "LayerNorm " : "") + (bias ? "bias " : "") + (halves ? "split halves " : "") +
               (norm_heads > 1 ? "norm across " + std::to_string(norm_heads) + " heads " : "") +
               (wide_rope ? "tables a channel a head " : "") +
               std::string(normalize ? "" : "no norm ") + (heads_major_out ? "[B, H, S, D] out " : "") +std::string(type == DType::kBF16 ? "bf16" : "fp16") + " " + std::to_string(s.batches) + "x" +
               std::to_string(s.tokens) + "x" + std::to_string(s.heads) + "x" + std::to_string(s.head_dim) +
               (weight ? (fp32_weight ? " fp32 weight" : " weight") : " no weight") + (rope ? " rope" : " no rope") +
               (in_place ? " in place" : ""));
  const Inputs in = random_inputs(s, type, specials);
  const int64_t joined_tokens = s.text_tokens + s.tokens;
  QKNormRopeParams p;
  p.batches = s.batches, p.tokens = s.tokens, p.heads = s.heads, p.head_dim = s.head_dim, p.type = type;
  p.eps = 1e-6f, p.normalize = normalize, p.subtract_mean = layer_norm, p.rope_split_halves = halves;
  p.norm_heads = norm_heads, p.rope_head_stride = wide_rope ? s.head_dim : 0;
  p.x_batch_stride = s.tokens * 3 * s.heads * s.head_dim, p.x_token_stride = 3 * s.heads * s.head_dim;
  p.x_head_stride = s.head_dim;
  if (in_place) {
    p.out_batch_stride = p.x_batch_stride, p.out_token_stride = p.x_token_stride, p.out_head_stride = p.x_head_stride;
  } else if (heads_major_out) {  // SD3's joint layout [B, H, S_total, D], these rows from token `text_tokens` on
    p.out_batch_stride = s.heads * joined_tokens * s.head_dim, p.out_head_stride = joined_tokens * s.head_dim;
    p.out_token_stride = s.head_dim;
  } else {
    p.out_batch_stride = joined_tokens * s.heads * s.head_dim, p.out_token_stride = s.heads * s.head_dim;
    p.out_head_stride = s.head_dim;
  }
  p.ld_rope = wide_rope ? s.heads * s.head_dim : s.head_dim, p.rope_rows = joined_tokens, p.rope_offset = s.text_tokens;
  const std::vector<float>& cos_table = wide_rope ? in.wide_cos : in.cos;
  const std::vector<float>& sin_table = wide_rope ? in.wide_sin : in.sin;
  // where the image rows start: after the text tokens (of the first head, in the heads-major layout)
  const int64_t out_lead = s.text_tokens * (heads_major_out ? 1 : s.heads) * s.head_dim;
  std::vector<uint16_t> joined(static_cast<size_t>(s.batches * joined_tokens * s.heads * s.head_dim), kPoisonHalf);

  std::vector<uint16_t> want_qkv = in.qkv, want_joined = joined;
  const bool typed_weight = weight && normalize && !fp32_weight;
  p.x = want_qkv.data(), p.weight = typed_weight ? in.weight.data() : nullptr;
  p.weight_fp32 = weight && normalize && fp32_weight ? in.weight32.data() : nullptr;
  p.bias = bias ? in.bias.data() : nullptr;
  p.cos = rope ? cos_table.data() : nullptr, p.sin = rope ? sin_table.data() : nullptr;
  p.out = in_place ? static_cast<void*>(want_qkv.data()) : want_joined.data() + out_lead;
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());

  DeviceArray<uint16_t> dqkv(in.qkv), dw(in.weight), db(in.bias), djoined(joined);
  DeviceArray<float> dw32(in.weight32);
  DeviceArray<float> dcos(cos_table), dsin(sin_table);
  p.x = dqkv.get(), p.weight = typed_weight ? dw.get() : nullptr;
  p.weight_fp32 = weight && normalize && fp32_weight ? dw32.get() : nullptr;
  p.bias = bias ? db.get() : nullptr;
  p.cos = rope ? dcos.get() : nullptr, p.sin = rope ? dsin.get() : nullptr;
  p.out = in_place ? static_cast<void*>(dqkv.get()) : djoined.get() + out_lead;
  const Status st = int8dit::qk_norm_rope(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<uint16_t> got = in_place ? dqkv.download() : djoined.download();
  const std::vector<uint16_t>& want = in_place ? want_qkv : want_joined;
  ASSERT_EQ(got.size(), want.size());
  int64_t bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (!same_value(got[i], want[i], type)) {
      ++bad;
      ADD_FAILURE() << "element " << i << " (row " << i / s.head_dim << ", column " << i % s.head_dim << "): got 0x"
                    << std::hex << got[i] << ", want 0x" << want[i] << std::dec;
    }
  }
  if (!in_place) EXPECT_EQ(dqkv.download(), in.qkv) << "x changed";
}

TEST(QKNormRopeGpu, MatchesReferenceBitExact) {
  REQUIRE_GPU();
  for (DType type : {DType::kBF16, DType::kFP16}) {
    for (int64_t d : {16, 32, 64, 128, 256}) {
      // 7 tokens and 3 heads: rows that end mid-CTA; 2 batch elements.
      const Shape s{2, 7, 3, 3, d};
      for (bool weight : {true, false}) {
        for (bool rope : {true, false}) check_case(s, type, weight, rope, false, true);
      }
      check_case(s, type, true, true, true, true);
      // the join alone, and rotated without a norm, into SD3's heads-major layout and Flux's
      for (bool rope : {false, true}) {
        check_case(s, type, false, rope, false, true, /*normalize=*/false, /*heads_major_out=*/true);
        check_case(s, type, false, rope, false, true, /*normalize=*/false, /*heads_major_out=*/false);
      }
      check_case(s, type, true, false, false, true, /*normalize=*/true, /*heads_major_out=*/true);
      // the weight in fp32 (a norm a model keeps in fp32: Krea 2's)
      for (bool rope : {true, false})
        check_case(s, type, true, rope, false, true, /*normalize=*/true, /*heads_major_out=*/false, /*fp32_weight=*/true);
    }
  }
}

// LayerNorm statistics, its bias and split-halves pairs (CogView4's and CogVideoX's q/k preparation), the
// extended kernels' head dims: with and without the weight, the norm or the rotation, in place and into
// [B, H, S, D].
TEST(QKNormRopeGpu, LayerNormAndSplitHalvesMatchReferenceBitExact) {
  REQUIRE_GPU();
  for (DType type : {DType::kBF16, DType::kFP16}) {
    for (int64_t d : {64, 128}) {
      const Shape s{2, 7, 3, 3, d};
      for (bool weight : {true, false}) {
        check_case(s, type, weight, true, false, true, true, false, false, /*layer_norm=*/true, /*halves=*/true);
        check_case(s, type, weight, false, false, true, true, false, false, /*layer_norm=*/true, /*halves=*/false);
        check_case(s, type, weight, true, false, true, true, false, false, /*layer_norm=*/true, /*halves=*/false);
        check_case(s, type, weight, true, false, true, true, false, false, /*layer_norm=*/false, /*halves=*/true);
      }
      check_case(s, type, false, true, true, true, true, false, false, true, true);   // in place
      check_case(s, type, false, true, false, true, true, true, false, true, true);   // into [B, H, S, D]
      check_case(s, type, false, true, false, true, false, true, false, false, true);  // turned, no norm
      check_case(s, type, true, true, false, true, true, false, true, true, true);    // an fp32 weight
      // a LayerNorm's bias (CogVideoX's: weight and bias, interleaved pairs), with and without the weight
      for (bool weight : {true, false}) {
        check_case(s, type, weight, true, false, true, true, true, false, true, false, /*bias=*/true);
        check_case(s, type, weight, false, false, true, true, false, false, true, false, /*bias=*/true);
      }
    }
  }
  // CogView4-6B at 1024 px: 4096 image tokens after 256 text tokens, 32 heads of 128.
  if (!small_shapes()) check_case(Shape{1, 4096, 256, 32, 128}, DType::kBF16, false, true, false, false, true, true,
                                  false, true, true);
}

// The norm across heads (Wan's and LTX-Video's RMSNorm over heads x head_dim): groups of 4 and of every
// head, 64 and 128 channels a head, with and without the weight (typed or fp32) and the rotation (a table
// row a token, or LTX's a value a channel), in place and into [B, H, S, D].
TEST(QKNormRopeGpu, NormAcrossHeadsMatchesReferenceBitExact) {
  REQUIRE_GPU();
  for (DType type : {DType::kBF16, DType::kFP16}) {
    for (int64_t d : {64, 128}) {
      const Shape s{2, 7, 3, 8, d};
      for (int64_t group : {4, 8}) {
        for (bool weight : {true, false}) {
          for (bool rope : {true, false})
            check_case(s, type, weight, rope, false, true, true, false, false, false, false, false, group);
        }
        check_case(s, type, true, true, false, true, true, false, false, false, false, false, group, /*wide_rope=*/true);
        check_case(s, type, true, true, false, true, true, false, /*fp32_weight=*/true, false, false, false, group);
        check_case(s, type, true, true, /*in_place=*/true, true, true, false, false, false, false, false, group, true);
        check_case(s, type, true, true, false, true, true, /*heads_major_out=*/true, false, false, false, false, group);
      }
    }
  }
  // a per-head norm with LTX's tables; LTX-Video 2B's q (32 heads of 64, one group) and Wan 2.1 14B's (40 of 128)
  check_case(Shape{2, 7, 3, 8, 64}, DType::kBF16, true, true, false, true, true, false, false, false, false, false, 1, true);
  if (!small_shapes()) {
    check_case(Shape{2, 512, 0, 32, 64}, DType::kBF16, true, true, false, false, true, false, false, false, false, false, 32, true);
    check_case(Shape{1, 256, 0, 40, 128}, DType::kBF16, true, true, false, false, true, false, false, false, false, false, 40);
  }
}

// Groups whose threads the kernel cannot hold are refused before anything runs: 10 heads of 64 (80 threads,
// not a whole number of warps), 160 heads of 64 (1280 threads).
TEST(QKNormRopeGpu, NormAcrossHeadsTheKernelCannotHoldIsRefused) {
  REQUIRE_GPU();
  for (int64_t heads : {10, 160}) {
    const int64_t d = 64, n = 2 * heads * d;
    DeviceArray<uint16_t> dx(std::vector<uint16_t>(n, to_half(1.0f, DType::kBF16)));
    DeviceArray<uint16_t> dout(std::vector<uint16_t>(n, kPoisonHalf));
    QKNormRopeParams p;
    p.batches = 1, p.tokens = 2, p.heads = heads, p.head_dim = d, p.norm_heads = heads;
    p.x_head_stride = p.out_head_stride = d, p.x_token_stride = p.out_token_stride = heads * d;
    p.x_batch_stride = p.out_batch_stride = n;
    p.x = dx.get(), p.out = dout.get();
    const Status st = int8dit::qk_norm_rope(p, nullptr);
    EXPECT_EQ(st.code(), int8dit::StatusCode::kNotSupported) << st.to_string();
    EXPECT_NE(st.message().find("norm across heads"), std::string::npos) << st.message();
    EXPECT_EQ(dout.download(), std::vector<uint16_t>(n, kPoisonHalf));
  }
}

// The extended kernels take head_dim 64 and 128 only; other head dims are refused before anything runs.
TEST(QKNormRopeGpu, LayerNormAtOtherHeadDimsIsRefusedOnTheGpu) {
  REQUIRE_GPU();
  const int64_t d = 32;
  DeviceArray<uint16_t> dx(std::vector<uint16_t>(4 * d, kPoisonHalf)), dout(std::vector<uint16_t>(4 * d, kPoisonHalf));
  QKNormRopeParams p;
  p.batches = 1, p.tokens = 4, p.heads = 1, p.head_dim = d, p.subtract_mean = true;
  p.x_head_stride = p.out_head_stride = d, p.x_token_stride = p.out_token_stride = d;
  p.x_batch_stride = p.out_batch_stride = 4 * d;
  p.x = dx.get(), p.out = dout.get();
  const Status st = int8dit::qk_norm_rope(p, nullptr);
  EXPECT_EQ(st.code(), int8dit::StatusCode::kNotSupported);
  EXPECT_NE(st.message().find("head_dim 64 and 128, not 32"), std::string::npos) << st.message();
  EXPECT_EQ(dout.download(), std::vector<uint16_t>(4 * d, kPoisonHalf));
}

TEST(QKNormRopeGpu, FluxSizedCallsMatchReference) {
  REQUIRE_GPU();
  if (small_shapes()) GTEST_SKIP() << "INT8DIT_SMALL_SHAPES: the Flux-sized call is left out";
  // Flux-dev at 1024 px: 4096 image tokens after 512 text tokens, 24 heads of 128.
  check_case(Shape{1, 4096, 512, 24, 128}, DType::kBF16, true, true, false, false);
  // ... and the text tokens at the start of the joined buffer.
  check_case(Shape{1, 512, 0, 24, 128}, DType::kBF16, true, true, false, false);
  // SD3-medium's joint attention at 1024 px: 4096 image tokens, then 333 text tokens, 24 heads of 64, joined
  check_case(Shape{1, 4096, 0, 24, 64}, DType::kBF16, false, false, false, false, false, true);
}

// Offsets past 2^31 elements take the 64-bit kernel (every other test takes the 32-bit one): x's two
// batch elements 2^31 elements apart in a 4 GiB buffer, against the reference on a compact copy.
// Both builds of it: the RMSNorm / interleaved-pair kernel and the extended one (LayerNorm, split halves).
void check_offsets_past_31_bits(bool extended);

TEST(QKNormRopeGpu, OffsetsPast31BitsTakeTheWideKernel) {
  REQUIRE_GPU();
  if (small_shapes()) GTEST_SKIP() << "INT8DIT_SMALL_SHAPES: the 4 GiB buffer is left out";
  check_offsets_past_31_bits(false);
  check_offsets_past_31_bits(true);
}

void check_offsets_past_31_bits(bool extended) {
  SCOPED_TRACE(extended ? "LayerNorm, split halves" : "RMSNorm, interleaved pairs");
  const int64_t d = 128, heads = 2, tokens = 3, batch_stride = int64_t{1} << 31;
  const Inputs in = random_inputs(Shape{2, tokens, 0, heads, d}, DType::kBF16, false);
  // compact x: [2, tokens, heads, d] taken from the qkv rows' first third
  std::vector<uint16_t> compact;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t j = 0; j < heads * d; ++j) compact.push_back(in.qkv[(b * tokens + t) * 3 * heads * d + j]);
  QKNormRopeParams p;
  p.batches = 2, p.tokens = tokens, p.heads = heads, p.head_dim = d, p.eps = 1e-6f;
  p.subtract_mean = p.rope_split_halves = extended;
  p.x_batch_stride = tokens * heads * d, p.x_token_stride = heads * d, p.x_head_stride = d;
  p.out_batch_stride = tokens * heads * d, p.out_token_stride = heads * d, p.out_head_stride = d;
  p.ld_rope = d, p.rope_rows = tokens;
  std::vector<uint16_t> want(compact.size());
  p.x = compact.data(), p.weight = in.weight.data(), p.cos = in.cos.data(), p.sin = in.sin.data(), p.out = want.data();
  ASSERT_TRUE(int8dit::ref::qk_norm_rope(p).ok());

  const size_t batch_bytes = static_cast<size_t>(tokens * heads * d) * 2;
  uint16_t* wide = nullptr;
  const size_t wide_elems = static_cast<size_t>(batch_stride) + tokens * heads * d;
  if (cudaMalloc(reinterpret_cast<void**>(&wide), wide_elems * 2) != cudaSuccess) {
    cudaGetLastError();
    GTEST_SKIP() << "could not allocate the 4 GiB buffer";
  }
  ASSERT_EQ(cudaMemcpy(wide, compact.data(), batch_bytes, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(wide + batch_stride, compact.data() + tokens * heads * d, batch_bytes, cudaMemcpyHostToDevice),
            cudaSuccess);
  DeviceArray<uint16_t> dw(in.weight), dout(std::vector<uint16_t>(compact.size(), kPoisonHalf));
  DeviceArray<float> dcos(in.cos), dsin(in.sin);
  p.x = wide, p.x_batch_stride = batch_stride;
  p.weight = dw.get(), p.cos = dcos.get(), p.sin = dsin.get(), p.out = dout.get();
  const Status st = int8dit::qk_norm_rope(p, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(wide);
  ASSERT_TRUE(st.ok()) << st.to_string();
  const auto got = dout.download();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_TRUE(same_value(got[i], want[i], DType::kBF16)) << "element " << i;
}

TEST(QKNormRopeGpu, BadCallsAreRefusedAndWriteNothing) {
  REQUIRE_GPU();
  const int64_t d = 64;
  const std::vector<uint16_t> poison(16 * d, kPoisonHalf);
  DeviceArray<uint16_t> dx(poison), dout(poison);
  DeviceArray<float> dtable(std::vector<float>(16 * d, 0.5f));
  QKNormRopeParams p;
  p.batches = 1, p.tokens = 4, p.heads = 2, p.head_dim = d;
  p.x_head_stride = p.out_head_stride = d, p.x_token_stride = p.out_token_stride = 2 * d;
  p.x_batch_stride = p.out_batch_stride = 8 * d;
  p.x = dx.get(), p.out = dout.get();
  p.cos = dtable.get(), p.sin = dtable.get() + 4 * d, p.ld_rope = d, p.rope_rows = 4;
  ASSERT_TRUE(int8dit::validate(p).ok());
  auto refused = [&](QKNormRopeParams q, const std::string& says) {
    const Status st = int8dit::qk_norm_rope(q, nullptr);
    EXPECT_FALSE(st.ok()) << says;
    EXPECT_NE(st.message().find(says), std::string::npos) << st.message();
  };
  QKNormRopeParams q = p;
  q.head_dim = 48;
  refused(q, "head_dim = 48 is not supported");
  q = p, q.x = dx.get() + 1;
  refused(q, "x must be 16-byte aligned");
  q = p, q.out_token_stride = 2 * d + 4, q.out_batch_stride = 9 * d;
  refused(q, "out must be 16-byte aligned with strides that are multiples of 8 elements");
  q = p, q.ld_rope = d + 2, q.rope_rows = 3, q.tokens = 3;
  refused(q, "cos and sin must be 16-byte aligned with a row stride (ld_rope) that is a multiple of 4");
  q = p, q.out = dx.get() + 8;
  refused(q, "out overlaps x without being it");
  std::vector<uint16_t> host(16 * d);
  q = p, q.x = host.data();
  refused(q, "points to host memory");
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(dout.download(), poison);
  EXPECT_EQ(dx.download(), poison);
}

}  // namespace
