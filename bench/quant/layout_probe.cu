// int8dit_quant_layout_probe: how far a row-quantization kernel's layout (who holds a row, how
// loads overlap the per-row reductions) moves it against the copy bandwidth at one shape, before a
// layout goes into src/quant. Times, in one process on one GPU:
//   - the ceilings at this size: cudaMemcpyAsync of the same bytes, and a cast kernel (bf16 -> int8
//     at a fixed scale: the same reads and writes with no per-row reduction);
//   - the library's kernels (the public entry points);
//   - candidate layouts over the library's row ops (row_ops.cuh), checked against the library's
//     output (quantize_rows bit for bit; LayerNorm: scales within 1e-5 relative, int8 within 1).
//
//   int8dit_quant_layout_probe [M K]        (default 4096 3072; a candidate runs where its layout fits K)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "int8dit/quantize.h"
#include "quant/row_kernels.cuh"
#include "quant/row_ops.cuh"
#include "timing.h"

namespace {

using bench_quant::check_cuda;
using int8dit::quant::kVecElems;
using int8dit::quant::max_nan;
using int8dit::quant::RowArgs;
using int8dit::quant::RowReducer;
using T = __nv_bfloat16;

__device__ __forceinline__ void unpack8(const uint4& raw, float (&v)[kVecElems]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = __uint_as_float(w[i] << 16);
    v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// Candidate: the row in registers straight from global memory (no shared-memory stage), kVecs
// vectors a thread, threads = cols / (8 kVecs). kPersistent: a grid of resident CTAs striding over
// rows, the next row's raw vectors loaded before the current row is processed; otherwise one CTA
// a row and the hardware's block scheduler overlaps rows. Sums in 4 independent chains.
template <typename Op, int kVecs, bool kPersistent>
__global__ void __launch_bounds__(256) direct_rows(RowArgs<T> a, Op op) {
  __shared__ float4 partials[2][2];
  RowReducer reduce{partials};
  reduce.init();
  const int col0 = threadIdx.x * kVecElems, col_step = blockDim.x * kVecElems;
  int64_t row = blockIdx.x;
  uint4 raw[kVecs];
  auto fetch = [&](int64_t r) {
    const uint4* xr = reinterpret_cast<const uint4*>(a.x + r * a.ldx + col0);
#pragma unroll
    for (int i = 0; i < kVecs; ++i) raw[i] = __ldcs(xr + i * blockDim.x);
  };
  fetch(row);
  for (; row < a.rows; row += kPersistent ? gridDim.x : a.rows) {
    float v[kVecs][kVecElems];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) unpack8(raw[i], v[i]);
    if (kPersistent && row + gridDim.x < a.rows) fetch(row + gridDim.x);
    op.begin_row(row);
#pragma unroll
    for (int pass = 0; pass < Op::kStatPasses; ++pass) {
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int i = 0; i < kVecs; ++i)
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) acc[e % 4] += op.stat_term(pass, v[i][e]);
      op.end_pass(pass, reduce.sum((acc[0] + acc[1]) + (acc[2] + acc[3])));
    }
    float m[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      op.apply8(col0 + i * col_step, v[i]);
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) m[e % 4] = max_nan(m[e % 4], fabsf(v[i][e]));
    }
    const auto rq = int8dit::quant::row_quant(reduce.max_nonneg(max_nan(max_nan(m[0], m[1]), max_nan(m[2], m[3]))));
    int8_t* const qr = a.q + row * a.ldq;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      if (rq.fast) {
        int8dit::quant::store8_int8_fast(qr + col0 + i * col_step, v[i], rq.inv);
      } else {
        int8dit::quant::store8_int8(qr + col0 + i * col_step, v[i], rq.inv);
      }
    }
    if (threadIdx.x == 0) a.scale[row] = rq.scale;
  }
}

