// gated_add (residual.h) on the GPU against the CPU reference, bit for bit: every quantization test
// shape (quant_gpu_test_support.h: vector and element-by-element layouts, padded rows), with 3 batch
// elements where the rows allow, with a gate that is a chunk of a wider row (as adaLN's) and without
// one, in place over x and over the update; misaligned pointers (the element path); padding and
// outputs poisoned and checked; and calls the kernel must refuse, refused with nothing written.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "int8dit/residual.h"
#include "quant_gpu_test_support.h"

namespace {

using namespace quant_gpu_test;
using int8dit::GatedAddParams;
using int8dit::Status;

enum class Where { kSeparate, kOverX, kOverUpdate };

// Equal bits, or both NaN: the GPU's conversions write the canonical NaN (0x7fff) where the reference
// keeps the sign and quiets the payload; DESIGN.md asks for NaN in, NaN out, not for its bits.
bool same_value(uint16_t got, uint16_t want, DType t) {
  return got == want || (std::isnan(from_half(got, t)) && std::isnan(from_half(want, t)));
}

// x and update: [rows, ldx]; gate: [batches, 3 * cols] with the gate in its middle third; out [rows, ld_out].
void check_case(const Case& c, bool gated, Where where, int64_t misalign) {
  SCOPED_TRACE(c.name() + (gated ? " gate" : " no gate") +
               (where == Where::kOverX ? " in place over x" : where == Where::kOverUpdate ? " in place over update" : "") +
               (misalign ? " misaligned by " + std::to_string(misalign) : ""));
  const int64_t tpb = c.rows % 3 == 0 ? c.rows / 3 : c.rows, batches = c.rows / tpb;
  const int64_t ld_gate = 3 * c.cols, ld_out = where == Where::kSeparate ? c.ldx + 8 : c.ldx;
  // misalign shifts every matrix by that many elements inside a larger buffer
  std::vector<uint16_t> x(static_cast<size_t>(misalign), kPoisonHalf), update = x, gate = x, out = x;
  const auto xr = random_rows(c), ur = random_rows(c);
  x.insert(x.end(), xr.begin(), xr.end());
  update.insert(update.end(), ur.begin(), ur.end());
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (int64_t i = 0; i < batches * ld_gate; ++i) gate.push_back(to_half(uni(rng()), c.type));
  out.resize(static_cast<size_t>(misalign + c.rows * ld_out), kPoisonHalf);

  GatedAddParams p;
  p.rows = c.rows, p.cols = c.cols, p.type = c.type;
  p.ldx = c.ldx, p.ld_update = c.ldx, p.ld_gate = ld_gate, p.tokens_per_batch = tpb, p.ld_out = ld_out;

  // The reference on host copies, laid out as the device buffers.
  std::vector<uint16_t> hx = x, hu = update, ho = out;
  p.x = hx.data() + misalign, p.update = hu.data() + misalign;
  p.gate = gated ? gate.data() + misalign + c.cols : nullptr;
  p.out = where == Where::kOverX ? hx.data() + misalign : where == Where::kOverUpdate ? hu.data() + misalign
                                                                                       : ho.data() + misalign;
  ASSERT_TRUE(int8dit::ref::gated_add(p).ok());
  const std::vector<uint16_t>& want = where == Where::kOverX ? hx : where == Where::kOverUpdate ? hu : ho;

  DeviceArray<uint16_t> dx(x), du(update), dg(gate), dout(out);
  p.x = dx.get() + misalign, p.update = du.get() + misalign;
  p.gate = gated ? dg.get() + misalign + c.cols : nullptr;
  p.out = where == Where::kOverX ? dx.get() + misalign : where == Where::kOverUpdate ? du.get() + misalign
                                                                                      : dout.get() + misalign;
  const Status st = int8dit::gated_add(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<uint16_t> got = where == Where::kOverX ? dx.download() : where == Where::kOverUpdate ? du.download()
                                                                                                          : dout.download();
  ASSERT_EQ(got.size(), want.size());
  // Bit for bit, padding included: the reference leaves padding (and the misaligned lead) poisoned.
  int64_t bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (!same_value(got[i], want[i], c.type)) {
      ++bad;
      ADD_FAILURE() << "element " << i << " (row " << (static_cast<int64_t>(i) - misalign) / ld_out << "): got 0x"
                    << std::hex << got[i] << ", want 0x" << want[i] << std::dec;
    }
  }
}

TEST(GatedAddGpu, MatchesReferenceBitExactInEveryLayout) {
  REQUIRE_GPU();
  for (const Case& c : cases()) {
    check_case(c, true, Where::kSeparate, 0);
    check_case(c, false, Where::kSeparate, 0);
    check_case(c, true, Where::kOverX, 0);
    check_case(c, true, Where::kOverUpdate, 0);
    if (c.rows * c.cols <= 4096 * 3072) check_case(c, true, Where::kSeparate, 1);  // 2-byte aligned: elements
  }
}

// x + an fp32 table (gate_fp32, no update): a per-token modulation's block table added to its time
// embedding rows, bit for bit with the reference in every test shape, the table one row for all rows or
// one per batch element, and 2 bytes off alignment (the element path).
TEST(GatedAddGpu, AnFp32TableAddedToRowsWithoutAnUpdateMatchesTheReferenceBitForBit) {
  REQUIRE_GPU();
  for (const Case& c : cases()) {
    for (const int64_t misalign : {int64_t{0}, int64_t{1}}) {
      if (misalign && c.rows * c.cols > 4096 * 3072) continue;
      SCOPED_TRACE(c.name() + (misalign ? " misaligned by 1" : ""));
      const int64_t tpb = c.rows % 3 == 0 ? c.rows / 3 : c.rows, batches = c.rows / tpb, ld_gate = c.cols + 4;
      std::vector<uint16_t> x(static_cast<size_t>(misalign), kPoisonHalf);
      const auto xr = random_rows(c);
      x.insert(x.end(), xr.begin(), xr.end());
      std::vector<float> table(static_cast<size_t>(batches * ld_gate));
      std::uniform_real_distribution<float> uni(-2.0f, 2.0f);
      for (float& v : table) v = uni(rng());
      std::vector<uint16_t> want(static_cast<size_t>(misalign + c.rows * c.ldx), kPoisonHalf);
      GatedAddParams p;
      p.rows = c.rows, p.cols = c.cols, p.type = c.type, p.ldx = c.ldx, p.ld_update = c.ldx, p.ld_out = c.ldx;
      p.ld_gate = ld_gate, p.tokens_per_batch = tpb;
      p.x = x.data() + misalign, p.gate_fp32 = table.data(), p.out = want.data() + misalign;
      ASSERT_TRUE(int8dit::ref::gated_add(p).ok());
      DeviceArray<uint16_t> dx(x), dout(std::vector<uint16_t>(want.size(), kPoisonHalf));
      DeviceArray<float> dtable(table);
      p.x = dx.get() + misalign, p.gate_fp32 = dtable.get(), p.out = dout.get() + misalign;
      const Status st = int8dit::gated_add(p, nullptr);
      ASSERT_TRUE(st.ok()) << st.to_string();
      const auto got = dout.download();
      int64_t bad = 0;
      for (size_t i = 0; i < got.size(); ++i) bad += same_value(got[i], want[i], c.type) ? 0 : 1;
      EXPECT_EQ(bad, 0);
    }
  }
}

// The same rows split over several calls, and one call, agree: the grid-wide index splits rows across
// CTAs arbitrarily, which a wrong row or column from a vector index would show on many rows at once.
TEST(GatedAddGpu, ManyBatchesOfOneRowEach) {
  REQUIRE_GPU();
  Case c{37, 1152, 1152, 1152, DType::kBF16, false, false};
  const auto x = random_rows(c), update = random_rows(c);
  std::vector<uint16_t> gate;
  std::uniform_real_distribution<float> uni(-2.0f, 2.0f);
  for (int64_t i = 0; i < c.rows * c.cols; ++i) gate.push_back(to_half(uni(rng()), c.type));
  std::vector<uint16_t> want(x.size(), kPoisonHalf);
  GatedAddParams p;
  p.rows = c.rows, p.cols = c.cols, p.type = c.type, p.ldx = p.ld_update = p.ld_gate = p.ld_out = c.cols;
  p.tokens_per_batch = 1;
  p.x = x.data(), p.update = update.data(), p.gate = gate.data(), p.out = want.data();
  ASSERT_TRUE(int8dit::ref::gated_add(p).ok());
  DeviceArray<uint16_t> dx(x), du(update), dg(gate), dout(std::vector<uint16_t>(x.size(), kPoisonHalf));
  p.x = dx.get(), p.update = du.get(), p.gate = dg.get(), p.out = dout.get();
  ASSERT_TRUE(int8dit::gated_add(p, nullptr).ok());
  const auto got = dout.download();
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) bad += same_value(got[i], want[i], c.type) ? 0 : 1;
  EXPECT_EQ(bad, 0);
}

