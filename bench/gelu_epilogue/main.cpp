// int8dit_bench_gelu_epilogue: where the MLP's GELU should run, measured (issue 4: "if fusing GELU
// into the first linear's epilogue is measured faster, do that too and keep the faster").
//
//   A: fc1 GEMM (bf16 out, bias)              then gelu_quantize    (the library's path today)
//   B: fc1 GEMM with GELU in its epilogue     then quantize_rows    (gelu_epilogue.cuh, a trial)
//
// Both move the same bytes; B moves GELU's arithmetic from the memory-bound quantization into the
// GEMM's epilogue, which the cooperative kernels do not overlap with their mainloop and the ping-pong
// ones do. For each MLP fc1 shape and each configuration built with the GELU epilogue, in one process:
// the GEMM alone with each epilogue (same configuration, forced by name), both pipelines, and the
// library's own pick in pipeline A; to tell where A's time goes, C (pipeline A without GELU: the
// GEMM, then quantize_rows) and each quantization alone on the GEMM's output. Checked once a
// configuration: the GELU GEMM's bf16 output against GELU (double precision, tanh form) of the
// plain GEMM's bf16 output, within 2^-8 (|y| + |gelu(y)|) (either may be off by half a bf16 step of its own value, and gelu' <= 1.13); B's int8 output
// against A's: scales within 1%, int8 within 1 (A rounds to bf16 before GELU, B after it).
//
//   int8dit_bench_gelu_epilogue [--out DIR] [--shapes MxNxK,...]   (writes DIR/gelu_epilogue.json)
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_cli.h"
#include "gelu_trials.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "int8dit/quantize.h"
#include "timing.h"