// Candidate: as direct_rows (one CTA a row), but the row is held as its raw 16-bit vectors (4
// registers per 8 elements instead of 8) and unpacked again in every pass; the op's values are
// computed twice (for the max, then for the int8 step). Fewer registers, more instructions.
template <typename Op, int kVecs>
__global__ void __launch_bounds__(256) direct_rows_raw(RowArgs<T> a, Op op) {
  __shared__ float4 partials[2][2];
  RowReducer reduce{partials};
  reduce.init();
  const int col0 = threadIdx.x * kVecElems, col_step = blockDim.x * kVecElems;
  const int64_t row = blockIdx.x;
  uint4 raw[kVecs];
  const uint4* xr = reinterpret_cast<const uint4*>(a.x + row * a.ldx + col0);
#pragma unroll
  for (int i = 0; i < kVecs; ++i) raw[i] = __ldcs(xr + i * blockDim.x);
  op.begin_row(row);
#pragma unroll
  for (int pass = 0; pass < Op::kStatPasses; ++pass) {
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      float v[kVecElems];
      unpack8(raw[i], v);
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) acc[e % 4] += op.stat_term(pass, v[e]);
    }
    op.end_pass(pass, reduce.sum((acc[0] + acc[1]) + (acc[2] + acc[3])));
  }
  float m[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    float v[kVecElems];
    unpack8(raw[i], v);
    op.apply8(col0 + i * col_step, v);
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) m[e % 4] = max_nan(m[e % 4], fabsf(v[e]));
  }
  const auto rq = int8dit::quant::row_quant(reduce.max_nonneg(max_nan(max_nan(m[0], m[1]), max_nan(m[2], m[3]))));
  int8_t* const qr = a.q + row * a.ldq;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    float v[kVecElems];
    unpack8(raw[i], v);
    op.apply8(col0 + i * col_step, v);
    if (rq.fast) {
      int8dit::quant::store8_int8_fast(qr + col0 + i * col_step, v, rq.inv);
    } else {
      int8dit::quant::store8_int8(qr + col0 + i * col_step, v, rq.inv);
    }
  }
  if (threadIdx.x == 0) a.scale[row] = rq.scale;
}

// Ceiling: the same bytes with no reduction, 4 vectors a thread per step.
__global__ void __launch_bounds__(256) cast_kernel(const uint4* x, uint2* q, int64_t nvec, float inv) {
  for (int64_t base = (blockIdx.x * int64_t(blockDim.x)) * 4 + threadIdx.x; base < nvec; base += int64_t(gridDim.x) * blockDim.x * 4) {
    uint4 raw[4];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (base + j * blockDim.x < nvec) raw[j] = __ldcs(x + base + j * blockDim.x);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (base + j * blockDim.x >= nvec) continue;
      float v[kVecElems];
      unpack8(raw[j], v);
      int8dit::quant::store8_int8_fast(reinterpret_cast<int8_t*>(q + base + j * blockDim.x), v, inv);
    }
  }
}

struct Buffers {
  std::vector<T*> x;
  std::vector<int8_t*> q;
  std::vector<float*> scale;
  int sets = 0;
};

struct Reference {
  std::vector<int8_t> q;
  std::vector<float> scale;
};

Reference read_back(const Buffers& b, int set, int64_t m, int64_t k) {
  Reference r{std::vector<int8_t>(static_cast<size_t>(m * k)), std::vector<float>(static_cast<size_t>(m))};
  check_cuda(cudaDeviceSynchronize(), "sync");
  check_cuda(cudaMemcpy(r.q.data(), b.q[set], r.q.size(), cudaMemcpyDeviceToHost), "copy q");
  check_cuda(cudaMemcpy(r.scale.data(), b.scale[set], r.scale.size() * 4, cudaMemcpyDeviceToHost), "copy scale");
  return r;
}

