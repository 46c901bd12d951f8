// GPU activation quantization against the CPU reference: quantize_rows bit for bit, the fused
// LayerNorm+adaLN / RMSNorm / GELU producers within the stated tolerance (scales 1e-5 relative;
// int8 values off by at most 1, on at most 0.1% of the elements). Inputs are fresh random numbers
// every run, outputs are poisoned first and checked to be fully written (and padding untouched).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "quant_gpu_test_support.h"

namespace {

using namespace quant_gpu_test;

// ---------------- quantize_rows: bit-exact ----------------

TEST(QuantizeRowsGpu, BitExactAgainstReferenceOnRaggedStridedShapes) {
  REQUIRE_GPU();
  for (const Case& c : cases()) {
    auto x = random_rows(c);
    // Row 4: values near 1e-38 (subnormal in places), where 127 / amax overflows to Inf (the clamped path).
    if (c.rows > 4)
      for (int64_t k = 0; k < c.cols; ++k) x[4 * c.ldx + k] = to_half(from_half(x[4 * c.ldx + k], c.type) * 1e-38f, c.type);
    const auto smooth = random_smooth(c);
    Outputs ref(c), gpu(c);
    DeviceArray<uint16_t> dx(x);
    DeviceArray<float> dsmooth(smooth);
    DeviceArray<int8_t> dq(gpu.q);
    DeviceArray<float> dscale(gpu.scale);

    int8dit::QuantizeRowsParams p;
    p.rows = c.rows, p.cols = c.cols, p.x = x.data(), p.x_type = c.type, p.ldx = c.ldx;
    p.smooth = c.smooth ? smooth.data() : nullptr;
    p.q = ref.q.data(), p.ldq = c.ldq, p.scale = ref.scale.data();
    ASSERT_TRUE(int8dit::ref::quantize_rows(p).ok());

    p.x = dx.get(), p.smooth = c.smooth ? dsmooth.get() : nullptr, p.q = dq.get(), p.scale = dscale.get();
    const Status st = (c.rows % 2) ? int8dit::quantize_weights(p, nullptr) : int8dit::quantize_rows(p, nullptr);
    ASSERT_TRUE(st.ok()) << c.name() << ": " << st.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << c.name();
    gpu.q = dq.download();
    gpu.scale = dscale.download();
    expect_bit_exact(c, gpu, ref);
    if (c.rows > 3) {
      EXPECT_EQ(gpu.scale[0], 0.0f) << "a zero row has scale 0 (" << c.name() << ")";
      EXPECT_TRUE(std::isnan(gpu.scale[1]) && std::isnan(gpu.scale[2])) << "NaN/Inf rows have a NaN scale (" << c.name() << ")";
    }
  }
}

TEST(QuantizeRowsGpu, BadArgumentsAreRefusedBeforeAnythingIsWritten) {
  REQUIRE_GPU();
  RefusedCallBuffers b;
  const Case& c = b.c;
  int8dit::QuantizeRowsParams p;
  p.rows = c.rows, p.cols = c.cols, p.x = b.dx.get(), p.ldx = c.ldx, p.q = b.dq.get(), p.ldq = c.ldq, p.scale = b.dscale.get();

  auto bad = p;
  bad.ldq = 63;
  Status st = int8dit::quantize_rows(bad, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("ldq = 63"), std::string::npos) << st.message();

  bad = p;
  bad.x = b.x.data();  // host memory
  st = int8dit::quantize_rows(bad, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("x (the input)"), std::string::npos) << st.message();

  bad = p;
  bad.x_type = DType::kFP32;
  st = int8dit::quantize_rows(bad, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kNotSupported);
  EXPECT_NE(st.message().find("bf16 or fp16"), std::string::npos) << st.message();

  bad = p;
  bad.rows = 0, bad.x = nullptr, bad.q = nullptr, bad.scale = nullptr;
  EXPECT_TRUE(int8dit::quantize_rows(bad, nullptr).ok()) << "an empty batch is valid and launches nothing";
  b.expect_nothing_written();
}

// ---------------- fused producers: within tolerance ----------------

// Runs one fused op on the CPU and the GPU for every case. `fill` sets the op's own fields of the
// params from host (on_device = false) or device copies of its vectors.
template <typename P>
void check_fused(const char* op_name, const std::function<Status(const P&)>& ref_op,
                 const std::function<Status(const P&, cudaStream_t)>& gpu_op,
                 const std::function<void(P&, const Case&, bool on_device)>& fill) {
  ToleranceTally tally;
  for (const Case& c : cases()) {
    SCOPED_TRACE(std::string(op_name) + " " + c.name());
    auto x = random_rows(c);
    condition_extreme_column(c, x);
    const auto smooth = random_smooth(c);
    Outputs ref(c), gpu(c);
    DeviceArray<uint16_t> dx(x), dy(gpu.y);
    DeviceArray<float> dsmooth(smooth);
    DeviceArray<int8_t> dq(gpu.q);
    DeviceArray<float> dscale(gpu.scale);

    P p;
    p.rows = c.rows, p.cols = c.cols, p.x = x.data(), p.x_type = c.type, p.ldx = c.ldx;
    p.smooth = c.smooth ? smooth.data() : nullptr;
    p.q = ref.q.data(), p.ldq = c.ldq, p.scale = ref.scale.data();
    p.y = c.y ? ref.y.data() : nullptr, p.ldy = c.ldq;
    fill(p, c, false);
    ASSERT_TRUE(ref_op(p).ok());

    p.x = dx.get(), p.smooth = c.smooth ? dsmooth.get() : nullptr, p.q = dq.get(), p.scale = dscale.get();
    p.y = c.y ? dy.get() : nullptr;
    fill(p, c, true);
    const Status st = gpu_op(p, nullptr);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    gpu.q = dq.download();
    gpu.scale = dscale.download();
    gpu.y = dy.download();
    expect_within_tolerance(c, gpu, ref, tally);
    if (c.rows > 3) {
      EXPECT_TRUE(std::isnan(gpu.scale[1]) && std::isnan(gpu.scale[2])) << "NaN/Inf rows have a NaN scale";
    }
  }
  tally.expect_within_bound();
}

// Per-channel vectors of a case, random, on the host and the device.
struct ChannelVectors {
  ChannelVectors(const Case& c, int64_t count, float lo, float hi) {
    std::uniform_real_distribution<float> uni(lo, hi);
    host.resize(static_cast<size_t>(count));
    for (auto& v : host) v = to_half(uni(rng()), c.type);
    device = std::make_unique<DeviceArray<uint16_t>>(host);
  }
  const void* get(bool on_device) const { return on_device ? device->get() : host.data(); }
  // host[i] = 0 for every i in `indices`, on the device too.
  void zero(const std::vector<int64_t>& indices) {
    for (int64_t i : indices) host[static_cast<size_t>(i)] = 0;
    device = std::make_unique<DeviceArray<uint16_t>>(host);
  }
  std::vector<uint16_t> host;
  std::unique_ptr<DeviceArray<uint16_t>> device;
};

// rms_norm: RMSNorm's statistics (no mean subtracted), as LTX-Video's norms. scale_is_weight: the rows
// are the norm's own weight and bias (a LayerNorm with elementwise affine), no 1 + scale.
void check_layernorm_modulate_quantize(bool rms_norm, bool scale_is_weight = false) {
  std::unique_ptr<ChannelVectors> mod;
  check_fused<int8dit::LayerNormModulateQuantizeParams>(
      "layernorm_modulate_quantize",
      [](const auto& p) { return int8dit::ref::layernorm_modulate_quantize(p); },
      [](const auto& p, cudaStream_t s) { return int8dit::layernorm_modulate_quantize(p, s); },
      [&mod, rms_norm, scale_is_weight](auto& p, const Case& c, bool on_device) {
        p.rms_norm = rms_norm;
        p.scale_is_weight = scale_is_weight;
        // Batches of tokens_per_batch rows; shift and scale are the two halves of one [batches, 2K]
        // tensor, as chunks of the adaLN linear's output are (ld_mod = 2K).
        // (6400 rows: 100 batch elements of 64, quant_gpu_test_support.h.)
        const int64_t tpb = c.rows % 3 == 0 ? c.rows / 3 : c.rows == 6400 ? 64 : c.rows;
        if (!on_device) {
          mod = std::make_unique<ChannelVectors>(c, c.rows / tpb * 2 * c.cols, -1.0f, 1.0f);
          if (c.extreme_divisor) {  // no shift or scale at the extreme column (condition_extreme_column)
            std::vector<int64_t> at;
            for (int64_t b = 0; b < c.rows / tpb; ++b)
              at.push_back(b * 2 * c.cols + extreme_column(c)), at.push_back(b * 2 * c.cols + c.cols + extreme_column(c));
            mod->zero(at);
          }
        }
        p.eps = 1e-6f, p.tokens_per_batch = tpb, p.ld_mod = 2 * c.cols;
        p.mod_shift = static_cast<const uint16_t*>(mod->get(on_device));
        p.mod_scale = static_cast<const uint16_t*>(mod->get(on_device)) + c.cols;
      });
}

TEST(LayerNormModulateQuantizeGpu, MatchesReferenceWithinToleranceWithPerBatchModulation) {
  REQUIRE_GPU();
  check_layernorm_modulate_quantize(false);
}

TEST(LayerNormModulateQuantizeGpu, RmsNormStatisticsMatchReferenceWithinTolerance) {
  REQUIRE_GPU();
  check_layernorm_modulate_quantize(true);
}

TEST(LayerNormModulateQuantizeGpu, TheNormsOwnWeightAndBiasMatchReferenceWithinTolerance) {
  REQUIRE_GPU();
  // weights in [-1, 1]: a multiplier near 0, where 1 + scale would be near 1, is what tells them apart
  check_layernorm_modulate_quantize(false, true);
}

TEST(RmsNormQuantizeGpu, MatchesReferenceWithinTolerance) {
  REQUIRE_GPU();
  std::unique_ptr<ChannelVectors> weight;
  check_fused<int8dit::RmsNormQuantizeParams>(
      "rmsnorm_quantize", [](const auto& p) { return int8dit::ref::rmsnorm_quantize(p); },
      [](const auto& p, cudaStream_t s) { return int8dit::rmsnorm_quantize(p, s); },
      [&weight](auto& p, const Case& c, bool on_device) {
        if (!on_device) weight = std::make_unique<ChannelVectors>(c, c.cols, 0.5f, 2.0f);
        p.eps = 1e-6f, p.weight = weight->get(on_device);
      });
}

TEST(GeluQuantizeGpu, MatchesReferenceWithinTolerance) {
  REQUIRE_GPU();
  check_fused<int8dit::GeluQuantizeParams>(
      "gelu_quantize", [](const auto& p) { return int8dit::ref::gelu_quantize(p); },
      [](const auto& p, cudaStream_t s) { return int8dit::gelu_quantize(p, s); }, [](auto&, const Case&, bool) {});
}

TEST(FusedQuantizeGpu, BadArgumentsAreRefusedBeforeAnythingIsWritten) {
  REQUIRE_GPU();
  RefusedCallBuffers b;

  int8dit::LayerNormModulateQuantizeParams ln;
  ln.rows = 4, ln.cols = 64, ln.x = b.dx.get(), ln.ldx = 64, ln.tokens_per_batch = 3, ln.mod_shift = b.dx.get(),
  ln.mod_scale = b.dx.get(), ln.ld_mod = 64, ln.q = b.dq.get(), ln.ldq = 64, ln.scale = b.dscale.get(), ln.y = b.dy.get(), ln.ldy = 64;
  Status st = int8dit::layernorm_modulate_quantize(ln, nullptr);
  EXPECT_NE(st.message().find("not a multiple of tokens_per_batch"), std::string::npos) << st.message();
  ln.tokens_per_batch = 2;
  ln.mod_shift = b.x.data();  // host memory
  st = int8dit::layernorm_modulate_quantize(ln, nullptr);
  EXPECT_NE(st.message().find("mod_shift"), std::string::npos) << st.message();

  int8dit::RmsNormQuantizeParams rms;
  rms.rows = 4, rms.cols = 64, rms.x = b.dx.get(), rms.ldx = 64, rms.weight = b.dx.get(), rms.q = b.dq.get(), rms.ldq = 64,
  rms.scale = b.dscale.get(), rms.y = b.dy.get(), rms.ldy = 32;
  st = int8dit::rmsnorm_quantize(rms, nullptr);
  EXPECT_NE(st.message().find("ldy = 32"), std::string::npos) << st.message();

  int8dit::GeluQuantizeParams gelu;
  gelu.rows = 4, gelu.cols = 64, gelu.x = b.dx.get(), gelu.ldx = 64, gelu.q = b.dq.get(), gelu.ldq = 64, gelu.scale = nullptr;
  st = int8dit::gelu_quantize(gelu, nullptr);
  EXPECT_NE(st.message().find("scale"), std::string::npos) << st.message();

  b.expect_nothing_written();
}

}  // namespace