namespace {

using bench_quant::check_cuda;
using bench_quant::device_alloc;

struct Shape {
  int64_t m, n, k;
  std::string model;
};

// MLP fc1 of the DiTs (N = the hidden width, 4x the model width).
std::vector<Shape> default_shapes() {
  return {{4096, 12288, 3072, "flux-dev double-stream image fc1 (1024 px)"},
          {512, 12288, 3072, "flux-dev double-stream text fc1"},
          {8192, 6144, 1536, "sd3-medium fc1 (1024 px, guidance: 2 x 4096 tokens)"},
          {8192, 4608, 1152, "dit-xl-2 fc1 (512 px, batch 8)"},
          {4096, 4608, 1152, "pixart-sigma fc1 (1024 px)"}};
}

void require(const int8dit::Status& st, const std::string& what) {
  if (st.ok()) return;
  std::fprintf(stderr, "int8dit_bench_gelu_epilogue: %s: %s\n", what.c_str(), st.to_string().c_str());
  std::exit(1);
}

struct Output {
  std::vector<int8_t> q;
  std::vector<float> scale;
};

Output read_output(const int8_t* q, const float* scale, int64_t m, int64_t n) {
  Output o{std::vector<int8_t>(static_cast<size_t>(m * n)), std::vector<float>(static_cast<size_t>(m))};
  check_cuda(cudaDeviceSynchronize(), "sync");
  check_cuda(cudaMemcpy(o.q.data(), q, o.q.size(), cudaMemcpyDeviceToHost), "copy q");
  check_cuda(cudaMemcpy(o.scale.data(), scale, o.scale.size() * 4, cudaMemcpyDeviceToHost), "copy scale");
  return o;
}

// "ok" or what differs beyond the two pipelines' rounding (int8 off by one: counted in the message).
std::string compare(const Output& a, const Output& b) {
  for (size_t i = 0; i < a.scale.size(); ++i)
    if (!(std::fabs(a.scale[i] - b.scale[i]) <= 0.01f * std::fabs(a.scale[i])))
      return "scale of row " + std::to_string(i) + ": " + std::to_string(b.scale[i]) + " vs " + std::to_string(a.scale[i]);
  size_t off_by_one = 0;
  for (size_t i = 0; i < a.q.size(); ++i) {
    const int d = std::abs(int(a.q[i]) - int(b.q[i]));
    if (d > 1) return "int8 at " + std::to_string(i) + ": " + std::to_string(b.q[i]) + " vs " + std::to_string(a.q[i]);
    off_by_one += d;
  }
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.2f", 100.0 * off_by_one / a.q.size());
  return std::string("ok (") + pct + "% of int8 off by one)";
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::vector<uint16_t> read_bf16(const uint16_t* d, size_t n) {
  std::vector<uint16_t> h(n);
  check_cuda(cudaDeviceSynchronize(), "sync");
  check_cuda(cudaMemcpy(h.data(), d, n * 2, cudaMemcpyDeviceToHost), "copy D");
  return h;
}

// "ok" or the first element of the GELU GEMM's output `g` that is not GELU of the plain output `y`.
std::string compare_gelu(const std::vector<uint16_t>& y, const std::vector<uint16_t>& g) {
  for (size_t i = 0; i < y.size(); ++i) {
    const double yi = bf16_to_float(y[i]), gi = bf16_to_float(g[i]);
    const double want = 0.5 * yi * (1.0 + std::tanh(0.7978845608028654 * (yi + 0.044715 * yi * yi * yi)));
    if (!(std::fabs(gi - want) <= std::ldexp(std::fabs(yi) + std::fabs(want), -8)))
      return "D at " + std::to_string(i) + ": " + std::to_string(gi) + ", gelu(" + std::to_string(yi) + ") = " +
             std::to_string(want);
  }
  return "ok";
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir = ".";
  std::string shape_list;  // --shapes MxNxK,...: replaces the DiT fc1 shapes
  std::string command;
  const char* usage =
      "usage: int8dit_bench_gelu_epilogue [--out DIR] [--shapes MxNxK,...]   (writes DIR/gelu_epilogue.json)\n"
      "  Times the MLP's fc1 GEMM + gelu_quantize against the same GEMM with GELU in its epilogue +\n"
      "  quantize_rows, per configuration built with the GELU epilogue, on the DiT fc1 shapes\n"
      "  (default) or --shapes (N a multiple of 8, K of 16). Hopper only.\n";
  switch (bench_cli::parse_value_options("int8dit_bench_gelu_epilogue", argc, argv,
                                         {{"--out", &out_dir}, {"--shapes", &shape_list}}, usage, &command)) {
    case bench_cli::Parsed::kHelpShown: return 0;
    case bench_cli::Parsed::kBadArgument: return 2;
    case bench_cli::Parsed::kRun: break;
  }
  std::vector<Shape> shapes = default_shapes();
  if (!shape_list.empty()) {
    shapes.clear();
    std::stringstream ss(shape_list);
    for (std::string item; std::getline(ss, item, ',');) {
      Shape s{0, 0, 0, "custom"};
      if (std::sscanf(item.c_str(), "%ldx%ldx%ld", &s.m, &s.n, &s.k) != 3 || s.m < 1 || s.n % 8 != 0 || s.k % 16 != 0) {
        std::fprintf(stderr, "int8dit_bench_gelu_epilogue: --shapes item '%s' is not MxNxK with N %% 8 == 0 and K %% 16 == 0\n",
                     item.c_str());
        return 2;
      }
      shapes.push_back(s);
    }
  }

  int8dit::DeviceInfo dev;
  require(int8dit::current_device(&dev), "current_device");
  if (dev.cc < 90) {
    std::fprintf(stderr, "int8dit_bench_gelu_epilogue: %s is sm_%d; the GELU-epilogue trial kernels are Hopper's (sm_90a)\n",
                 dev.name.c_str(), dev.cc);
    return 1;
  }
  int trial_count = 0;
  const gelu_trial::Trial* trials = gelu_trial::trials(&trial_count);
  std::printf("%s; MLP fc1: GEMM + gelu_quantize (A) against GEMM with GELU epilogue + quantize_rows (B)\n", dev.name.c_str());
  std::printf("%-17s %-36s %9s %9s %9s %9s %9s %9s %9s  %s\n", "shape", "configuration", "gemm_us", "gelu_gemm", "A_us", "B_us",
              "C_us", "gelu_q", "quant", "check");

  std::ostringstream rows;
  bool first = true;
  for (const Shape& s : shapes) {
    const size_t mk = s.m * s.k, nk = s.n * s.k, mn = s.m * s.n;
    uint16_t* x = device_alloc<uint16_t>(mk);
    uint16_t* w = device_alloc<uint16_t>(nk);
    int8_t* a = device_alloc<int8_t>(mk);
    int8_t* b = device_alloc<int8_t>(nk);
    float* sa = device_alloc<float>(s.m);
    float* sb = device_alloc<float>(s.n);
    float* bias = device_alloc<float>(s.n);
    uint16_t* d = device_alloc<uint16_t>(mn);
    int8_t* q = device_alloc<int8_t>(mn);
    float* qs = device_alloc<float>(s.m);
    bench_quant::fill_bf16(x, mk, 1u);
    bench_quant::fill_bf16(w, nk, 2u);
    bench_quant::fill_f32(bias, s.n, -1.0f, 1.0f, 3u);
    int8dit::QuantizeRowsParams qx;
    qx.rows = s.m, qx.cols = s.k, qx.x = x, qx.ldx = s.k, qx.q = a, qx.ldq = s.k, qx.scale = sa;
    require(int8dit::quantize_rows(qx, nullptr), "quantize_rows (A)");
    int8dit::QuantizeRowsParams qw = qx;
    qw.rows = s.n, qw.x = w, qw.q = b, qw.scale = sb;
    require(int8dit::quantize_weights(qw, nullptr), "quantize_weights (B)");

    int8dit::GemmParams p;
    p.m = s.m, p.n = s.n, p.k = s.k, p.a = a, p.lda = s.k, p.b = b, p.ldb = s.k, p.scale_a = sa, p.scale_b = sb;
    p.bias = bias, p.d = d, p.d_type = int8dit::DType::kBF16, p.ldd = s.n;
    int8dit::GeluQuantizeParams gq;
    gq.rows = s.m, gq.cols = s.n, gq.x = d, gq.ldx = s.n, gq.q = q, gq.ldq = s.n, gq.scale = qs;
    int8dit::QuantizeRowsParams rq;
    rq.rows = s.m, rq.cols = s.n, rq.x = d, rq.ldx = s.n, rq.q = q, rq.ldq = s.n, rq.scale = qs;
    const std::string shape = std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k);

    // The library's own pick in pipeline A: what a model runs today.
    const std::string pick = int8dit::gemm_selected_config(p);
    const double lib_gemm_us = bench_quant::median_us([&](int) { require(int8dit::gemm_w8a8(p, nullptr), "gemm"); });
    const double lib_a_us = bench_quant::median_us([&](int) {
      require(int8dit::gemm_w8a8(p, nullptr), "gemm");
      require(int8dit::gelu_quantize(gq, nullptr), "gelu_quantize");
    });
    std::printf("%-17s %-36s %9.2f %9s %9.2f %9s %9s %9s %9s  %s\n", shape.c_str(), ("library pick: " + pick).c_str(),
                lib_gemm_us, "-", lib_a_us, "-", "-", "-", "-", "-");

    for (int t = 0; t < trial_count; ++t) {
      int8dit::GemmOptions opts;
      opts.config = trials[t].config;
      if (!int8dit::gemm_can_implement(p, &opts).ok()) continue;
      const double gemm_us = bench_quant::median_us([&](int) { require(int8dit::gemm_w8a8(p, nullptr, &opts), "gemm"); });
      const double gelu_gemm_us = bench_quant::median_us([&](int) { require(trials[t].run(p, nullptr), "GELU GEMM"); });
      const double a_us = bench_quant::median_us([&](int) {
        require(int8dit::gemm_w8a8(p, nullptr, &opts), "gemm");
        require(int8dit::gelu_quantize(gq, nullptr), "gelu_quantize");
      });
      const double b_us = bench_quant::median_us([&](int) {
        require(trials[t].run(p, nullptr), "GELU GEMM");
        require(int8dit::quantize_rows(rq, nullptr), "quantize_rows");
      });
      // Where A's time goes: C is A without GELU (the same GEMM, then quantize_rows), so A - C is what
      // GELU costs inside the quantization after this GEMM and B - C what it costs in the epilogue;
      // and each quantization alone on the GEMM's output, back to back with nothing before it.
      const double c_us = bench_quant::median_us([&](int) {
        require(int8dit::gemm_w8a8(p, nullptr, &opts), "gemm");
        require(int8dit::quantize_rows(rq, nullptr), "quantize_rows");
      });
      const double gelu_quant_us = bench_quant::median_us([&](int) { require(int8dit::gelu_quantize(gq, nullptr), "gelu_quantize"); });
      const double quant_us = bench_quant::median_us([&](int) { require(int8dit::quantize_rows(rq, nullptr), "quantize_rows"); });
      // One run of each pipeline, outputs poisoned first: the GELU GEMM's D against GELU of the plain
      // GEMM's, then B's int8 output against A's.
      check_cuda(cudaMemset(q, 0x55, mn), "poison");
      check_cuda(cudaMemset(d, 0xff, mn * 2), "poison");
      require(int8dit::gemm_w8a8(p, nullptr, &opts), "gemm");
      const std::vector<uint16_t> y = read_bf16(d, mn);
      require(int8dit::gelu_quantize(gq, nullptr), "gelu_quantize");
      const Output want = read_output(q, qs, s.m, s.n);
      check_cuda(cudaMemset(q, 0x55, mn), "poison");
      check_cuda(cudaMemset(d, 0xff, mn * 2), "poison");
      require(trials[t].run(p, nullptr), "GELU GEMM");
      std::string check = compare_gelu(y, read_bf16(d, mn));
      require(int8dit::quantize_rows(rq, nullptr), "quantize_rows");
      if (check == "ok") check = compare(want, read_output(q, qs, s.m, s.n));
      std::printf("%-17s %-36s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f  %s\n", shape.c_str(), trials[t].config, gemm_us,
                  gelu_gemm_us, a_us, b_us, c_us, gelu_quant_us, quant_us, check.c_str());
      std::fflush(stdout);
      rows << (first ? "" : ",\n") << "    {\"m\": " << s.m << ", \"n\": " << s.n << ", \"k\": " << s.k << ", \"model\": \""
           << s.model << "\", \"config\": \"" << trials[t].config << "\", \"library_pick\": \"" << pick
           << "\", \"library_pick_gemm_us\": " << lib_gemm_us << ", \"library_pick_a_us\": " << lib_a_us
           << ", \"gemm_us\": " << gemm_us << ", \"gelu_gemm_us\": " << gelu_gemm_us << ", \"a_us\": " << a_us
           << ", \"b_us\": " << b_us << ", \"c_us\": " << c_us << ", \"gelu_quantize_alone_us\": " << gelu_quant_us
           << ", \"quantize_rows_alone_us\": " << quant_us << ", \"b_over_a\": " << b_us / a_us << ", \"check\": \"" << check << "\"}";
      first = false;
    }
    for (void* ptr : {static_cast<void*>(x), static_cast<void*>(w), static_cast<void*>(a), static_cast<void*>(b),
                      static_cast<void*>(sa), static_cast<void*>(sb), static_cast<void*>(bias), static_cast<void*>(d),
                      static_cast<void*>(q), static_cast<void*>(qs)})
      cudaFree(ptr);
  }

  const std::string path = out_dir + "/gelu_epilogue.json";
  std::ofstream f(path);
  f << "{\n  \"benchmark\": \"int8dit_bench_gelu_epilogue\",\n  \"command\": " << bench_cli::json_quote(command)
    << ",\n  \"date\": \"" << bench_cli::utc_now() << "\",\n  \"gpu\": {\"name\": " << bench_cli::json_quote(dev.name) << ", \"cc\": " << dev.cc << ", \"sm_count\": " << dev.sm_count
    << "},\n  \"timing\": \"CUDA events, median of 15 batches of 20 calls (a pipeline: both kernels) after 10 warm-up calls\",\n"
    << "  \"pipelines\": {\"A\": \"fc1 GEMM (bf16, bias) then gelu_quantize\", \"B\": \"fc1 GEMM with GELU in the epilogue "
       "then quantize_rows\", \"C\": \"fc1 GEMM (bf16, bias) then quantize_rows (A without GELU)\"},\n  \"rows\": [\n" << rows.str() << "\n  ]\n}\n";
  if (!f) {
    std::fprintf(stderr, "int8dit_bench_gelu_epilogue: cannot write %s\n", path.c_str());
    return 1;
  }
  std::printf("wrote %s\n", path.c_str());
  return 0;
}