// "ok" or what differs: exact (bit for bit) or the fused ops' tolerance.
std::string compare(const Reference& want, const Reference& got, bool exact) {
  int64_t off_by_one = 0;
  for (size_t i = 0; i < want.scale.size(); ++i) {
    const float w = want.scale[i], g = got.scale[i];
    if (exact ? std::memcmp(&w, &g, 4) != 0 : !(std::fabs(w - g) <= 1e-5f * std::fabs(w)))
      return "scale of row " + std::to_string(i) + ": " + std::to_string(g) + " vs " + std::to_string(w);
  }
  for (size_t i = 0; i < want.q.size(); ++i) {
    const int d = std::abs(int(want.q[i]) - int(got.q[i]));
    if (d > (exact ? 0 : 1)) return "q[" + std::to_string(i) + "] differs by " + std::to_string(d);
    off_by_one += d;
  }
  if (off_by_one * 1000 > static_cast<int64_t>(want.q.size())) return "more than 0.1% of int8 values off by one";
  return "ok";
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t m = argc > 2 ? std::atoll(argv[1]) : 4096, k = argc > 2 ? std::atoll(argv[2]) : 3072;
  if (k % 8 != 0 || m < 1) {
    std::fprintf(stderr, "int8dit_quant_layout_probe: K = %lld must be a multiple of 8 and M >= 1\n", (long long)k);
    return 2;
  }
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  const size_t mk = static_cast<size_t>(m * k);
  const double bytes = 3.0 * mk + 4.0 * m;  // bf16 in, int8 + fp32 scale out
  Buffers b;
  b.sets = static_cast<int>(std::min(16.0, 256e6 / bytes + 1));
  for (int s = 0; s < b.sets; ++s) {
    void *x, *q, *sc;
    check_cuda(cudaMalloc(&x, mk * 2), "cudaMalloc"), check_cuda(cudaMalloc(&q, mk), "cudaMalloc");
    check_cuda(cudaMalloc(&sc, 4 * m), "cudaMalloc");
    bench_quant::fill_bf16(static_cast<uint16_t*>(x), mk, 99u + s);
    b.x.push_back(static_cast<T*>(x)), b.q.push_back(static_cast<int8_t*>(q)), b.scale.push_back(static_cast<float*>(sc));
  }
  T* mod = nullptr;
  check_cuda(cudaMalloc(&mod, 4 * k), "cudaMalloc");
  bench_quant::fill_bf16(reinterpret_cast<uint16_t*>(mod), 2 * k, 5u);
  const double copy_gbps = bench_quant::copy_bandwidth_gbps(size_t(1) << 30);
  std::printf("# %s, %d SMs; M = %lld, K = %lld; bytes a call %.1f MB; copy bandwidth (1 GiB) %.0f GB/s\n", prop.name,
              prop.multiProcessorCount, (long long)m, (long long)k, bytes / 1e6, copy_gbps);
  std::printf("%-44s %9s %9s %8s %5s  %s\n", "kernel", "us", "GB/s", "of copy", "regs", "check");

  auto report = [&](const std::string& name, const std::function<void(int)>& launch, int regs, const std::string& check) {
    const double us = bench_quant::median_us(launch, 15, 20, 10);
    std::printf("%-44s %9.2f %9.0f %8.3f %5d  %s\n", name.c_str(), us, bytes / us * 1e-3, bytes / us * 1e-3 / copy_gbps, regs,
                check.c_str());
    std::fflush(stdout);
  };

  // Ceilings.
  report("memcpy (same bytes: half read, half written)",
         [&](int c) { check_cuda(cudaMemcpyAsync(b.x[c % b.sets], b.x[(c + 1) % b.sets], size_t(bytes / 2), cudaMemcpyDeviceToDevice), "memcpy"); },
         0, "-");
  for (int threads : {256, 512}) {
    cudaFuncAttributes fa{};
    cudaFuncGetAttributes(&fa, cast_kernel);
    int per_sm = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, cast_kernel, threads, 0);
    const int grid = per_sm * prop.multiProcessorCount;
    report("cast bf16->int8, no reduction, " + std::to_string(threads) + " thr",
           [&](int c) {
             cast_kernel<<<grid, threads>>>(reinterpret_cast<const uint4*>(b.x[c % b.sets]), reinterpret_cast<uint2*>(b.q[c % b.sets]),
                                            int64_t(mk / 8), 0.5f);
           },
           fa.numRegs, "-");
  }

  for (const bool layernorm : {false, true}) {
    const char* op_name = layernorm ? "layernorm_modulate_quantize" : "quantize_rows";
    auto library = [&](int c) {
      const int s = c % b.sets;
      int8dit::Status st;
      if (layernorm) {
        int8dit::LayerNormModulateQuantizeParams p;
        p.rows = m, p.cols = k, p.x = b.x[s], p.ldx = k, p.eps = 1e-6f, p.tokens_per_batch = m;
        p.mod_shift = mod, p.mod_scale = mod + k, p.ld_mod = 2 * k;
        p.q = b.q[s], p.ldq = k, p.scale = b.scale[s];
        st = int8dit::layernorm_modulate_quantize(p, nullptr);
      } else {
        int8dit::QuantizeRowsParams p;
        p.rows = m, p.cols = k, p.x = b.x[s], p.ldx = k, p.q = b.q[s], p.ldq = k, p.scale = b.scale[s];
        st = int8dit::quantize_rows(p, nullptr);
      }
      if (!st.ok()) {
        std::fprintf(stderr, "%s: %s\n", op_name, st.to_string().c_str());
        std::exit(1);
      }
    };
    library(0);
    const Reference want = read_back(b, 0, m, k);
    report(std::string("library ") + op_name, library, 0, "reference");

    RowArgs<T> args;
    args.rows = m, args.cols = k, args.ldx = k, args.ldq = k;
    int8dit::quant::LayerNormModulateOp<T> ln;
    ln.shift = mod, ln.mod_scale = mod + k, ln.ld_mod = 2 * k, ln.tokens_per_batch = m, ln.eps = 1e-6f;
    ln.inv_cols = 1.0f / float(k);

    auto candidate = [&](auto kernel, auto op, int vecs, bool persistent, const char* hold = "") {
      const int threads = static_cast<int>(k / 8 / vecs);
      if ((k / 8) % vecs != 0 || threads % 32 != 0 || threads > 256) return;  // the layout does not fit this K
      cudaFuncAttributes fa{};
      check_cuda(cudaFuncGetAttributes(&fa, kernel), "cudaFuncGetAttributes");
      int per_sm = 0;
      check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0), "occupancy");
      const int grid = persistent ? static_cast<int>(std::min<int64_t>(m, int64_t(per_sm) * prop.multiProcessorCount)) : static_cast<int>(m);
      auto launch = [&, kernel, op, threads, grid](int c) {
        RowArgs<T> a = args;
        a.x = b.x[c % b.sets], a.q = b.q[c % b.sets], a.scale = b.scale[c % b.sets];
        kernel<<<grid, threads>>>(a, op);
      };
      check_cuda(cudaMemset(b.q[0], 0x55, mk), "poison");
      launch(0);
      check_cuda(cudaGetLastError(), "launch");
      const std::string check = compare(want, read_back(b, 0, m, k), !layernorm);
      report(std::string(op_name) + " direct" + hold + " " + std::to_string(threads) + "x" + std::to_string(vecs) +
                 (persistent ? " persistent " + std::to_string(per_sm) + "/SM" : " grid=rows " + std::to_string(per_sm) + "/SM"),
             launch, fa.numRegs, check);
    };
    auto both = [&](auto op) {
      using Op = decltype(op);
      candidate(direct_rows<Op, 4, false>, op, 4, false);
      candidate(direct_rows<Op, 4, true>, op, 4, true);
      candidate(direct_rows<Op, 2, false>, op, 2, false);
      candidate(direct_rows<Op, 2, true>, op, 2, true);
      candidate(direct_rows<Op, 3, false>, op, 3, false);
      candidate(direct_rows<Op, 6, false>, op, 6, false);
      candidate(direct_rows<Op, 6, true>, op, 6, true);
      candidate(direct_rows<Op, 12, false>, op, 12, false);
      candidate(direct_rows<Op, 12, true>, op, 12, true);
      candidate(direct_rows_raw<Op, 4>, op, 4, false, " raw");
      candidate(direct_rows_raw<Op, 6>, op, 6, false, " raw");
      candidate(direct_rows_raw<Op, 12>, op, 12, false, " raw");
    };
    if (layernorm) {
      both(ln);
    } else {
      both(int8dit::quant::IdentityOp{});
    }
  }
  return 0;
}