TEST(GatedAddGpu, BadCallsAreRefusedAndWriteNothing) {
  REQUIRE_GPU();
  const std::vector<uint16_t> poison(64 * 64, kPoisonHalf);
  DeviceArray<uint16_t> dx(poison), du(poison), dout(poison);
  GatedAddParams p;
  p.rows = 8, p.cols = 64, p.ldx = p.ld_update = p.ld_out = 64;
  p.x = dx.get(), p.update = du.get(), p.out = dout.get();

  auto refused = [&](GatedAddParams q, const std::string& says) {
    const Status st = int8dit::gated_add(q, nullptr);
    EXPECT_FALSE(st.ok()) << says;
    EXPECT_NE(st.message().find(says), std::string::npos) << st.message();
  };
  GatedAddParams q = p;
  q.type = DType::kFP32;
  refused(q, "is not supported: use bf16 or fp16");
  q = p, q.ld_out = 32;
  refused(q, "ld_out = 32 is smaller than cols = 64");
  q = p, q.gate = dx.get() + 4096 - 64, q.ld_gate = 64;  // no tokens_per_batch
  refused(q, "tokens_per_batch = 0");
  q.tokens_per_batch = 3;
  refused(q, "rows = 8 is not a multiple of tokens_per_batch = 3");
  q = p, q.out = dx.get() + 8;  // overlaps x, not x itself
  refused(q, "out overlaps x without being it");
  q = p, q.gate = dout.get() + 64 * 8, q.ld_gate = 64, q.tokens_per_batch = 8, q.out = dout.get();
  q.gate = dout.get() + 64 * 7;  // the gate row inside out
  refused(q, "out overlaps gate");
  std::vector<uint16_t> host(64 * 64);
  q = p, q.update = host.data();
  refused(q, "update points to host memory");
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(dout.download(), poison);
  EXPECT_EQ(dx.download(), poison);
}

}  // namespace
