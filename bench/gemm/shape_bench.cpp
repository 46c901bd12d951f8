#include "shape_bench.h"

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <initializer_list>
#include <limits>

#include "check.h"
#include "clock_monitor.h"
#include "device_buffer.h"
#include "int8dit/gemm.h"
#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "kernels.h"
#include "lt_matmul.h"
#include "sampled_check.h"

namespace bench {
namespace {

constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;  // 32 MiB, as the task asks of the baselines

// The operands of one rotation set: every path reads its own inputs and writes its own output.
struct BufferSet {
  DeviceBuffer x8, w8;        // int8 X [M, K], W [N, K]: ours and cuBLASLt int8
  DeviceBuffer y_ours;        // bf16 [M, N]
  DeviceBuffer acc;           // int32 [M, N]: cuBLASLt int8
  DeviceBuffer y_dequant;     // bf16 [M, N]: the dequantize kernel
  DeviceBuffer x16, w16, y16; // bf16 path
  DeviceBuffer xf8, wf8, yf8; // FP8 path
  DeviceBuffer q_lin, sx_lin, y_lin;  // the linear path: x16 quantized (int8, fp32 per row), its bf16 output
};

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

void print_path(const char* label, const PathResult& p, double flops, double peak) {
  if (!p.ok()) {
    std::printf("    %-34s %s\n", label, p.status.c_str());
  } else {
    const double tops = flops / (p.ms * 1e-3) / 1e12;
    std::printf("    %-34s %9.4f ms %8.1f TOPS %7.1f GB/s", label, p.ms, tops, p.bytes / (p.ms * 1e-3) / 1e9);
    if (peak > 0) std::printf(" %5.1f%% peak", 100.0 * tops / peak);
    if (!p.what.empty()) std::printf("  [%s]", p.what.c_str());
    if (p.max_rel_err >= 0) std::printf("  max_rel_err %.2e", p.max_rel_err);
    if (!p.held) std::printf("  (stream hold timed out)");
    std::printf("\n");
  }
  std::fflush(stdout);
}

}  // namespace

struct ShapeBench::Impl {
  const Options& opts;
  const GpuInfo& gpu;
  cudaStream_t stream;
  cublasLtHandle_t lt = nullptr;
  DeviceBuffer lt_workspace{kLtWorkspaceBytes};
  GpuTimer timer;
  ClockMonitor clock;

  // Per-shape state.
  Shape s;
  std::vector<BufferSet> sets;
  DeviceBuffer scale_x, scale_w, bias_f32, bias_bf16, fp8_scale_x1, fp8_scale_w1, reference_out, ours_workspace;
  size_t ours_workspace_bytes = 0;
  std::vector<float> h_scale_x, h_scale_w, h_bias_f32;
  std::vector<__nv_bfloat16> h_bias_bf16;

  // The final timings of a row are taken together, interleaved, once every path has picked its
  // configuration or algorithm (time_finals). NOTE: under a sustained INT8 or FP8 load an H200 runs
  // at its 700 W cap and its SM clock swings between ~1.2 and 1.98 GHz (nvidia-smi dmon,
  // 2026-12-02); timed one after the other, a path's figure depended on what ran before it (the same
  // kernel 1.3x apart between runs). Rounds that visit every path in turn give each path the same
  // mix of clock states, so the ratios between paths hold even where the absolute times move.
  struct Final {
    PathResult* out;
    std::function<void(int)> launch;
  };
  std::vector<Final> finals;
  std::vector<std::pair<PathResult*, const PathResult*>> copies_after_finals;  // dst = src once timed
  std::deque<std::unique_ptr<LtMatmul>> kept_plans;  // cuBLASLt plans the final launches use
  std::deque<int8dit::GemmOptions> kept_options;     // forced configurations the final launches use
  std::deque<std::string> kept_names;
  int8dit::GemmOptions stream_order_options;  // ours without programmatic dependent launch

  Impl(const Options& o, const GpuInfo& g, cudaStream_t st) : opts(o), gpu(g), stream(st), timer(st), clock(g.pci_bus_id) {
    timer.set_min_warmup_ms(o.warmup_ms);
    timer.set_calls_per_sample(o.calls_per_sample);
    stream_order_options.programmatic_launch = false;
    BENCH_CUBLAS(cublasLtCreate(&lt));
  }
  ~Impl() {
    if (lt) cublasLtDestroy(lt);
  }

  size_t mk() const { return size_t(s.m) * s.k; }
  size_t nk() const { return size_t(s.n) * s.k; }
  size_t mn() const { return size_t(s.m) * s.n; }
  const BufferSet& set(int i) const { return sets[size_t(i) % sets.size()]; }

