// int8dit_quant_layout_probe: how far a row-quantization kernel's layout (who holds a row, how
// loads overlap the per-row reductions) moves it against the copy bandwidth at one shape, before a
// layout goes into src/quant. Times, in one process on one GPU:
//   - the ceilings at this size: cudaMemcpyAsync of the same bytes, and a cast kernel (bf16 -> int8
//     at a fixed scale: the same reads and writes with no per-row reduction);
//   - the library's kernels (the public entry points);
//   - the library's register-row kernel (row_kernels.cuh) in other layouts than its launcher picks,
//     checked against the library's output (quantize_rows bit for bit; the fused ops: scales within
//     1e-5 relative, int8 within 1 on at most 0.1% of the values).
//
//   int8dit_quant_layout_probe [M K [BATCHES [OPS]]]   (default 4096 3072 1, every op; a candidate runs
//                                                      where its layout fits K)
// OPS: a comma-separated list of the ops below (quantize_rows,quantize_rows+smooth,...) to time only those.
// Candidates launch in plain stream order, except those labelled "PDL": launched as the library
// launches its row kernels on Hopper (programmatic stream serialization, row_launch.cuh), so that
// the back-to-back calls of a timed batch overlap their starts as the library's do.
// INT8DIT_PROBE_SET=grouped: only the library and the grouped kernel's layouts (row_grouped.cuh) of the
// fused norms (LayerNorm's where BATCHES is 1) and of quantize_rows with a divisor (SmoothDivisionOp).
// layernorm_modulate_quantize+residual (the gated residual update ahead of the norm: x_out = x + gate *
// update, gate one vector) is timed in the grouped layouts only, in either set, and only where BATCHES
// is 1; its bytes a call are x, update and x_out besides q and the scales.
// BATCHES: LayerNorm's adaLN batch elements (M / BATCHES rows share one shift and scale); with more
// than one, the cached LayerNorm layouts run twice: rows strided over the grid, then each CTA a
// contiguous block (WithRowBlocks: what the library launches for such calls).
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
#include "quant/row_bulk_ring.cuh"
#include "quant/row_grouped.cuh"
#include "quant/row_kernels.cuh"
#include "quant/row_ops.cuh"
#include "quant/row_path.h"
#include "timing.h"

namespace {

using bench_quant::check_cuda;
using int8dit::quant::kVecElems;
using int8dit::quant::RowArgs;
using T = __nv_bfloat16;

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
      int8dit::quant::unpack8<T>(raw[j], v);
      int8dit::quant::store8_int8_fast<true>(reinterpret_cast<int8_t*>(q + base + j * blockDim.x), v, inv);
    }
  }
}

struct Buffers {
  std::vector<T*> x;
  std::vector<int8_t*> q;
  std::vector<float*> scale;
  // The gated residual LayerNorm's update and new residual a set (allocated when that op is probed).
  std::vector<T*> update, x_out;
  int sets = 0;
};

// The op as it runs on buffer set `set`: the gated residual LayerNorm reads and writes rows of its own
// besides x, q and scale, which rotate with them; every other op's pointers are the set's RowArgs.
template <typename Op>
Op for_set(Op op, const Buffers&, int) {
  return op;
}
template <typename Tin>
int8dit::quant::GatedResidualLayerNormModulateOp<Tin> for_set(int8dit::quant::GatedResidualLayerNormModulateOp<Tin> op,
                                                              const Buffers& b, int set) {
  op.update = b.update[set], op.x_out = b.x_out[set];
  return op;
}

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

// LayerNorm + modulation caching only 1 + scale as fp32 (2 float4 a vector, half the library op's
// cache: 48 KB for 256 threads x 6 vectors, where the full cache's 96 KB leaves one CTA an SM) and
// reading shift through L1: is the cache's gain at 12288 columns in the 1 + scale half? (No: 60.9 us
// capped against the full cache's 53.2, bench/results/h200/quant_layout_4096x12288_cache_capped.txt.)
// SmoothQuant's division as the grouped kernel does it (SmoothDivisionOp: divisors and reciprocals cached as fp32,
// no range test a value, the row max checked once) in the register kernel's cached form, which fills a thread's
// cache where begin_row says so: here at the thread's first row only (one divisor for every row). For the 12288-
// column rows, whose library kernel caches the reciprocals only and tests each row's range.
struct SmoothDivisionFilledOnceOp : int8dit::quant::SmoothDivisionOp {
  bool filled = false;
  __device__ bool begin_row(int64_t) {
    const bool fill = !filled;
    filled = true;
    return fill;
  }
};

template <typename Tin>
struct LayerNormScaleCachedOp : int8dit::quant::LayerNormModulateOp<Tin> {
  static constexpr int kChannelVec4s = 2;
  __device__ void fill8(int k, float4* dst, int stride) const {
    float sc[kVecElems];
    int8dit::quant::load8_cached(this->scale_row + k, sc);
    dst[0] = make_float4(1.0f + sc[0], 1.0f + sc[1], 1.0f + sc[2], 1.0f + sc[3]);
    dst[stride] = make_float4(1.0f + sc[4], 1.0f + sc[5], 1.0f + sc[6], 1.0f + sc[7]);
  }
  __device__ void apply8_cached(int k, float (&v)[kVecElems], const float4* src, int stride) const {
    float sh[kVecElems];
    int8dit::quant::load8_cached(this->shift_row + k, sh);
    const float4 s0 = src[0], s1 = src[stride];
    const float sc1[kVecElems] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = fmaf(fmaf(v[e], this->rstd, this->neg_mean_rstd), sc1[e], sh[e]);
  }
};

