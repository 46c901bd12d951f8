// layernorm_modulate_quantize with the gated residual update (r = x + gate * update, written to
// x_out, then normalized) on the GPU against the CPU reference: x_out bit for bit (one fp32 FMA,
// rounded once), y within one unit in the last place, q and scales within the fused ops' tolerance.
// Every quantization test shape the vector kernels take (quant_gpu_test_support.h), with 3 batch
// elements where the rows allow, with and without a gate (a chunk of a wider row, as adaLN's), once in
// place (x_out = x); and a layout they do not take, refused.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "quant_gpu_test_support.h"

namespace {

using namespace quant_gpu_test;

std::vector<uint16_t> random_halves(const Case& c, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> uni(lo, hi);
  std::vector<uint16_t> v(n);
  for (auto& e : v) e = to_half(uni(rng()), c.type);
  return v;
}

bool vector_layout(const Case& c) {
  return c.cols % 8 == 0 && c.ldx % 8 == 0 && c.ldq % 8 == 0 && c.cols <= 16384;
}

TEST(GatedResidualLayerNormGpu, MatchesReferenceWithXOutBitExact) {
  REQUIRE_GPU();
  ToleranceTally tally;
  int ran = 0;
  for (const Case& base : cases()) {
    if (!vector_layout(base)) continue;
    // gated: the gate is a chunk of a wider adaLN output (row stride 3 cols, as DiT's 6-way chunk has);
    // in place: x_out is x (the blocks write a new tensor, but the API allows it)
    for (const auto& [gated, in_place] : {std::pair{true, false}, std::pair{false, false}, std::pair{true, true}}) {
      Case c = base;
      c.extreme_divisor = false;  // its conditioning assumes x is the row normalized
      SCOPED_TRACE(c.name() + (gated ? " gate" : " no gate") + (in_place ? " in place" : ""));
      const int64_t tpb = c.rows % 3 == 0 ? c.rows / 3 : c.rows, batches = c.rows / tpb;
      const auto x = random_rows(c), update = random_rows(c);
      const auto mod = random_halves(c, static_cast<size_t>(batches * 2 * c.cols), -1.0f, 1.0f);
      const int64_t ld_gate = 3 * c.cols;
      const auto gate = random_halves(c, static_cast<size_t>(batches * ld_gate), -1.0f, 1.0f);
      const auto smooth = random_smooth(c);
      Outputs ref(c), gpu(c);
      std::vector<uint16_t> ref_out(static_cast<size_t>(c.rows * c.ldx), kPoisonHalf), gpu_out = ref_out;
      DeviceArray<uint16_t> dx(x), du(update), dmod(mod), dgate(gate), dy(gpu.y), dout(gpu_out);
      DeviceArray<float> dsmooth(smooth);
      DeviceArray<int8_t> dq(gpu.q);
      DeviceArray<float> dscale(gpu.scale);

      int8dit::LayerNormModulateQuantizeParams p;
      p.rows = c.rows, p.cols = c.cols, p.x = x.data(), p.x_type = c.type, p.ldx = c.ldx, p.eps = 1e-6f;
      p.tokens_per_batch = tpb, p.mod_shift = mod.data(), p.mod_scale = mod.data() + c.cols, p.ld_mod = 2 * c.cols;
      p.smooth = c.smooth ? smooth.data() : nullptr, p.q = ref.q.data(), p.ldq = c.ldq, p.scale = ref.scale.data();
      p.y = c.y ? ref.y.data() : nullptr, p.ldy = c.ldq;
      p.update = update.data(), p.ld_update = c.ldx, p.gate = gated ? gate.data() + c.cols : nullptr, p.ld_gate = ld_gate;
      p.x_out = ref_out.data(), p.ld_x_out = c.ldx;
      ASSERT_TRUE(int8dit::ref::layernorm_modulate_quantize(p).ok());

      p.x = dx.get(), p.mod_shift = dmod.get(), p.mod_scale = dmod.get() + c.cols;
      p.smooth = c.smooth ? dsmooth.get() : nullptr, p.q = dq.get(), p.scale = dscale.get();
      p.y = c.y ? dy.get() : nullptr, p.update = du.get(), p.gate = gated ? dgate.get() + c.cols : nullptr;
      p.x_out = in_place ? dx.get() : dout.get();
      const auto st = int8dit::layernorm_modulate_quantize(p, nullptr);
      ASSERT_TRUE(st.ok()) << st.to_string();
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      gpu.q = dq.download(), gpu.scale = dscale.download(), gpu.y = dy.download();
      expect_within_tolerance(c, gpu, ref, tally);
      // x_out: every element of [0, cols) bit for bit (NaN payloads aside), the padding untouched (in
      // place: x's own padding).
      const auto got_out = in_place ? dx.download() : dout.download();
      int64_t differ = 0;
      for (int64_t r = 0; r < c.rows; ++r)
        for (int64_t k = 0; k < c.ldx; ++k) {
          const uint16_t g = got_out[r * c.ldx + k], w = ref_out[r * c.ldx + k];
          const bool both_nan = std::isnan(from_half(g, c.type)) && std::isnan(from_half(w, c.type));
          differ += k < c.cols ? !(g == w || both_nan) : g != (in_place ? x[r * c.ldx + k] : kPoisonHalf);
        }
      EXPECT_EQ(differ, 0);
      ++ran;
    }
  }
  EXPECT_GT(ran, 10);
  tally.expect_within_bound();
}

TEST(GatedResidualLayerNormGpu, ALayoutTheVectorKernelsDoNotTakeIsRefusedWithNothingWritten) {
  REQUIRE_GPU();
  RefusedCallBuffers b;  // 4 x 64 bf16
  int8dit::LayerNormModulateQuantizeParams p;
  p.rows = 4, p.cols = 60, p.x = b.dx.get(), p.ldx = 64, p.tokens_per_batch = 4, p.mod_shift = b.dx.get(),
  p.mod_scale = b.dx.get(), p.ld_mod = 64, p.q = b.dq.get(), p.ldq = 64, p.scale = b.dscale.get();
  p.update = b.dx.get(), p.ld_update = 64, p.x_out = b.dy.get(), p.ld_x_out = 64;
  const auto st = int8dit::layernorm_modulate_quantize(p, nullptr);
  EXPECT_EQ(st.code(), int8dit::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("cols % 8 == 0 (cols = 60)"), std::string::npos) << st.message();
  b.expect_nothing_written();
}

}  // namespace
