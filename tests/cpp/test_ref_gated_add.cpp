// The CPU reference of gated_add (residual.h) and its argument checks: one FMA rounded once, the gate
// row of each batch element, in place, and the layouts it must refuse (overlaps, strides, types).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "int8dit/residual.h"
#include "half_values.h"
#include "ref/half_bits.h"

namespace {

using int8dit::DType;
using int8dit::GatedAddParams;
using int8dit::Status;
using int8dit::ref::bf16_to_float;
using int8dit::ref::float_to_bf16;

TEST(RefGatedAdd, EachRowTakesItsBatchElementsGateAsOneFma) {
  // 4 rows of 2, 2 tokens a batch element; padded rows (ld 3)
  const auto x = bf16s({1, 2, -1, 3, 4, -1, 5, 6, -1, 7, 8, -1});
  const auto u = bf16s({1, 1, -1, 1, 1, -1, 2, 2, -1, 1, 0.5f, -1});
  const auto g = bf16s({10, 100, 0.5f, 1});  // gate rows [10, 100] and [0.5, 1]
  std::vector<uint16_t> out(8, 0xffff);
  GatedAddParams p;
  p.rows = 4, p.cols = 2, p.type = DType::kBF16, p.x = x.data(), p.ldx = 3, p.update = u.data(), p.ld_update = 3;
  p.gate = g.data(), p.ld_gate = 2, p.tokens_per_batch = 2, p.out = out.data(), p.ld_out = 2;
  ASSERT_TRUE(int8dit::ref::gated_add(p).ok());
  const std::vector<float> want = {11, 102, 13, 104, 6, 8, 7.5f, 8.5f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(bf16_to_float(out[i]), want[i]) << i;

  // The element is fmaf(g, u, x) rounded once to bf16 (the fused norm's update computes the same).
  const float gx = 1.0f + 0x1p-7f, ux = 3.0f, xx = -3.0f;
  const auto x1 = bf16s({xx}), u1 = bf16s({ux}), g1 = bf16s({gx});
  std::vector<uint16_t> o1(1);
  GatedAddParams q;
  q.rows = q.cols = 1, q.x = x1.data(), q.ldx = 1, q.update = u1.data(), q.ld_update = 1, q.gate = g1.data();
  q.ld_gate = 1, q.tokens_per_batch = 1, q.out = o1.data(), q.ld_out = 1;
  ASSERT_TRUE(int8dit::ref::gated_add(q).ok());
  EXPECT_EQ(o1[0], float_to_bf16(std::fma(gx, ux, xx)));
}

TEST(RefGatedAdd, WithoutAGateAddsTheUpdateAndWorksInPlace) {
  auto x = bf16s({1, 2, 3, 4});
  const auto u = bf16s({0.5f, 0.25f, -3, 1});
  GatedAddParams p;
  p.rows = 2, p.cols = 2, p.x = x.data(), p.ldx = 2, p.update = u.data(), p.ld_update = 2, p.out = x.data(), p.ld_out = 2;
  ASSERT_TRUE(int8dit::ref::gated_add(p).ok());
  EXPECT_EQ(x, bf16s({1.5f, 2.25f, 0, 5}));
}

TEST(RefGatedAdd, AnFp32TableWithoutAnUpdateIsAddedInFp32ThenRoundedAsPyTorchDoes) {
  // out = x + gate_fp32 (update null: 1): (table + x.float()).to(bf16), the fp32 sum rounded to bf16.
  // x = 1 and g = 2^-8 + 2^-40: the fp32 sum is 1 + 2^-8 (2^-40 is below fp32's ulp), exactly halfway
  // between two bf16 values, which rounds to even (1); the exact sum rounded to bf16 once would be 1 + 2^-7.
  const auto x = bf16s({1, 1, 2, -3});
  const std::vector<float> table = {0x1p-8f + 0x1p-40f, 0.375f};
  std::vector<uint16_t> out(4, 0xffff);
  GatedAddParams p;
  p.rows = 2, p.cols = 2, p.type = DType::kBF16, p.x = x.data(), p.ldx = 2, p.ld_update = 2;
  p.gate_fp32 = table.data(), p.ld_gate = 2, p.tokens_per_batch = 2, p.out = out.data(), p.ld_out = 2;
  ASSERT_TRUE(int8dit::ref::gated_add(p).ok());
  EXPECT_EQ(out, bf16s({1, 1.375f, 2, -2.625f}));
  EXPECT_EQ(out[0], float_to_bf16(1.0f + (0x1p-8f + 0x1p-40f)));
}

TEST(RefGatedAdd, RefusesWhatTheKernelsCannotDoSafely) {
  std::vector<uint16_t> buf(64, 0);
  GatedAddParams p;
  p.rows = 4, p.cols = 4, p.x = buf.data(), p.ldx = 4, p.update = buf.data() + 16, p.ld_update = 4;
  p.out = buf.data() + 32, p.ld_out = 4;
  ASSERT_TRUE(int8dit::validate(p).ok());
  auto says = [](const GatedAddParams& q, const std::string& text) {
    const Status st = int8dit::validate(q);
    EXPECT_FALSE(st.ok()) << text;
    EXPECT_NE(st.message().find(text), std::string::npos) << st.message();
  };
  GatedAddParams q = p;
  q.out = buf.data() + 2;
  says(q, "out overlaps x without being it");
  q = p, q.out = buf.data() + 16, q.ld_out = 5;  // the update's pointer, another stride
  says(q, "out overlaps update without being it");
  q = p, q.gate = buf.data() + 40, q.ld_gate = 4, q.tokens_per_batch = 4;
  says(q, "out overlaps gate");
  q = p, q.gate = buf.data() + 48, q.ld_gate = 4;
  says(q, "tokens_per_batch = 0");
  q = p, q.ldx = 3;
  says(q, "ldx = 3 is smaller than cols = 4");
  q = p, q.type = DType::kInt8;
  says(q, "use bf16 or fp16");
  q = p, q.update = nullptr;  // no update: 1 (out = x + gate)
  EXPECT_TRUE(int8dit::validate(q).ok());
  const std::vector<float> table(8, 0.5f);
  q = p, q.gate = buf.data() + 48, q.gate_fp32 = table.data(), q.ld_gate = 4, q.tokens_per_batch = 4;
  says(q, "both gate and gate_fp32 are set");
  q = p, q.gate_fp32 = reinterpret_cast<const float*>(buf.data() + 30), q.ld_gate = 4, q.tokens_per_batch = 4;
  says(q, "out overlaps gate_fp32");  // 4 fp32 values from element 30 reach into out (from element 32)
  q = p, q.rows = -1;
  says(q, "negative size");
  q = p, q.out = buf.data(), q.ld_out = 4;  // in place over x: allowed
  EXPECT_TRUE(int8dit::validate(q).ok());
}

}  // namespace