// The op as a persistent grid of `grid` CTAs runs it: an op wrapped in WithRowBlocks (row_kernels.cuh)
// gets its contiguous blocks of rows, as the library's launcher gives them; any other op strides.
template <typename Op>
Op for_grid(Op op, int64_t rows, int64_t grid) {
  if constexpr (int8dit::quant::TakesRowBlocks<Op>::value) op.row_blocks = int8dit::quant::contiguous_rows(rows, grid);
  return op;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t m = argc > 2 ? std::atoll(argv[1]) : 4096, k = argc > 2 ? std::atoll(argv[2]) : 3072;
  const int64_t batches = argc > 3 ? std::atoll(argv[3]) : 1;
  const std::string only_ops = argc > 4 ? argv[4] : "";  // comma-separated; empty: every op
  const char* probe_set_env = std::getenv("INT8DIT_PROBE_SET");
  const std::string probe_set = probe_set_env ? probe_set_env : "";
  if (!probe_set.empty() && probe_set != "grouped") {
    std::fprintf(stderr, "int8dit_quant_layout_probe: INT8DIT_PROBE_SET = '%s': the one set is 'grouped' (unset: every layout)\n",
                 probe_set.c_str());
    return 2;
  }
  if (k % 8 != 0 || m < 1) {
    std::fprintf(stderr, "int8dit_quant_layout_probe: K = %lld must be a multiple of 8 and M >= 1\n", (long long)k);
    return 2;
  }
  if (batches < 1 || m % batches != 0) {
    std::fprintf(stderr, "int8dit_quant_layout_probe: BATCHES = %lld must divide M = %lld\n", (long long)batches,
                 (long long)m);
    return 2;
  }
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  const size_t mk = static_cast<size_t>(m * k);
  const double base_bytes = 3.0 * mk + 4.0 * m;  // bf16 in, int8 + fp32 scale out
  double bytes = base_bytes;                      // the op's: more for the gated residual LayerNorm
  Buffers b;
  b.sets = static_cast<int>(std::min(16.0, 256e6 / base_bytes + 1));
  for (int s = 0; s < b.sets; ++s) {
    void *x, *q, *sc;
    check_cuda(cudaMalloc(&x, mk * 2), "cudaMalloc"), check_cuda(cudaMalloc(&q, mk), "cudaMalloc");
    check_cuda(cudaMalloc(&sc, 4 * m), "cudaMalloc");
    bench_quant::fill_bf16(static_cast<uint16_t*>(x), mk, 99u + s);
    b.x.push_back(static_cast<T*>(x)), b.q.push_back(static_cast<int8_t*>(q)), b.scale.push_back(static_cast<float*>(sc));
  }
  const std::string kResidualOp = "layernorm_modulate_quantize+residual";
  const bool wants_residual = only_ops.empty() || ("," + only_ops + ",").find("," + kResidualOp + ",") != std::string::npos;
  for (int s = 0; wants_residual && s < b.sets; ++s) {
    void *update, *x_out;
    check_cuda(cudaMalloc(&update, mk * 2), "cudaMalloc"), check_cuda(cudaMalloc(&x_out, mk * 2), "cudaMalloc");
    bench_quant::fill_bf16(static_cast<uint16_t*>(update), mk, 199u + s);
    b.update.push_back(static_cast<T*>(update)), b.x_out.push_back(static_cast<T*>(x_out));
  }
  T* gate = nullptr;  // [batches, K]: the residual update's gate
  check_cuda(cudaMalloc(&gate, 2 * k * batches), "cudaMalloc");
  bench_quant::fill_bf16(reinterpret_cast<uint16_t*>(gate), k * batches, 11u);
  T* mod = nullptr;  // [batches, 2K]: shift | scale of each batch element (RMSNorm's weight: the first K)
  check_cuda(cudaMalloc(&mod, 4 * k * batches), "cudaMalloc");
  bench_quant::fill_bf16(reinterpret_cast<uint16_t*>(mod), 2 * k * batches, 5u);
  const double copy_gbps = bench_quant::copy_bandwidth_gbps(size_t(1) << 30);
  std::printf("# %s, %d SMs; M = %lld, K = %lld, %lld LayerNorm batch element(s); bytes a call %.1f MB; copy bandwidth "
              "(1 GiB) %.0f GB/s\n",
              prop.name, prop.multiProcessorCount, (long long)m, (long long)k, (long long)batches, bytes / 1e6, copy_gbps);
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
  for (int threads : {128, 256}) {
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

  // The library's entry points, then its register-row kernel in other layouts (vectors a thread,
  // persistent or one CTA a row, channel cache) on the same inputs.
  float* smooth = nullptr;
  check_cuda(cudaMalloc(&smooth, 4 * k), "cudaMalloc");
  bench_quant::fill_f32(smooth, static_cast<size_t>(k), 0.5f, 2.0f, 7u);
  const std::vector<std::string> ops = {"quantize_rows", "quantize_rows+smooth", "layernorm_modulate_quantize",
                                        "rmsnorm_quantize", "gelu_quantize", kResidualOp};
  for (const std::string& op_name : ops) {
    if (!only_ops.empty() && ("," + only_ops + ",").find("," + op_name + ",") == std::string::npos) continue;
    if (op_name == kResidualOp && batches != 1) continue;  // its grouped layouts take one batch element
    bytes = op_name == kResidualOp ? 7.0 * mk + 4.0 * m : base_bytes;
    const bool exact = op_name.rfind("quantize_rows", 0) == 0;
    const float* smooth_vec = op_name == "quantize_rows+smooth" ? smooth : nullptr;
    auto library = [&](int c) {
      const int s = c % b.sets;
      int8dit::Status st;
      if (op_name == "layernorm_modulate_quantize" || op_name == kResidualOp) {
        int8dit::LayerNormModulateQuantizeParams p;
        p.rows = m, p.cols = k, p.x = b.x[s], p.ldx = k, p.eps = 1e-6f, p.tokens_per_batch = m / batches;
        p.mod_shift = mod, p.mod_scale = mod + k, p.ld_mod = 2 * k;
        p.q = b.q[s], p.ldq = k, p.scale = b.scale[s];
        if (op_name == kResidualOp) {
          p.update = b.update[s], p.ld_update = k, p.gate = gate, p.ld_gate = k, p.x_out = b.x_out[s], p.ld_x_out = k;
        }
        st = int8dit::layernorm_modulate_quantize(p, nullptr);
      } else if (op_name == "rmsnorm_quantize") {
        int8dit::RmsNormQuantizeParams p;
        p.rows = m, p.cols = k, p.x = b.x[s], p.ldx = k, p.eps = 1e-6f, p.weight = mod;
        p.q = b.q[s], p.ldq = k, p.scale = b.scale[s];
        st = int8dit::rmsnorm_quantize(p, nullptr);
      } else if (op_name == "gelu_quantize") {
        int8dit::GeluQuantizeParams p;
        p.rows = m, p.cols = k, p.x = b.x[s], p.ldx = k, p.q = b.q[s], p.ldq = k, p.scale = b.scale[s];
        st = int8dit::gelu_quantize(p, nullptr);
      } else {
        int8dit::QuantizeRowsParams p;
        p.rows = m, p.cols = k, p.x = b.x[s], p.ldx = k, p.q = b.q[s], p.ldq = k, p.scale = b.scale[s];
        p.smooth = smooth_vec;
        st = int8dit::quantize_rows(p, nullptr);
      }
      if (!st.ok()) {
        std::fprintf(stderr, "%s: %s\n", op_name.c_str(), st.to_string().c_str());
        std::exit(1);
      }
    };
    check_cuda(cudaMemset(b.q[0], 0x55, mk), "poison");
    library(0);
    const Reference want = read_back(b, 0, m, k);
    report("library " + op_name, library, 0, "reference");

    RowArgs<T> args;
    args.rows = m, args.cols = k, args.ldx = k, args.ldq = k, args.smooth = smooth_vec;

    // Times one kernel in one layout (vecs vectors a thread, threads = the fewest whole warps; a
    // persistent grid of as many CTAs as fit, else one CTA a row) and checks it against the library.
    // `extra`: the kernel's arguments after (RowArgs, op).
    // max_threads: the kernel's launch bounds (kMaxRowThreads; kWideRowThreads for the wide ones,
    // which are timed only where the layout needs more than kMaxRowThreads).
    // carveout: -1 leaves the kernel's shared-memory carveout to the driver (which picks the one that
    // fits the most CTAs); a percentage asks for that share of the SM's shared memory, leaving the rest
    // to L1 (and fitting fewer CTAs). The kernel's own setting is put back after the timing: the library
    // launches the same kernels, and sets it for its cached ones (row_path.h: kKeptL1CarveoutKb).
    int carveout = -1;
    bool programmatic = false;  // launch with programmatic stream serialization, as the library does on Hopper
    // One call of a kernel (RowArgs, op, extra...) on buffer set c % sets, as `programmatic` says.
    auto launch_on_set = [&](int c, auto kernel, int grid, int threads, size_t smem, auto op, auto... extra) {
      RowArgs<T> a = args;
      a.x = b.x[c % b.sets], a.q = b.q[c % b.sets], a.scale = b.scale[c % b.sets];
      const auto set_op = for_set(op, b, c % b.sets);
      if (!programmatic) {
        kernel<<<grid, threads, smem>>>(a, set_op, extra...);
        return;
      }
      cudaLaunchConfig_t config{};
      config.gridDim = dim3(static_cast<unsigned>(grid));
      config.blockDim = dim3(static_cast<unsigned>(threads));
      config.dynamicSmemBytes = smem;
      cudaLaunchAttribute attr{};
      attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr.val.programmaticStreamSerializationAllowed = 1;
      config.attrs = &attr;
      config.numAttrs = 1;
      check_cuda(cudaLaunchKernelEx(&config, kernel, a, set_op, extra...), "programmatic launch");
    };
    auto time_layout_up_to = [&](int max_threads, auto kernel, auto op, int vecs, bool persistent, size_t smem_per_thread,
                                 const std::string& label, auto... extra) {
      const int64_t nvec = k / 8;
      const int threads = static_cast<int>((nvec + vecs - 1) / vecs + 31) / 32 * 32;
      if (threads > max_threads || static_cast<int64_t>(threads - 32) * vecs >= nvec) return;  // the layout does not fit this K
      if (max_threads > int8dit::quant::kMaxRowThreads && threads <= int8dit::quant::kMaxRowThreads) return;
      // The kernel tests only the trailing slots for presence (row_shape.h's full_vector_slots).
      if (static_cast<int64_t>(threads) * int8dit::quant::full_vector_slots(vecs) > nvec) return;
      cudaFuncAttributes fa{};
      check_cuda(cudaFuncGetAttributes(&fa, kernel), "cudaFuncGetAttributes");
      const size_t smem = smem_per_thread * threads;
      check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)), "smem opt-in");
      const int library_carveout = fa.preferredShmemCarveout;
      check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, carveout), "carveout");
      int per_sm = 0;
      check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem), "occupancy");
      const int grid = persistent ? static_cast<int>(std::min<int64_t>(m, int64_t(per_sm) * prop.multiProcessorCount)) : static_cast<int>(m);
      const auto rows_op = for_grid(op, m, grid);
      constexpr bool kContiguous = int8dit::quant::TakesRowBlocks<decltype(op)>::value;
      auto launch = [&, kernel, rows_op, threads, grid, smem, extra...](int c) {
        launch_on_set(c, kernel, grid, threads, smem, rows_op, extra...);
      };
      check_cuda(cudaMemset(b.q[0], 0x55, mk), "poison");
      launch(0);
      check_cuda(cudaGetLastError(), "launch");
      const std::string check = compare(want, read_back(b, 0, m, k), exact);
      report(op_name + " " + std::to_string(threads) + "x" + std::to_string(vecs) + " " + label + " " +
                 std::to_string(per_sm) + "/SM" + (carveout >= 0 ? " carveout " + std::to_string(carveout) + "%" : "") +
                 (kContiguous ? " contiguous rows" : "") + (programmatic ? " PDL" : ""),
             launch, fa.numRegs, check);
      check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, library_carveout),
                 "carveout reset");
    };
    auto time_layout = [&](auto kernel, auto op, int vecs, bool persistent, size_t smem_per_thread,
                           const std::string& label, auto... extra) {
      time_layout_up_to(int8dit::quant::kMaxRowThreads, kernel, op, vecs, persistent, smem_per_thread, label, extra...);
    };
    // One layout of the library's register-row kernel.
    auto candidate = [&](auto kernel, auto op, int vecs, bool persistent, size_t smem_per_thread, bool recips = false) {
      time_layout(kernel, op, vecs, persistent, smem_per_thread,
                  persistent ? (recips ? "persistent+reciprocals" : smem_per_thread ? "persistent+cache" : "persistent")
                             : "one CTA a row");
    };
    // The sm_90 bulk-copy ring (row_bulk_ring.cuh) at 6 vectors a thread: its stage count, with or
    // without the op's channel cache, and with registers capped for 3 CTAs of 256 threads an SM.
    auto ring_candidate = [&](auto kernel, auto op, size_t smem_per_thread, int stages, const std::string& what) {
      time_layout(kernel, op, 6, true, smem_per_thread, "ring" + std::to_string(stages) + (what.empty() ? "" : " " + what),
                  stages);
    };
    auto rings = [&](auto op) {
      using Op = decltype(op);
      using int8dit::quant::ring_smem_bytes_per_thread;
      using int8dit::quant::row_quantize_bulk_ring;
      constexpr bool kCaches = Op::kChannelVec4s > 0;
      if (args.smooth) {
        for (const int stages : {2, 3}) {
          ring_candidate(row_quantize_bulk_ring<T, Op, 6, false, true>, op,
                         ring_smem_bytes_per_thread<Op, 6, false, true>(stages), stages, "+reciprocals");
          ring_candidate(row_quantize_bulk_ring<T, Op, 6, false, true, 3>, op,
                         ring_smem_bytes_per_thread<Op, 6, false, true>(stages), stages, "+reciprocals <=85 regs");
        }
        return;
      }
      for (const int stages : {2, 3}) {
        ring_candidate(row_quantize_bulk_ring<T, Op, 6, false, false>, op,
                       ring_smem_bytes_per_thread<Op, 6, false, false>(stages), stages, "");
        ring_candidate(row_quantize_bulk_ring<T, Op, 6, false, false, 3>, op,
                       ring_smem_bytes_per_thread<Op, 6, false, false>(stages), stages, "<=85 regs");
        if constexpr (kCaches) {
          ring_candidate(row_quantize_bulk_ring<T, Op, 6, true, false>, op,
                         ring_smem_bytes_per_thread<Op, 6, true, false>(stages), stages, "+cache");
          ring_candidate(row_quantize_bulk_ring<T, Op, 6, true, false, 3>, op,
                         ring_smem_bytes_per_thread<Op, 6, true, false>(stages), stages, "+cache <=85 regs");
        }
      }
    };
    // The wide kernels (up to kWideRowThreads threads, 128 registers a thread) where a row needs more
    // than kMaxRowThreads threads at 3, 4 or 6 vectors a thread: twice the warps an SM on long rows.
    auto wide = [&](auto op) {
      using Op = decltype(op);
      using int8dit::quant::row_quantize_bulk_ring;
      using int8dit::quant::row_quantize_registers;
      using int8dit::quant::ring_smem_bytes_per_thread;
      using int8dit::quant::smooth_reciprocal_bytes_per_thread;
      constexpr int kWide = int8dit::quant::kWideRowThreads;
      constexpr bool kCaches = Op::kChannelVec4s > 0;
      auto reg = [&](auto kernel, int vecs, size_t smem, const std::string& label) {
        time_layout_up_to(kWide, kernel, op, vecs, true, smem, "wide " + label);
      };
      auto ring = [&](auto kernel, int vecs, size_t smem, const std::string& label) {
        time_layout_up_to(kWide, kernel, op, vecs, true, smem, "wide ring2 " + label, 2);
      };
      reg(row_quantize_registers<T, Op, 3, true, false, false, 0, kWide>, 3, 0, "persistent");
      reg(row_quantize_registers<T, Op, 4, true, false, false, 0, kWide>, 4, 0, "persistent");
      reg(row_quantize_registers<T, Op, 6, true, false, false, 0, kWide>, 6, 0, "persistent");
      ring(row_quantize_bulk_ring<T, Op, 4, false, false, 0, kWide>, 4, ring_smem_bytes_per_thread<Op, 4, false, false>(2), "");
      if (args.smooth) {
        reg(row_quantize_registers<T, Op, 4, true, false, true, 0, kWide>, 4, smooth_reciprocal_bytes_per_thread(4),
            "persistent+reciprocals");
        reg(row_quantize_registers<T, Op, 6, true, false, true, 0, kWide>, 6, smooth_reciprocal_bytes_per_thread(6),
            "persistent+reciprocals");
        ring(row_quantize_bulk_ring<T, Op, 4, false, true, 0, kWide>, 4, ring_smem_bytes_per_thread<Op, 4, false, true>(2),
             "+reciprocals");
      }
      if constexpr (kCaches) {
        reg(row_quantize_registers<T, Op, 4, true, true, false, 0, kWide>, 4, 64 * Op::kChannelVec4s, "persistent+cache");
        reg(row_quantize_registers<T, Op, 6, true, true, false, 0, kWide>, 6, 96 * Op::kChannelVec4s, "persistent+cache");
        ring(row_quantize_bulk_ring<T, Op, 4, true, false, 0, kWide>, 4, ring_smem_bytes_per_thread<Op, 4, true, false>(2),
             "+cache");
      }
    };
    auto layouts = [&](auto op) {
      wide(op);
      rings(op);
      using Op = decltype(op);
      using int8dit::quant::row_quantize_registers;
      constexpr bool kCaches = Op::kChannelVec4s > 0;
      using int8dit::quant::smooth_reciprocal_bytes_per_thread;
      // One warp a row (12 vectors a lane: 3072 columns in 32 threads, 12288 in 128): the row's
      // reductions are shuffles with no CTA barrier, and each SM holds as many rows as warps fit.
      candidate(row_quantize_registers<T, Op, 12, false, false>, op, 12, false, 0);
      candidate(row_quantize_registers<T, Op, 12, true, false>, op, 12, true, 0);
      if (kCaches) candidate(row_quantize_registers<T, Op, 12, true, kCaches>, op, 12, true, 192 * Op::kChannelVec4s);
      // More threads a row, fewer registers a thread: more warps an SM to hide the row's latency.
      candidate(row_quantize_registers<T, Op, 3, false, false>, op, 3, false, 0);
      candidate(row_quantize_registers<T, Op, 3, true, false>, op, 3, true, 0);
      if (kCaches) candidate(row_quantize_registers<T, Op, 3, true, kCaches>, op, 3, true, 48 * Op::kChannelVec4s);
      for (const int vecs : {4, 6}) {
        if (args.smooth) {  // SmoothQuant's persistent kernel: the divisors' reciprocals in shared memory
          if (vecs == 4) candidate(row_quantize_registers<T, Op, 4, true, false, true>, op, 4, true, smooth_reciprocal_bytes_per_thread(4), true);
          if (vecs == 6) candidate(row_quantize_registers<T, Op, 6, true, false, true>, op, 6, true, smooth_reciprocal_bytes_per_thread(6), true);
        }
        if (vecs == 4) {
          candidate(row_quantize_registers<T, Op, 4, false, false>, op, 4, false, 0);
          candidate(row_quantize_registers<T, Op, 4, true, false>, op, 4, true, 0);
          if (kCaches) candidate(row_quantize_registers<T, Op, 4, true, kCaches>, op, 4, true, 64 * Op::kChannelVec4s);
        } else {
          candidate(row_quantize_registers<T, Op, 6, false, false>, op, 6, false, 0);
          candidate(row_quantize_registers<T, Op, 6, true, false>, op, 6, true, 0);
          if (kCaches) candidate(row_quantize_registers<T, Op, 6, true, kCaches>, op, 6, true, 96 * Op::kChannelVec4s);
        }
      }
    };
    // The register-row layouts again, launched programmatically as the library launches them (its own
    // layout among them, as a check of the probe against the library's figure): the fixed cost a call
    // pays at its start and end (the first row's load, the last row's reductions) is where the layouts
    // differ at 3072 columns, and the overlap of calls moves it.
    auto programmatic_layouts = [&](auto op) {
      using Op = decltype(op);
      using int8dit::quant::row_quantize_registers;
      using int8dit::quant::smooth_reciprocal_bytes_per_thread;
      constexpr bool kCaches = Op::kChannelVec4s > 0;
      programmatic = true;
      candidate(row_quantize_registers<T, Op, 2, false, false>, op, 2, false, 0);
      candidate(row_quantize_registers<T, Op, 3, false, false>, op, 3, false, 0);
      candidate(row_quantize_registers<T, Op, 4, false, false>, op, 4, false, 0);
      candidate(row_quantize_registers<T, Op, 6, false, false>, op, 6, false, 0);
      candidate(row_quantize_registers<T, Op, 2, true, false>, op, 2, true, 0);
      candidate(row_quantize_registers<T, Op, 3, true, false>, op, 3, true, 0);
      candidate(row_quantize_registers<T, Op, 4, true, false>, op, 4, true, 0);
      if (args.smooth) {
        // The wide kernel with the reciprocals, launched as the library launches it at 15360 columns.
        constexpr int kWide = int8dit::quant::kWideRowThreads;
        time_layout_up_to(kWide, row_quantize_registers<T, Op, 4, true, false, true, 0, kWide>, op, 4, true,
                          smooth_reciprocal_bytes_per_thread(4), "wide persistent+reciprocals");
        time_layout_up_to(kWide, row_quantize_registers<T, Op, 6, true, false, true, 0, kWide>, op, 6, true,
                          smooth_reciprocal_bytes_per_thread(6), "wide persistent+reciprocals");
        candidate(row_quantize_registers<T, Op, 2, true, false, true>, op, 2, true, smooth_reciprocal_bytes_per_thread(2), true);
        candidate(row_quantize_registers<T, Op, 3, true, false, true>, op, 3, true, smooth_reciprocal_bytes_per_thread(3), true);
        candidate(row_quantize_registers<T, Op, 4, true, false, true>, op, 4, true, smooth_reciprocal_bytes_per_thread(4), true);
        candidate(row_quantize_registers<T, Op, 6, true, false, true>, op, 6, true, smooth_reciprocal_bytes_per_thread(6), true);
      }
      if constexpr (kCaches) {
        carveout = int8dit::quant::kept_l1_carveout_percent();
        candidate(row_quantize_registers<T, Op, 2, true, true>, op, 2, true, 32 * Op::kChannelVec4s);
        candidate(row_quantize_registers<T, Op, 3, true, true>, op, 3, true, 48 * Op::kChannelVec4s);
        candidate(row_quantize_registers<T, Op, 4, true, true>, op, 4, true, 64 * Op::kChannelVec4s);
        candidate(row_quantize_registers<T, Op, 6, true, true>, op, 6, true, 96 * Op::kChannelVec4s);
        carveout = -1;
      }
      programmatic = false;
    };
    // The grouped kernel (row_grouped.cuh): `groups` rows a CTA, each in its own group of group_threads
    // threads, the groups sharing one copy of the op's channel values; launched programmatically, as the
    // library launches its row kernels on Hopper, on the carveout the driver picks.
    // balanced: as few CTAs as keep the rounds of rows (rows a group) what the full grid needs, so that
    // every group takes the same number of rows and the last round is not a partial one.
    // stage_bytes: row_quantize_grouped's kStaged form (the next row in shared memory, not registers)
    // takes this much shared memory after the channel cache (row_grouped.cuh: grouped_stage_bytes); 0:
    // the library's form.
    auto time_grouped = [&](auto kernel, auto op, int group_threads, int groups, int vecs, bool balanced = false,
                            size_t stage_bytes = 0) {
      const bool staged = stage_bytes > 0;
      using Op = decltype(op);
      const int64_t nvec = k / 8;
      if (static_cast<int64_t>(group_threads) * vecs < nvec || static_cast<int64_t>(group_threads - 32) * vecs >= nvec ||
          static_cast<int64_t>(group_threads) * int8dit::quant::full_vector_slots(vecs) > nvec)
        return;  // the layout does not fit this K
      const int threads = group_threads * groups;
      const size_t smem = sizeof(float4) * vecs * Op::kChannelVec4s * group_threads + stage_bytes;
      cudaFuncAttributes fa{};
      check_cuda(cudaFuncGetAttributes(&fa, kernel), "cudaFuncGetAttributes");
      check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)), "smem opt-in");
      int per_sm = 0;
      check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem), "occupancy");
      const std::string name = op_name + " " + std::to_string(group_threads) + "x" + std::to_string(vecs) + " grouped x" +
                               std::to_string(groups) + (staged ? " staged" : "") + " " + std::to_string(per_sm) + "/SM" +
                               (balanced ? " balanced" : "") + " PDL";
      if (per_sm == 0) {
        std::printf("%-44s  does not fit an SM (%d registers)\n", name.c_str(), fa.numRegs);
        return;
      }
      int grid = static_cast<int>(std::min<int64_t>((m + groups - 1) / groups, int64_t(per_sm) * prop.multiProcessorCount));
      if (balanced) {
        const int64_t rounds = (m + int64_t(grid) * groups - 1) / (int64_t(grid) * groups);
        grid = static_cast<int>((m + rounds * groups - 1) / (rounds * groups));
      }
      programmatic = true;
      const int8dit::quant::GroupedRows parts{m, grid};  // one part: every row shares the channel values
      auto launch = [&, kernel, op, threads, grid, smem, parts](int c) { launch_on_set(c, kernel, grid, threads, smem, op, parts); };
      check_cuda(cudaMemset(b.q[0], 0x55, mk), "poison");
      launch(0);
      check_cuda(cudaGetLastError(), "launch");
      const std::string check = compare(want, read_back(b, 0, m, k), exact);
      report(name, launch, fa.numRegs, check);
      programmatic = false;
    };
    auto grouped_layouts = [&](auto op) {
      using Op = decltype(op);
      using int8dit::quant::row_quantize_grouped;
      // 3072 columns: the register kernel's 64 x 6, 96 x 4 and 128 x 3 rows, as many groups as the
      // registers let one or two CTAs an SM hold.
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 4>, op, 64, 4, 6);
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 4>, op, 64, 4, 6, /*balanced=*/true);
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 6>, op, 64, 6, 6);
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 8>, op, 64, 8, 6);
      time_grouped(row_quantize_grouped<T, Op, 4, 96, 4>, op, 96, 4, 4);
      time_grouped(row_quantize_grouped<T, Op, 4, 96, 7>, op, 96, 7, 4);
      time_grouped(row_quantize_grouped<T, Op, 3, 128, 4>, op, 128, 4, 3);
      time_grouped(row_quantize_grouped<T, Op, 3, 128, 7>, op, 128, 7, 3);
      time_grouped(row_quantize_grouped<T, Op, 3, 128, 7>, op, 128, 7, 3, /*balanced=*/true);
      // 1536 columns: one-warp rows (no barrier at all), and two-warp rows of 3 or 4 vectors.
      time_grouped(row_quantize_grouped<T, Op, 6, 32, 8>, op, 32, 8, 6);
      time_grouped(row_quantize_grouped<T, Op, 6, 32, 8>, op, 32, 8, 6, /*balanced=*/true);
      time_grouped(row_quantize_grouped<T, Op, 6, 32, 16>, op, 32, 16, 6);
      time_grouped(row_quantize_grouped<T, Op, 3, 64, 8>, op, 64, 8, 3);
      time_grouped(row_quantize_grouped<T, Op, 4, 64, 6>, op, 64, 6, 4);
      // The next row staged in shared memory (kStaged): 4 x 6 registers a thread fewer, for 5 groups
      // of 64 x 6 in each of two CTAs an SM (20 warps, where the library's 64 x 6 x 4 holds 16), or 10
      // in one; 32 x 6 for 1536 columns.
      using int8dit::quant::grouped_stage_bytes;
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 4, true>, op, 64, 4, 6, true, grouped_stage_bytes<Op, 6, 64, 4>());
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 5, true>, op, 64, 5, 6, false, grouped_stage_bytes<Op, 6, 64, 5>());
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 5, true>, op, 64, 5, 6, true, grouped_stage_bytes<Op, 6, 64, 5>());
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 10, true>, op, 64, 10, 6, true, grouped_stage_bytes<Op, 6, 64, 10>());
      time_grouped(row_quantize_grouped<T, Op, 6, 32, 10, true>, op, 32, 10, 6, true, grouped_stage_bytes<Op, 6, 32, 10>());
    };
    // The gated residual LayerNorm: the library's layouts (one CTA an SM of 6 groups of 64 x 6, or 12 of
    // 32 x 6; row_shape.h: kGroupedTransformCtaThreads), and with both of its inputs staged (2 x 4 x 6
    // registers a thread fewer) in 7 or 8 groups of 64, 16 of 32.
    auto residual_grouped_layouts = [&](auto op) {
      using Op = decltype(op);
      using int8dit::quant::grouped_stage_bytes;
      using int8dit::quant::row_quantize_grouped;
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 6>, op, 64, 6, 6);
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 6>, op, 64, 6, 6, /*balanced=*/true);
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 6, true>, op, 64, 6, 6, true, grouped_stage_bytes<Op, 6, 64, 6>());
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 7, true>, op, 64, 7, 6, true, grouped_stage_bytes<Op, 6, 64, 7>());
      time_grouped(row_quantize_grouped<T, Op, 6, 64, 8, true>, op, 64, 8, 6, true, grouped_stage_bytes<Op, 6, 64, 8>());
      time_grouped(row_quantize_grouped<T, Op, 6, 32, 12>, op, 32, 12, 6, true);
      time_grouped(row_quantize_grouped<T, Op, 6, 32, 16, true>, op, 32, 16, 6, true, grouped_stage_bytes<Op, 6, 32, 16>());
    };
    // INT8DIT_PROBE_SET=grouped: the library and the grouped layouts only (the fused norms with one
    // batch element), for sweeps over M.
    const bool grouped_only = probe_set == "grouped";
    if (op_name == kResidualOp) {
      int8dit::quant::GatedResidualLayerNormModulateOp<T> gated;
      gated.shift = mod, gated.mod_scale = mod + k, gated.ld_mod = 2 * k, gated.tokens_per_batch = m, gated.eps = 1e-6f;
      gated.inv_cols = 1.0f / float(k);
      gated.ld_update = k, gated.gate = gate, gated.ld_gate = k, gated.ld_x_out = k;  // update, x_out: for_set
      residual_grouped_layouts(gated);
      continue;
    }
    if (op_name == "layernorm_modulate_quantize") {
      int8dit::quant::LayerNormModulateOp<T> ln;
      ln.shift = mod, ln.mod_scale = mod + k, ln.ld_mod = 2 * k, ln.tokens_per_batch = m / batches, ln.eps = 1e-6f;
      ln.inv_cols = 1.0f / float(k);
      if (batches == 1) grouped_layouts(ln);
      if (grouped_only) continue;
      layouts(ln);
      programmatic_layouts(ln);
      using int8dit::quant::row_quantize_registers;
      if (batches > 1) {
        // The cached layouts again with contiguous rows a CTA (the strided ones ran in layouts()): with
        // rows a grid apart a CTA changes batch element, and refills its cache, at almost every row.
        using Ln = decltype(ln);
        using Blocks = int8dit::quant::WithRowBlocks<Ln>;
        Blocks blocks;
        static_cast<Ln&>(blocks) = ln;
        candidate(row_quantize_registers<T, Blocks, 3, true, true>, blocks, 3, true, 48 * Ln::kChannelVec4s);
        candidate(row_quantize_registers<T, Blocks, 4, true, true>, blocks, 4, true, 64 * Ln::kChannelVec4s);
        candidate(row_quantize_registers<T, Blocks, 6, true, true>, blocks, 6, true, 96 * Ln::kChannelVec4s);
        time_layout(row_quantize_registers<T, Blocks, 6, true, true, false, 2>, blocks, 6, true, 96 * Ln::kChannelVec4s,
                    "persistent+cache <=128 regs");
        // The library's 6-vector cached kernel at the carveout the library gives it on Hopper
        // (row_path.h: kept_l1_carveout_percent), both row orders back to back.
        carveout = int8dit::quant::kept_l1_carveout_percent();
        candidate(row_quantize_registers<T, Ln, 6, true, true>, ln, 6, true, 96 * Ln::kChannelVec4s);
        candidate(row_quantize_registers<T, Blocks, 6, true, true>, blocks, 6, true, 96 * Ln::kChannelVec4s);
        carveout = -1;
      }
      LayerNormScaleCachedOp<T> half_cache;
      static_cast<int8dit::quant::LayerNormModulateOp<T>&>(half_cache) = ln;
      using HalfCache = LayerNormScaleCachedOp<T>;
      const std::string label = "persistent+(1+scale) cache";
      time_layout(row_quantize_registers<T, HalfCache, 4, true, true>, half_cache, 4, true, 64 * HalfCache::kChannelVec4s, label);
      time_layout(row_quantize_registers<T, HalfCache, 6, true, true>, half_cache, 6, true, 96 * HalfCache::kChannelVec4s, label);
      // The library's full cache (96 KB a CTA at 256 x 6) with registers capped for 2 CTAs an SM:
      // uncapped it takes ~157 registers, one CTA an SM (65 us against 59 without the cache, 030edec).
      time_layout(row_quantize_registers<T, decltype(ln), 6, true, true, false, 2>, ln, 6, true,
                  96 * decltype(ln)::kChannelVec4s, "persistent+cache <=128 regs");
      // The half cache capped the same way (uncapped, above, it takes ~158 registers: one CTA an SM).
      time_layout(row_quantize_registers<T, HalfCache, 6, true, true, false, 2>, half_cache, 6, true,
                  96 * HalfCache::kChannelVec4s, label + " <=128 regs");
      time_layout(row_quantize_registers<T, HalfCache, 12, true, true>, half_cache, 12, true, 192 * HalfCache::kChannelVec4s, label);
      // The library's cached kernel and the half cache at 6 vectors with the shared-memory carveout
      // capped, so that fewer CTAs fit and L1 keeps the rest (of 228 KB: 71% -> 164 KB, 85% -> 196 KB,
      // 57% -> 132 KB, 43% -> 100 KB). At 64 x 6 with 128 registers the driver's own choice fits 8
      // CTAs of 25.6 KB and leaves L1 ~28 KB for 8 x 6 KB of rows in flight.
      for (const int percent : {85, 71, 57, 43}) {
        carveout = percent;
        time_layout(row_quantize_registers<T, decltype(ln), 6, true, true>, ln, 6, true, 96 * decltype(ln)::kChannelVec4s,
                    "persistent+cache");
        time_layout(row_quantize_registers<T, HalfCache, 6, true, true>, half_cache, 6, true,
                    96 * HalfCache::kChannelVec4s, label);
      }
      carveout = -1;
    } else if (op_name == "rmsnorm_quantize") {
      int8dit::quant::RmsNormOp<T> rms;
      rms.weight = mod, rms.eps = 1e-6f, rms.inv_cols = 1.0f / float(k);
      grouped_layouts(rms);
      if (grouped_only) continue;
      layouts(rms);
      programmatic_layouts(rms);
    } else if (op_name == "quantize_rows+smooth") {
      int8dit::quant::SmoothDivisionOp divide;  // the grouped kernel's form: the divisor cached with its reciprocals
      divide.smooth = smooth;
      grouped_layouts(divide);
      if (grouped_only) continue;
      layouts(int8dit::quant::IdentityOp{});
      programmatic_layouts(int8dit::quant::IdentityOp{});
      // The grouped kernel's division in the register kernel's cached form, registers capped for two CTAs an SM
      // (as LayerNorm's 12288-column rows run: launch_capped_cache), launched programmatically.
      SmoothDivisionFilledOnceOp divide_cached;
      divide_cached.smooth = smooth;
      using Cached = SmoothDivisionFilledOnceOp;
      programmatic = true;
      time_layout(int8dit::quant::row_quantize_registers<T, Cached, 6, true, true, false, 2>, divide_cached, 6, true, 96 * Cached::kChannelVec4s,
                  "persistent+divisor cache <=128 regs");
      time_layout(int8dit::quant::row_quantize_registers<T, Cached, 4, true, true, false, 2>, divide_cached, 4, true, 64 * Cached::kChannelVec4s,
                  "persistent+divisor cache <=128 regs");
      time_layout(int8dit::quant::row_quantize_registers<T, Cached, 6, true, true>, divide_cached, 6, true, 96 * Cached::kChannelVec4s,
                  "persistent+divisor cache");
      programmatic = false;
    } else if (grouped_only) {
      continue;
    } else if (op_name == "gelu_quantize") {
      layouts(int8dit::quant::GeluTanhOp{});
      programmatic_layouts(int8dit::quant::GeluTanhOp{});
    } else {
      layouts(int8dit::quant::IdentityOp{});
      programmatic_layouts(int8dit::quant::IdentityOp{});
    }
  }
  return 0;
}
