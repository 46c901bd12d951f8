// `int8dit check`, step 4 (check_block_ops.h): gated_add and qk_norm_rope once on the CPU reference and
// once on the GPU, on host and device copies of the same operands, outputs poisoned before each run.
#include "check_block_ops.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "check_compare.h"
#include "int8dit/attention.h"
#include "int8dit/residual.h"
#include "ref/half_bits.h"

namespace int8dit::cli {
namespace {

constexpr uint16_t kPoison = 0xff80;  // bf16 -Inf: neither op writes it from these operands

std::string show_bf16(uint16_t h) { return std::to_string(ref::bf16_to_float(h)); }

std::vector<uint16_t> draw_bf16(std::mt19937& rng, size_t n, float mean, float sigma) {
  std::normal_distribution<float> d(mean, sigma);
  std::vector<uint16_t> v(n);
  for (uint16_t& e : v) e = ref::float_to_bf16(d(rng));
  return v;
}

// Runs `run(on_host)` for the reference (out: host memory) and the GPU (out: device memory), compares
// the [m, k] outputs bit for bit and prints the line.
template <typename Run>
GpuResult compare_runs(const char* what, int64_t m, int64_t k, Run run) {
  std::vector<uint16_t> want(static_cast<size_t>(m * k), kPoison);
  if (Status st = run(true, want.data()); !st.ok()) {
    std::printf("  FAIL  %-34s the reference refused it: %s\n", what, st.to_string().c_str());
    return GpuResult::kMismatch;
  }
  DeviceBuffer<uint16_t> out(want.size());
  if (out.err != cudaSuccess || !out.upload(std::vector<uint16_t>(want.size(), kPoison))) {
    std::printf("  FAIL  %-34s cudaMalloc/cudaMemcpy: %s\n", what, cudaGetErrorString(cudaGetLastError()));
    return GpuResult::kMismatch;
  }
  Status st = run(false, out.ptr);
  if (st.ok()) st = synchronize();
  if (const GpuResult r = classify(what, st); r != GpuResult::kAgrees) return r;
  return report(what, compare_block(out.download(want.size()).data(), want.data(), m, k, k, 0, bf16_distance, show_bf16),
                "bit-exact")
             ? GpuResult::kAgrees
             : GpuResult::kMismatch;
}

// head_dim for qk_norm_rope: the largest power of two up to 128 that divides k (k is a multiple of 16).
int64_t head_dim_for(int64_t k) {
  int64_t d = 128;
  while (k % d != 0) d /= 2;
  return d;
}

}  // namespace

GpuResult check_block_ops(const std::vector<uint16_t>& x, int64_t m, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed ^ 0xb10cu);
  const int64_t batches = m % 2 == 0 ? 2 : 1;
  const std::vector<uint16_t> update = draw_bf16(rng, static_cast<size_t>(m * k), 0.0f, 1.0f);
  const std::vector<uint16_t> gate = draw_bf16(rng, static_cast<size_t>(batches * k), 0.0f, 0.5f);
  const int64_t d = head_dim_for(k);
  const std::vector<uint16_t> weight = draw_bf16(rng, static_cast<size_t>(d), 1.0f, 0.2f);
  std::vector<float> cos(static_cast<size_t>(m * d)), sin(cos.size());
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t j = 0; j < d; j += 2) {
      const double theta = static_cast<double>(t) * std::pow(10000.0, -static_cast<double>(j) / d);
      cos[t * d + j] = cos[t * d + j + 1] = static_cast<float>(std::cos(theta));
      sin[t * d + j] = sin[t * d + j + 1] = static_cast<float>(std::sin(theta));
    }
  }
  DeviceBuffer<uint16_t> dx(x.size()), du(update.size()), dg(gate.size()), dw(weight.size());
  DeviceBuffer<float> dcos(cos.size()), dsin(sin.size());
  if (!dx.upload(x) || !du.upload(update) || !dg.upload(gate) || !dw.upload(weight) || !dcos.upload(cos) ||
      !dsin.upload(sin)) {
    std::printf("  FAIL  block ops: could not copy their operands to the GPU: %s\n",
                cudaGetErrorString(cudaGetLastError()));
    return GpuResult::kMismatch;
  }
  bool mismatch = false, unavailable = false;
  auto note = [&](GpuResult v) {
    mismatch |= v == GpuResult::kMismatch, unavailable |= v == GpuResult::kUnavailable;
  };

  note(compare_runs("gated residual update", m, k, [&](bool host, uint16_t* out) {
    GatedAddParams p;
    p.rows = m, p.cols = k, p.ldx = p.ld_update = p.ld_gate = p.ld_out = k, p.tokens_per_batch = m / batches;
    p.x = host ? x.data() : dx.ptr, p.update = host ? update.data() : du.ptr, p.gate = host ? gate.data() : dg.ptr;
    p.out = out;
    return host ? ref::gated_add(p) : gated_add(p, nullptr);
  }));

  const std::string qk = "q/k RMSNorm + RoPE (head_dim " + std::to_string(d) + ")";
  note(compare_runs(qk.c_str(), m, k, [&](bool host, uint16_t* out) {
    QKNormRopeParams p;
    p.batches = 1, p.tokens = m, p.heads = k / d, p.head_dim = d, p.eps = 1e-6f;
    p.x_batch_stride = p.out_batch_stride = m * k, p.x_token_stride = p.out_token_stride = k;
    p.x_head_stride = p.out_head_stride = d;
    p.ld_rope = d, p.rope_rows = m;
    p.x = host ? x.data() : dx.ptr, p.weight = host ? weight.data() : dw.ptr;
    p.cos = host ? cos.data() : dcos.ptr, p.sin = host ? sin.data() : dsin.ptr;
    p.out = out;
    return host ? ref::qk_norm_rope(p) : qk_norm_rope(p, nullptr);
  }));
  return mismatch ? GpuResult::kMismatch : unavailable ? GpuResult::kUnavailable : GpuResult::kAgrees;
}

}  // namespace int8dit::cli