  void allocate(Row& row) {
    // Enough sets that the bytes ours touches per run, summed over the sets, exceed the rotation
    // target (3 x L2 by default): consecutive runs then find nothing of theirs in L2.
    const double ours_bytes = double(mk() + nk() + 2 * mn());
    const double target = opts.rotate_mb > 0 ? opts.rotate_mb * 1e6 : 3.0 * double(gpu.l2_bytes);
    int count = int(std::ceil(target / ours_bytes));
    count = std::clamp(count, 2, 64);
    const double per_set = double(mk() + nk()) * 4 /* int8, bf16 x2, fp8 */ + double(mk()) /* linear's int8 */ +
                           double(mn()) * (2 + 4 + 2 + 2 + 2 + 2) + 4.0 * double(s.m);
    size_t free_bytes = 0, total_bytes = 0;
    BENCH_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    const int fits = int(0.8 * double(free_bytes) / per_set);
    if (fits < 1)
      throw BenchError("one buffer set needs " + fmt("%.0f", per_set / 1e6) + " MB but only " +
                       fmt("%.0f", free_bytes / 1e6) + " MB of device memory is free");
    count = std::min(count, fits);
    row.buffer_sets = count;
    row.rotated_mb = count * ours_bytes / 1e6;

    sets.clear();
    sets.resize(count);
    for (int i = 0; i < count; ++i) {
      BufferSet& b = sets[i];
      const uint64_t seed = opts.seed * 1000003ull + uint64_t(i) * 16;
      b.x8 = DeviceBuffer(mk());
      b.w8 = DeviceBuffer(nk());
      b.y_ours = DeviceBuffer(2 * mn());
      b.acc = DeviceBuffer(4 * mn());
      b.y_dequant = DeviceBuffer(2 * mn());
      b.x16 = DeviceBuffer(2 * mk());
      b.w16 = DeviceBuffer(2 * nk());
      b.y16 = DeviceBuffer(2 * mn());
      b.xf8 = DeviceBuffer(mk());
      b.wf8 = DeviceBuffer(nk());
      b.yf8 = DeviceBuffer(2 * mn());
      b.q_lin = DeviceBuffer(mk());
      b.sx_lin = DeviceBuffer(4 * size_t(s.m));
      b.y_lin = DeviceBuffer(2 * mn());
      fill_int8(b.x8.as<int8_t>(), mk(), seed + 1, stream, opts.inputs);
      fill_int8(b.w8.as<int8_t>(), nk(), seed + 2, stream, opts.inputs);
      fill_bf16(b.x16.as<__nv_bfloat16>(), mk(), seed + 3, -1.0f, 1.0f, stream, opts.inputs);
      fill_bf16(b.w16.as<__nv_bfloat16>(), nk(), seed + 4, -1.0f, 1.0f, stream, opts.inputs);
      fill_fp8_e4m3(b.xf8.as<__nv_fp8_e4m3>(), mk(), seed + 5, 4.0f, stream, opts.inputs);
      fill_fp8_e4m3(b.wf8.as<__nv_fp8_e4m3>(), nk(), seed + 6, 4.0f, stream, opts.inputs);
    }
    // Scales and bias are shared by the sets (a few KB, they stay in L2 in every path alike).
    // Per-token scales of real activations are ~ amax / 127; any positive values exercise the same code.
    scale_x = DeviceBuffer(4 * size_t(s.m));
    scale_w = DeviceBuffer(4 * size_t(s.n));
    bias_f32 = DeviceBuffer(4 * size_t(s.n));
    bias_bf16 = DeviceBuffer(2 * size_t(s.n));
    fp8_scale_x1 = DeviceBuffer(4);
    fp8_scale_w1 = DeviceBuffer(4);
    reference_out = DeviceBuffer(2 * mn());
    fill_f32(scale_x.as<float>(), s.m, opts.seed + 11, 0.5f / 127, 2.0f / 127, stream);
    fill_f32(scale_w.as<float>(), s.n, opts.seed + 12, 0.5f / 127, 2.0f / 127, stream);
    fill_f32(bias_f32.as<float>(), s.n, opts.seed + 13, -1.0f, 1.0f, stream);
    fill_bf16(bias_bf16.as<__nv_bfloat16>(), s.n, opts.seed + 13, -1.0f, 1.0f, stream);
    fill_f32(fp8_scale_x1.as<float>(), 1, opts.seed + 14, 0.5f, 1.0f, stream);
    fill_f32(fp8_scale_w1.as<float>(), 1, opts.seed + 15, 0.5f, 1.0f, stream);
    BENCH_CUDA(cudaStreamSynchronize(stream));
    h_scale_x = to_host<float>(scale_x, s.m);
    h_scale_w = to_host<float>(scale_w, s.n);
    h_bias_f32 = to_host<float>(bias_f32, s.n);
    h_bias_bf16 = to_host<__nv_bfloat16>(bias_bf16, s.n);
  }

  template <typename T>
  static std::vector<T> to_host(const DeviceBuffer& b, int64_t count) {
    std::vector<T> h(static_cast<size_t>(count));
    BENCH_CUDA(cudaMemcpy(h.data(), b.as<void>(), h.size() * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }

  int8dit::GemmParams ours_params(int i) const {
    const BufferSet& b = set(i);
    int8dit::GemmParams p;
    p.m = s.m;
    p.n = s.n;
    p.k = s.k;
    p.a = b.x8.as<int8_t>();
    p.lda = s.k;
    p.b = b.w8.as<int8_t>();
    p.ldb = s.k;
    p.scale_a = scale_x.as<float>();
    p.scale_a_mode = int8dit::ScaleMode::kPerRow;
    p.scale_b = scale_w.as<float>();
    p.scale_b_mode = int8dit::ScaleMode::kPerCol;
    p.bias = bias_f32.as<float>();
    p.d = b.y_ours.as<void>();
    p.d_type = int8dit::DType::kBF16;
    p.ldd = s.n;
    p.workspace = ours_workspace.as<void>();
    p.workspace_bytes = ours_workspace_bytes;
    return p;
  }

  Timing time(const std::function<void(int)>& launch, int runs) { return timer.time(launch, opts.warmup, runs); }

  // Marks `out` as measured ("ok") and queues its timing for time_finals. `launch` must stay valid
  // until then: it may capture only this row's kept_* objects, the Impl and values.
  void defer_timing(PathResult& out, std::function<void(int)> launch, double bytes) {
    out.status = "ok";
    out.bytes = bytes;
    finals.push_back({&out, std::move(launch)});
  }

  // opts.rounds rounds; in each, every queued path is warmed up and timed for its share of opts.runs.
  // A path's figure is the median (and min) over all of its runs.
  // NOTE: the rounds alternate direction, so that no path always runs right after the same other one.
  // With one fixed order, ours without PDL (always timed right after ours) read 2-4% faster on the long
  // kernels than ours with PDL, the same kernel (gemm.json of d7ec1e0): the position under the
  // power-capped clock or the launch attribute, one run could not tell; alternating takes the position out.
  void time_finals() {
    const int rounds = std::max(1, opts.rounds);
    const int per_round = std::max(1, (opts.runs + rounds - 1) / rounds);
    std::vector<std::vector<double>> samples(finals.size());
    std::vector<bool> held(finals.size(), true);
    std::vector<ClockTally> clocks(finals.size());
    for (int r = 0; r < rounds; ++r)
      for (size_t j = 0; j < finals.size(); ++j) {
        const size_t i = r % 2 ? finals.size() - 1 - j : j;
        if (!finals[i].out->ok()) continue;  // failed in an earlier round
        try {
          clock.begin();
          held[i] = timer.time(finals[i].launch, opts.warmup, per_round, &samples[i]).held && held[i];
          clocks[i].merge(clock.end());
        } catch (const BenchError& e) {
          clock.end();
          finals[i].out->status = std::string("error: ") + e.what();
        }
      }
    for (size_t i = 0; i < finals.size(); ++i) {
      PathResult& p = *finals[i].out;
      if (!p.ok() || samples[i].empty()) continue;
      p.ms = sorted_median(samples[i]);
      p.min_ms = samples[i].front();
      p.runs = int(samples[i].size());
      p.held = held[i];
      p.sm_mhz = clocks[i].mean_mhz();
      p.clock_samples = clocks[i].samples;
    }
    for (auto& [dst, src] : copies_after_finals) *dst = *src;
    finals.clear();
    copies_after_finals.clear();
  }

  LtMatmul& keep(std::unique_ptr<LtMatmul> plan) {
    kept_plans.push_back(std::move(plan));
    return *kept_plans.back();
  }

  const int8dit::GemmOptions* keep_config(const std::string& name) {
    kept_names.push_back(name);
    kept_options.emplace_back();
    kept_options.back().config = kept_names.back().c_str();
    return &kept_options.back();
  }

  // ---- the reference: cuBLASLt int8 + dequantize on set 0, itself checked on sampled elements ----
  void build_reference(Row& row, std::vector<cublasLtMatmulHeuristicResult_t>* int8_algos, LtMatmul& int8) {
    *int8_algos = int8.heuristics(opts.algos, kLtWorkspaceBytes);
    const BufferSet& b = sets[0];
    if (!int8_algos->empty()) {
      int8.run((*int8_algos)[0].algo, b.x8.as<void>(), b.w8.as<void>(), b.acc.as<void>(), lt_workspace.as<void>(),
               kLtWorkspaceBytes, stream);
      row.reference = "cuBLASLt int8 (int32 out) + dequantize kernel";
    } else {
      reference_gemm_int8(b.x8.as<int8_t>(), b.w8.as<int8_t>(), b.acc.as<int32_t>(), s.m, s.n, s.k, stream);
      row.reference = "dp4a reference kernel + dequantize kernel (cuBLASLt int8: " + int8.last_error() + ")";
    }
    dequantize_int32_to_bf16(b.acc.as<int32_t>(), s.m, s.n, scale_x.as<float>(), scale_w.as<float>(),
                             bias_f32.as<float>(), reference_out.as<__nv_bfloat16>(), stream);
    BENCH_CUDA(cudaStreamSynchronize(stream));

    SampleSpec acc_spec;
    acc_spec.in_type = ElemType::kInt8;
    acc_spec.x = b.x8.as<void>();
    acc_spec.w = b.w8.as<void>();
    acc_spec.m = s.m;
    acc_spec.n = s.n;
    acc_spec.k = s.k;
    acc_spec.out_type = ElemType::kInt32;
    acc_spec.y = b.acc.as<void>();
    acc_spec.exact = true;
    acc_spec.expected = [](int64_t, int64_t, double dot) { return dot; };
    const SampleResult acc_check = check_samples(acc_spec);
    if (!acc_check.ok) throw BenchError("the int32 reference GEMM is wrong: " + acc_check.message);

    SampleSpec dq_spec = acc_spec;
    dq_spec.out_type = ElemType::kBf16;
    dq_spec.y = reference_out.as<void>();
    dq_spec.expected = [this](int64_t r, int64_t c, double dot) {
      return double(int8dit::ref::epilogue_value(int32_t(dot), h_scale_x[r], h_scale_w[c], h_bias_f32[c]));
    };
    const SampleResult dq_check = check_samples(dq_spec);
    if (!dq_check.ok) throw BenchError("the dequantize kernel disagrees with int8dit::ref::epilogue_value: " + dq_check.message);
  }

  // Runs ours once into set 0 (output poisoned first) and compares it with the reference.
  CompareResult check_ours(const int8dit::GemmOptions* o) {
    const int8dit::GemmParams p = ours_params(0);
    BENCH_CUDA(cudaMemsetAsync(p.d, 0xFF, 2 * mn(), stream));  // bf16 NaN: unwritten outputs fail
    const int8dit::Status st = int8dit::gemm_w8a8(p, stream, o);
    if (!st.ok()) throw BenchError("int8dit::gemm_w8a8: " + st.to_string());
    return compare_bf16(static_cast<const __nv_bfloat16*>(p.d), reference_out.as<__nv_bfloat16>(), s.m, s.n,
                        opts.tol, stream);
  }

  std::function<void(int)> ours_launch(const int8dit::GemmOptions* o) {
    return [this, o](int i) {
      const int8dit::Status st = int8dit::gemm_w8a8(ours_params(i), stream, o);
      if (!st.ok()) throw BenchError("int8dit::gemm_w8a8: " + st.to_string());
    };
  }

  // The linear layer on set i's bf16 input: quantize_rows into the set's own int8 rows and scales,
  // then the GEMM (options o) on them.
  void linear_call(int i, const int8dit::GemmOptions* o) {
    const BufferSet& b = set(i);
    int8dit::QuantizeRowsParams qp;
    qp.rows = s.m;
    qp.cols = s.k;
    qp.x = b.x16.as<void>();
    qp.x_type = int8dit::DType::kBF16;
    qp.ldx = s.k;
    qp.q = b.q_lin.as<int8_t>();
    qp.ldq = s.k;
    qp.scale = b.sx_lin.as<float>();
    const int8dit::Status qs = int8dit::quantize_rows(qp, stream);
    if (!qs.ok()) throw BenchError("int8dit::quantize_rows: " + qs.to_string());
    int8dit::GemmParams p = ours_params(i);
    p.a = b.q_lin.as<int8_t>();
    p.scale_a = b.sx_lin.as<float>();
    p.d = b.y_lin.as<void>();
    const int8dit::Status st = int8dit::gemm_w8a8(p, stream, o);
    if (!st.ok()) throw BenchError("int8dit::gemm_w8a8 (linear): " + st.to_string());
  }

  // Checks the linear path on set 0 (output poisoned first) against the same GEMM in plain stream
  // order on the rows it quantized, bit for bit, then queues both launch orders for timing.
  void run_linear(Row& row) {
    const double bytes = double(2 * mk() + nk() + 2 * mn() + 8 * size_t(s.n));  // bf16 in, weights, bf16 out
    row.linear.what = row.linear_stream_order.what = row.ours_heuristic.what;
    const BufferSet& b = sets[0];
    BENCH_CUDA(cudaMemsetAsync(b.y_lin.as<void>(), 0xFF, 2 * mn(), stream));
    linear_call(0, nullptr);
    int8dit::GemmParams p = ours_params(0);
    p.a = b.q_lin.as<int8_t>();
    p.scale_a = b.sx_lin.as<float>();
    p.d = reference_out.as<void>();  // the GEMM paths are checked by now: the buffer is free
    const int8dit::Status st = int8dit::gemm_w8a8(p, stream, &stream_order_options);
    if (!st.ok()) throw BenchError("int8dit::gemm_w8a8 (linear's check): " + st.to_string());
    const CompareResult c =
        compare_bf16(b.y_lin.as<__nv_bfloat16>(), reference_out.as<__nv_bfloat16>(), s.m, s.n, 0.0, stream);
    if (!c.ok()) {
      row.linear.status = row.linear_stream_order.status = mismatch_text(c) + " (against the GEMM alone on its rows)";
      row.check_failed = true;
      std::printf("    !!! ours linear: %s\n", row.linear.status.c_str());
      return;
    }
    defer_timing(row.linear, [this](int i) { linear_call(i, nullptr); }, bytes);
    defer_timing(row.linear_stream_order, [this](int i) { linear_call(i, &stream_order_options); }, bytes);
  }

  static std::string mismatch_text(const CompareResult& c) {
    return "MISMATCH vs reference: max_rel_err " + fmt("%.3e", c.max_rel_err) + ", " + std::to_string(c.over_tol) +
           " elements over tolerance, " + std::to_string(c.non_finite) + " NaN/Inf (unwritten or wrong)";
  }

  void run_ours(Row& row) {
    const double bytes = double(mk() + nk() + 2 * mn() + 4 * size_t(s.m) + 8 * size_t(s.n));
    ours_workspace_bytes = 0;
    ours_workspace = DeviceBuffer();
    int8dit::GemmParams p = ours_params(0);
    const int8dit::Status can = int8dit::gemm_can_implement(p);
    std::vector<std::string> names;
    {
      std::string all = int8dit::gemm_config_names();
      for (size_t pos = 0; !all.empty();) {
        const size_t comma = all.find(',', pos);
        names.push_back(all.substr(pos, comma - pos));
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    }
    // Workspace: the largest any configuration asks for, so every forced config can run.
    ours_workspace_bytes = can.ok() ? int8dit::gemm_workspace_size(p) : 0;
    for (const std::string& name : names) {
      int8dit::GemmOptions o;
      o.config = name.c_str();
      ours_workspace_bytes = std::max(ours_workspace_bytes, int8dit::gemm_workspace_size(p, &o));
    }
    if (ours_workspace_bytes) ours_workspace = DeviceBuffer(ours_workspace_bytes);

    if (!can.ok()) {
      row.ours_heuristic.status = row.ours_stream_order.status = can.to_string();
    } else {
      PathResult& h = row.ours_heuristic;
      h.what = int8dit::gemm_selected_config(ours_params(0));
      const CompareResult c = check_ours(nullptr);
      h.max_rel_err = c.max_rel_err;
      if (!c.ok()) {
        h.status = mismatch_text(c);
        row.ours_stream_order.status = "not timed: the dispatch's configuration failed its check";
        row.check_failed = true;
        std::printf("    !!! ours (heuristic %s): %s\n", h.what.c_str(), h.status.c_str());
      } else {
        defer_timing(h, ours_launch(nullptr), bytes);
        // The same dispatch in plain stream order: what programmatic dependent launch is worth here.
        row.ours_stream_order.what = h.what;
        row.ours_stream_order.max_rel_err = h.max_rel_err;
        defer_timing(row.ours_stream_order, ours_launch(&stream_order_options), bytes);
      }
    }

    if (!opts.sweep) {
      row.ours_best.status = "not measured (--no-sweep)";
      return;
    }
    const ConfigTrial* best = nullptr;
    for (const std::string& name : names) {
      ConfigTrial t;
      t.name = name;
      int8dit::GemmOptions o;
      o.config = name.c_str();
      const int8dit::Status st = int8dit::gemm_can_implement(ours_params(0), &o);
      if (!st.ok()) {
        t.status = "skipped: " + st.to_string();
      } else {
        try {
          const CompareResult c = check_ours(&o);
          t.max_rel_err = c.max_rel_err;
          if (!c.ok()) {
            t.status = mismatch_text(c);
            row.check_failed = true;
            std::printf("    !!! config %s: %s\n", name.c_str(), t.status.c_str());
          } else {
            t.ms = time(ours_launch(&o), opts.sweep_runs).median_ms;
            t.status = "ok";
          }
        } catch (const BenchError& e) {
          t.status = std::string("error: ") + e.what();
          row.check_failed = true;
          std::printf("    !!! config %s: %s\n", name.c_str(), t.status.c_str());
        }
      }
      row.trials.push_back(t);
    }
    for (const ConfigTrial& t : row.trials)
      if (t.status == "ok" && (!best || t.ms < best->ms)) best = &t;
    if (!best) {
      row.ours_best.status = names.empty() ? "no configuration built for this GPU"
                                           : "no configuration could run this shape (see trials)";
    } else if (row.ours_heuristic.ok() && best->name == row.ours_heuristic.what) {
      // The same kernel: one figure for it, so "best" never reads slower than dispatch by noise.
      copies_after_finals.emplace_back(&row.ours_best, &row.ours_heuristic);
    } else {
      row.ours_best.what = best->name;
      row.ours_best.max_rel_err = best->max_rel_err;
      defer_timing(row.ours_best, ours_launch(keep_config(best->name)), bytes);
    }
  }

  // Times each heuristic candidate with --sweep-runs and returns the fastest one's index.
  size_t pick_algo(const std::vector<cublasLtMatmulHeuristicResult_t>& algos,
                   const std::function<void(const cublasLtMatmulAlgo_t&, int)>& launch) {
    size_t best = 0;
    double best_ms = std::numeric_limits<double>::infinity();
    for (size_t a = 0; a < algos.size(); ++a) {
      const cublasLtMatmulAlgo_t algo = algos[a].algo;
      double ms;
      try {
        ms = time([&](int i) { launch(algo, i); }, opts.sweep_runs).median_ms;
      } catch (const BenchError&) {
        continue;  // a candidate the heuristic offered but that fails to launch is not a candidate
      }
      if (ms < best_ms) {
        best_ms = ms;
        best = a;
      }
    }
    return best;
  }

  static std::string algo_text(const std::vector<cublasLtMatmulHeuristicResult_t>& algos, size_t pick) {
    return "heuristic #" + std::to_string(pick) + " of " + std::to_string(algos.size()) + ", algo " +
           std::to_string(LtMatmul::algo_id(algos[pick].algo)) + " tile " +
           std::to_string(LtMatmul::algo_tile(algos[pick].algo));
  }

  void run_int8(Row& row, LtMatmul& int8, const std::vector<cublasLtMatmulHeuristicResult_t>& algos) {
    if (algos.empty()) {
      row.int8_gemm.status = row.int8_dequant.status = "unsupported: " + int8.last_error();
      return;
    }
    auto gemm = [&](const cublasLtMatmulAlgo_t& algo, int i) {
      const BufferSet& b = set(i);
      int8.run(algo, b.x8.as<void>(), b.w8.as<void>(), b.acc.as<void>(), lt_workspace.as<void>(), kLtWorkspaceBytes,
               stream);
    };
    const size_t pick = pick_algo(algos, gemm);
    const cublasLtMatmulAlgo_t algo = algos[pick].algo;
    row.int8_gemm.what = row.int8_dequant.what = algo_text(algos, pick);
    // `int8` is run()'s own plan, alive until time_finals.
    LtMatmul* plan = &int8;
    auto final_gemm = [this, plan, algo](int i) {
      const BufferSet& b = set(i);
      plan->run(algo, b.x8.as<void>(), b.w8.as<void>(), b.acc.as<void>(), lt_workspace.as<void>(), kLtWorkspaceBytes,
                stream);
    };
    defer_timing(row.int8_gemm, final_gemm, double(mk() + nk() + 4 * mn()));
    defer_timing(
        row.int8_dequant,
        [this, final_gemm](int i) {
          final_gemm(i);
          const BufferSet& b = set(i);
          dequantize_int32_to_bf16(b.acc.as<int32_t>(), s.m, s.n, scale_x.as<float>(), scale_w.as<float>(),
                                   bias_f32.as<float>(), b.y_dequant.as<__nv_bfloat16>(), stream);
        },
        double(mk() + nk() + 4 * mn() + 4 * mn() + 2 * mn() + 4 * size_t(s.m) + 8 * size_t(s.n)));
  }

  // A float-output baseline: pick an algorithm, check its set-0 output on sampled elements, time it.
  // Returns false (status set) where cuBLASLt has no algorithm or the check fails.
  bool run_float_baseline(PathResult& out, LtMatmul& mm, ElemType in_type,
                          const std::function<const void*(const BufferSet&)>& x,
                          const std::function<const void*(const BufferSet&)>& w,
                          const std::function<void*(const BufferSet&)>& y,
                          const std::function<double(int64_t, int64_t)>& scale, double bytes, bool bias) {
    const std::vector<cublasLtMatmulHeuristicResult_t> algos = mm.heuristics(opts.algos, kLtWorkspaceBytes);
    if (algos.empty()) {
      out.status = "unsupported: " + mm.last_error();
      return false;
    }
    auto launch = [&](const cublasLtMatmulAlgo_t& algo, int i) {
      const BufferSet& b = set(i);
      mm.run(algo, x(b), w(b), y(b), lt_workspace.as<void>(), kLtWorkspaceBytes, stream);
    };
    try {
      BENCH_CUDA(cudaMemsetAsync(y(sets[0]), 0xFF, 2 * mn(), stream));
      launch(algos[0].algo, 0);
      BENCH_CUDA(cudaStreamSynchronize(stream));
    } catch (const BenchError& e) {
      out.status = std::string("error: ") + e.what();
      return false;
    }
    SampleSpec spec;
    spec.in_type = in_type;
    spec.x = x(sets[0]);
    spec.w = w(sets[0]);
    spec.m = s.m;
    spec.n = s.n;
    spec.k = s.k;
    spec.out_type = ElemType::kBf16;
    spec.y = y(sets[0]);
    auto bias_at = [&](int64_t c) { return bias ? double(__bfloat162float(h_bias_bf16[c])) : 0.0; };
    spec.expected = [&](int64_t r, int64_t c, double dot) { return dot * scale(r, c) + bias_at(c); };
    spec.magnitude = [&](int64_t r, int64_t c, double abs_dot) { return abs_dot * scale(r, c) + std::fabs(bias_at(c)); };
    const SampleResult chk = check_samples(spec);
    if (!chk.ok) {
      out.status = "WRONG (sampled check): " + chk.message;
      return false;
    }
    const size_t pick = pick_algo(algos, launch);
    const cublasLtMatmulAlgo_t algo = algos[pick].algo;
    out.what = algo_text(algos, pick);
    // By value: the final launch runs after this function (and the caller's lambdas) are gone; `mm`
    // is a kept plan.
    LtMatmul* plan = &mm;
    defer_timing(
        out,
        [this, plan, algo, x, w, y](int i) {
          const BufferSet& b = set(i);
          plan->run(algo, x(b), w(b), y(b), lt_workspace.as<void>(), kLtWorkspaceBytes, stream);
        },
        bytes);
    return true;
  }

  void run_bf16(Row& row) {
    LtMatmul& mm = keep(std::make_unique<LtMatmul>(lt, LtPath::kBf16Bias, s.m, s.n, s.k));
    mm.set_bias(bias_bf16.as<void>());
    run_float_baseline(
        row.bf16, mm, ElemType::kBf16, [](const BufferSet& b) { return b.x16.as<const void>(); },
        [](const BufferSet& b) { return b.w16.as<const void>(); }, [](const BufferSet& b) { return b.y16.as<void>(); },
        [](int64_t, int64_t) { return 1.0; }, double(2 * mk() + 2 * nk() + 2 * mn() + 2 * size_t(s.n)), true);
    if (!row.bf16.ok()) row.check_failed |= row.bf16.status.rfind("WRONG", 0) == 0;
  }

  struct Fp8Variant {
    Fp8Scaling scaling;
    bool bias;
    std::string name() const { return std::string(to_string(scaling)) + (bias ? " + bias" : ", no bias"); }
  };

  // One FP8 configuration: outer-vector scales are the per-token / per-channel vectors ours uses,
  // per-tensor scales one value each.
  bool run_fp8_variant(const Fp8Variant& v, PathResult& out) {
    LtMatmul& mm = keep(std::make_unique<LtMatmul>(lt, v.bias ? LtPath::kFp8Bf16Bias : LtPath::kFp8Bf16, s.m, s.n,
                                                   s.k, v.scaling));
    if (v.bias) mm.set_bias(bias_bf16.as<void>());
    const bool outer = v.scaling == Fp8Scaling::kOuterVector;
    if (outer)
      mm.set_fp8_scales(scale_w.as<float>(), scale_x.as<float>());
    else
      mm.set_fp8_scales(fp8_scale_w1.as<float>(), fp8_scale_x1.as<float>());
    const std::vector<float> sw1 = to_host<float>(fp8_scale_w1, 1), sx1 = to_host<float>(fp8_scale_x1, 1);
    const std::function<double(int64_t, int64_t)> scale = [&](int64_t r, int64_t c) {
      return outer ? double(h_scale_w[c]) * double(h_scale_x[r]) : double(sw1[0]) * double(sx1[0]);
    };
    const double bytes =
        double(mk() + nk() + 2 * mn() + (v.bias ? 2 * size_t(s.n) : 0) + (outer ? 4 * size_t(s.m + s.n) : 8));
    auto x = [](const BufferSet& b) { return b.xf8.as<const void>(); };
    auto w = [](const BufferSet& b) { return b.wf8.as<const void>(); };
    auto y = [](const BufferSet& b) { return b.yf8.as<void>(); };
    return run_float_baseline(out, mm, ElemType::kFp8E4M3, x, w, y, scale, bytes, v.bias);
  }

  // FP8 as torch._scaled_mm rowwise runs it: outer-vector (per-token x per-channel) scales with the
  // bias epilogue; where this cuBLASLt has no such kernel, outer-vector without bias, then
  // per-tensor scales with bias. The row records which one ran, and why the others did not.
  // Per-tensor + bias is also measured on its own (Row::fp8_per_tensor).
  void run_fp8(Row& row) {
    const Fp8Variant per_tensor{Fp8Scaling::kPerTensor, true};
    for (const Fp8Variant& v : {Fp8Variant{Fp8Scaling::kOuterVector, true}, Fp8Variant{Fp8Scaling::kOuterVector, false},
                                per_tensor}) {
      // The row's own slot: a successful variant queues its timing there (time_finals fills it).
      row.fp8 = PathResult();
      if (run_fp8_variant(v, row.fp8)) {
        row.fp8_scaling = to_string(v.scaling);
        row.fp8_bias = v.bias;
        break;
      }
      row.fp8_note += (row.fp8_note.empty() ? "" : "; ") + v.name() + ": " + row.fp8.status;
      if (row.fp8.status.rfind("WRONG", 0) == 0) {
        row.check_failed = true;
        std::printf("    !!! cuBLASLt FP8 %s: %s\n", v.name().c_str(), row.fp8.status.c_str());
      }
    }
    if (!row.fp8.ok()) row.fp8.status = "unsupported: " + row.fp8_note;
    if (row.fp8.ok() && row.fp8_scaling == to_string(Fp8Scaling::kPerTensor)) {
      copies_after_finals.emplace_back(&row.fp8_per_tensor, &row.fp8);
    } else {
      run_fp8_variant(per_tensor, row.fp8_per_tensor);
      if (row.fp8_per_tensor.status.rfind("WRONG", 0) == 0) row.check_failed = true;
    }
  }

  Row run(const Shape& shape) {
    s = shape;
    Row row;
    row.shape = shape;
    row.flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
    try {
      // NOTE: int8dit, FP8 and int8 cuBLASLt all need 16-byte rows of 8-bit K; so does the dp4a reference.
      if (s.k % 16 != 0)
        throw BenchError("K = " + std::to_string(s.k) + " must be a multiple of 16 (int8dit's requirement)");
      allocate(row);
      LtMatmul int8(lt, LtPath::kInt8Int32, s.m, s.n, s.k);
      std::vector<cublasLtMatmulHeuristicResult_t> int8_algos;
      build_reference(row, &int8_algos, int8);
      std::printf("    (%d buffer sets, %.0f MB rotated; reference: %s)\n", row.buffer_sets, row.rotated_mb,
                  row.reference.c_str());
      // Each path on its own: a failure in one (thrown CUDA/cuBLAS error) leaves the others' figures.
      // Slots a path had not filled yet when it threw get the error.
      auto guarded = [&](std::initializer_list<PathResult*> slots, const char* label, const std::function<void()>& fn) {
        try {
          fn();
        } catch (const BenchError& e) {
          for (PathResult* slot : slots)
            if (slot->status.empty()) slot->status = std::string("error: ") + e.what();
          row.check_failed = true;
          std::printf("    !!! %s: %s\n", label, e.what());
          // A sticky CUDA error would poison the rest of the run; surface it now.
          BENCH_CUDA(cudaDeviceSynchronize());
        }
      };
      guarded({&row.ours_heuristic, &row.ours_stream_order, &row.ours_best}, "ours", [&] { run_ours(row); });
      guarded({&row.int8_gemm, &row.int8_dequant}, "cuBLASLt int8", [&] { run_int8(row, int8, int8_algos); });
      // After every check against reference_out: the linear path's own check overwrites it.
      if (row.ours_heuristic.ok()) {
        guarded({&row.linear, &row.linear_stream_order}, "ours linear", [&] { run_linear(row); });
      } else {
        row.linear.status = row.linear_stream_order.status = "not timed: the GEMM alone did not pass its check";
      }
      guarded({&row.bf16}, "cuBLAS bf16", [&] { run_bf16(row); });
      guarded({&row.fp8, &row.fp8_per_tensor}, "cuBLASLt FP8", [&] { run_fp8(row); });
      guarded({}, "final timing", [&] { time_finals(); });
      const double peak = gpu.int8_dense_peak_tops;
      print_path("ours, heuristic", row.ours_heuristic, row.flops, peak);
      print_path("ours, heuristic, no PDL", row.ours_stream_order, row.flops, peak);
      print_path("ours, best of forced configs", row.ours_best, row.flops, peak);
      print_path("ours linear (quantize + GEMM)", row.linear, row.flops, peak);
      print_path("ours linear, GEMM without PDL", row.linear_stream_order, row.flops, peak);
      print_path("cuBLASLt int8 (GEMM alone)", row.int8_gemm, row.flops, peak);
      print_path("cuBLASLt int8 + dequantize", row.int8_dequant, row.flops, peak);
      print_path("cuBLAS bf16 + bias epilogue", row.bf16, row.flops, 0);
      const std::string fp8_label = "cuBLASLt FP8 e4m3" + (row.fp8.ok() ? ", " + row.fp8_scaling + (row.fp8_bias ? " + bias" : ", no bias") : std::string());
      print_path(fp8_label.c_str(), row.fp8, row.flops, peak);
      print_path("cuBLASLt FP8 e4m3, per_tensor + bias", row.fp8_per_tensor, row.flops, peak);
      const PathResult& o = row.ours_heuristic;
      if (o.ok())
        std::printf("    ours (dispatch) speedup: %s vs bf16, %s vs FP8, %s vs FP8 per-tensor\n",
                    row.bf16.ok() ? fmt("%.2fx", row.bf16.ms / o.ms).c_str() : "n/a",
                    row.fp8.ok() ? fmt("%.2fx", row.fp8.ms / o.ms).c_str() : "n/a",
                    row.fp8_per_tensor.ok() ? fmt("%.2fx", row.fp8_per_tensor.ms / o.ms).c_str() : "n/a");
      if (row.linear.ok() && row.bf16.ok())
        std::printf("    ours linear (bf16 in, quantization included) speedup: %.2fx vs bf16\n",
                    row.bf16.ms / row.linear.ms);
    } catch (const BenchError& e) {
      row.error = e.what();
      row.check_failed = true;
      std::printf("    !!! row failed: %s\n", e.what());
    }
    finals.clear();  // after a thrown row: nothing queued may outlive the row
    copies_after_finals.clear();
    kept_plans.clear();
    kept_options.clear();
    kept_names.clear();
    sets.clear();
    return row;
  }
};

ShapeBench::ShapeBench(const Options& opts, const GpuInfo& gpu, cudaStream_t stream)
    : impl_(std::make_unique<Impl>(opts, gpu, stream)) {}
ShapeBench::~ShapeBench() = default;
Row ShapeBench::run(const Shape& shape) { return impl_->run(shape); }
std::string ShapeBench::clock_sampling() const {
  const ClockMonitor& c = impl_->clock;
  return c.available() ? "every " + std::to_string(c.sample_us()) + " us from NVML" : c.status();
}

}  // namespace bench
