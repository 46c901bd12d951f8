// int8dit_quant_after_producer: what a quantization kernel costs when the kernel just before it in the
// stream wrote its input, as in a DiT block (the residual stream's gated update, then the next norm).
// int8dit_bench_quant times each kernel on inputs nobody has just written (they rotate through >= 256
// MB, so every call reads DRAM); here each call of the consumer follows a gated_add that writes the
// consumer's input (x + gate * update, bf16, [M, K]), both launched as the library launches them
// (programmatically on Hopper), buffers rotating as in the benchmark. Per case it prints:
//   producer  gated_add alone (writing the buffer the consumer would read)
//   consumer  the consumer alone, on the same rotating buffers (as int8dit_bench_quant times it)
//   pair      gated_add then the consumer, a call of each
//   marginal  pair - producer: what the consumer adds behind its producer
// With --gemm-n N, the int8 rows then feed the W8A8 GEMM that consumes them in a model (weights [N, K],
// bf16 out), and it also prints:
//   gemm      the GEMM alone, on the rotating int8 rows (nobody has just written them)
//   chain     gated_add, the consumer, then the GEMM
//   gemm+     chain - pair: what the GEMM adds behind the quantization that wrote its rows (a change to
//             how the quantization stores its rows, say evict-first, shows here if the GEMM pays for it)
// For an A/B of two builds of libint8dit.so, run it under each (LD_LIBRARY_PATH). Prints only: it is a
// probe for a kernel change, not a results file.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "int8dit/gemm.h"
#include "int8dit/quantize.h"
#include "int8dit/residual.h"
#include "timing.h"

namespace {

using bench_quant::device_alloc;

void require_ok(const int8dit::Status& st, const char* what) {
  if (st.ok()) return;
  std::fprintf(stderr, "int8dit_quant_after_producer: %s failed: %s\n", what, st.to_string().c_str());
  std::exit(1);
}

struct Set {
  uint16_t* x = nullptr;       // the residual stream before the update
  uint16_t* update = nullptr;  // the block's output added to it
  uint16_t* r = nullptr;       // x + gate * update: the consumer's input
  int8_t* q = nullptr;
  float* scale = nullptr;
  uint16_t* d = nullptr;  // the GEMM's bf16 output, [M, N] (with --gemm-n)
};

void run_case(const std::string& op, int64_t m, int64_t k, int64_t gemm_n) {
  const size_t mk = static_cast<size_t>(m * k);
  // Each set moves ~5 bytes an element (the update's 6 and the consumer's 3, shared by the sets' r):
  // >= 256 MB in all, as in int8dit_bench_quant, so that nothing is served from L2 by accident.
  const int sets = static_cast<int>(std::clamp(256e6 / (9.0 * mk) + 1.0, 2.0, 16.0));
  std::vector<Set> bufs(static_cast<size_t>(sets));
  for (int s = 0; s < sets; ++s) {
    bufs[s].x = device_alloc<uint16_t>(mk), bufs[s].update = device_alloc<uint16_t>(mk);
    bufs[s].r = device_alloc<uint16_t>(mk), bufs[s].q = device_alloc<int8_t>(mk);
    bufs[s].scale = device_alloc<float>(static_cast<size_t>(m));
    if (gemm_n > 0) bufs[s].d = device_alloc<uint16_t>(static_cast<size_t>(m * gemm_n));
    bench_quant::fill_bf16(bufs[s].x, mk, 100u + s);
    bench_quant::fill_bf16(bufs[s].update, mk, 200u + s);
    bench_quant::fill_bf16(bufs[s].r, mk, 300u + s);
  }
  uint16_t* mod = device_alloc<uint16_t>(static_cast<size_t>(2 * k));  // shift | scale, and the gate
  float* smooth = device_alloc<float>(static_cast<size_t>(k));
  bench_quant::fill_bf16(mod, static_cast<size_t>(2 * k), 7u);
  bench_quant::fill_f32(smooth, static_cast<size_t>(k), 0.5f, 2.0f, 8u);
  // The GEMM's weights and their scales, shared by every call as a model's layer shares them (the
  // values' bits are whatever the bf16 fill leaves: the GEMM's time does not depend on them).
  int8_t* weight = gemm_n > 0 ? device_alloc<int8_t>(static_cast<size_t>(gemm_n * k)) : nullptr;
  float* weight_scale = gemm_n > 0 ? device_alloc<float>(static_cast<size_t>(gemm_n)) : nullptr;
  if (gemm_n > 0) {
    bench_quant::fill_bf16(reinterpret_cast<uint16_t*>(weight), static_cast<size_t>(gemm_n * k / 2), 9u);
    bench_quant::fill_f32(weight_scale, static_cast<size_t>(gemm_n), 1e-3f, 2e-3f, 10u);
  }
  bench_quant::check_cuda(cudaDeviceSynchronize(), "fill");

  auto producer = [&](const Set& b) {
    int8dit::GatedAddParams p;
    p.rows = m, p.cols = k, p.x = b.x, p.ldx = k, p.update = b.update, p.ld_update = k;
    p.gate = mod, p.ld_gate = 2 * k, p.tokens_per_batch = m, p.out = b.r, p.ld_out = k;
    require_ok(int8dit::gated_add(p, nullptr), "gated_add");
  };
  auto consumer = [&](const Set& b) {
    if (op == "layernorm_modulate_quantize") {
      int8dit::LayerNormModulateQuantizeParams p;
      p.rows = m, p.cols = k, p.x = b.r, p.ldx = k, p.eps = 1e-6f, p.tokens_per_batch = m;
      p.mod_shift = mod, p.mod_scale = mod + k, p.ld_mod = 2 * k, p.q = b.q, p.ldq = k, p.scale = b.scale;
      require_ok(int8dit::layernorm_modulate_quantize(p, nullptr), op.c_str());
    } else if (op == "rmsnorm_quantize") {
      int8dit::RmsNormQuantizeParams p;
      p.rows = m, p.cols = k, p.x = b.r, p.ldx = k, p.eps = 1e-6f, p.weight = mod, p.q = b.q, p.ldq = k, p.scale = b.scale;
      require_ok(int8dit::rmsnorm_quantize(p, nullptr), op.c_str());
    } else if (op == "gelu_quantize") {
      int8dit::GeluQuantizeParams p;
      p.rows = m, p.cols = k, p.x = b.r, p.ldx = k, p.q = b.q, p.ldq = k, p.scale = b.scale;
      require_ok(int8dit::gelu_quantize(p, nullptr), op.c_str());
    } else {  // quantize_rows, quantize_rows+smooth
      int8dit::QuantizeRowsParams p;
      p.rows = m, p.cols = k, p.x = b.r, p.ldx = k, p.q = b.q, p.ldq = k, p.scale = b.scale;
      p.smooth = op == "quantize_rows+smooth" ? smooth : nullptr;
      require_ok(int8dit::quantize_rows(p, nullptr), op.c_str());
    }
  };
  auto gemm_params = [&](const Set& b) {
    int8dit::GemmParams p;
    p.m = m, p.n = gemm_n, p.k = k, p.a = b.q, p.lda = k, p.b = weight, p.ldb = k;
    p.scale_a = b.scale, p.scale_b = weight_scale, p.d = b.d, p.d_type = int8dit::DType::kBF16, p.ldd = gemm_n;
    return p;
  };
  size_t workspace_bytes = gemm_n > 0 ? int8dit::gemm_workspace_size(gemm_params(bufs[0])) : 0;
  void* workspace = workspace_bytes > 0 ? device_alloc<char>(workspace_bytes) : nullptr;
  auto gemm = [&](const Set& b) {
    int8dit::GemmParams p = gemm_params(b);
    p.workspace = workspace, p.workspace_bytes = workspace_bytes;
    require_ok(int8dit::gemm_w8a8(p, nullptr), "gemm_w8a8");
  };
  auto set_of = [&](int call) -> const Set& { return bufs[static_cast<size_t>(call % sets)]; };
  const double producer_us = bench_quant::median_us([&](int call) { producer(set_of(call)); });
  const double consumer_us = bench_quant::median_us([&](int call) { consumer(set_of(call)); });
  const double pair_us = bench_quant::median_us([&](int call) {
    producer(set_of(call));
    consumer(set_of(call));
  });
  std::printf("%-28s %5lld x %-6lld %9.2f %9.2f %9.2f %9.2f %8.3f", op.c_str(), static_cast<long long>(m),
              static_cast<long long>(k), producer_us, consumer_us, pair_us, pair_us - producer_us,
              (pair_us - producer_us) / consumer_us);
  if (gemm_n > 0) {
    // Every set's rows and scales are already written: the timings above called the consumer on each set.
    const double gemm_us = bench_quant::median_us([&](int call) { gemm(set_of(call)); });
    const double chain_us = bench_quant::median_us([&](int call) {
      producer(set_of(call));
      consumer(set_of(call));
      gemm(set_of(call));
    });
    std::printf(" %9.2f %9.2f %9.2f", gemm_us, chain_us, chain_us - pair_us);
  }
  std::printf("\n");
  for (Set& b : bufs) {
    cudaFree(b.x), cudaFree(b.update), cudaFree(b.r), cudaFree(b.q), cudaFree(b.scale), cudaFree(b.d);
  }
  cudaFree(mod), cudaFree(smooth), cudaFree(weight), cudaFree(weight_scale), cudaFree(workspace);
}

// "OP@MxK" -> (op, m, k); false where the text is not one.
bool parse_case(const std::string& text, std::string* op, int64_t* m, int64_t* k) {
  const size_t at = text.find('@'), x = text.find('x', at == std::string::npos ? 0 : at);
  if (at == std::string::npos || x == std::string::npos) return false;
  *op = text.substr(0, at);
  char* end = nullptr;
  *m = std::strtoll(text.c_str() + at + 1, &end, 10);
  if (end != text.c_str() + x) return false;
  *k = std::strtoll(text.c_str() + x + 1, &end, 10);
  return *end == '\0' && *m > 0 && *k > 0 && *k % 8 == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: int8dit_quant_after_producer [--gemm-n N] [OP@MxK ...]\n"
      "  Times each case alone and behind a gated_add that writes its input; prints a table. OP: quantize_rows,\n"
      "  quantize_rows+smooth, layernorm_modulate_quantize, rmsnorm_quantize, gelu_quantize; K a multiple of 8.\n"
      "  Default: the five ops at 4096 x 3072 and 4608 x 3072.\n"
      "  --gemm-n N: the int8 rows then feed a W8A8 GEMM with N output channels (bf16 out); adds its time\n"
      "  alone, the chain of all three, and what the GEMM adds behind the quantization (N a multiple of 8).\n";
  const std::vector<std::string> ops = {"quantize_rows", "quantize_rows+smooth", "layernorm_modulate_quantize",
                                        "rmsnorm_quantize", "gelu_quantize"};
  struct Case {
    std::string op;
    int64_t m, k;
  };
  std::vector<Case> cases;
  int64_t gemm_n = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", usage);
      return 0;
    }
    if (arg == "--gemm-n") {
      char* end = nullptr;
      gemm_n = i + 1 < argc ? std::strtoll(argv[i + 1], &end, 10) : 0;
      if (i + 1 >= argc || *end != '\0' || gemm_n <= 0 || gemm_n % 8 != 0) {
        std::fprintf(stderr, "int8dit_quant_after_producer: --gemm-n takes a positive multiple of 8\n%s", usage);
        return 2;
      }
      ++i;
      continue;
    }
    Case c;
    if (!parse_case(arg, &c.op, &c.m, &c.k) || std::find(ops.begin(), ops.end(), c.op) == ops.end()) {
      std::fprintf(stderr, "int8dit_quant_after_producer: '%s' is not a case (OP@MxK)\n%s", arg.c_str(), usage);
      return 2;
    }
    cases.push_back(c);
  }
  if (cases.empty()) {
    for (const int64_t m : {4096, 4608}) {
      for (const std::string& op : ops) cases.push_back({op, m, 3072});
    }
  }
  int device_count = 0;
  if (cudaGetDeviceCount(&device_count) != cudaSuccess || device_count == 0) {
    std::fprintf(stderr, "int8dit_quant_after_producer: no CUDA GPU visible; this probe times GPU kernels\n");
    return 1;
  }
  std::printf("%-28s %14s %9s %9s %9s %9s %8s", "consumer", "M x K", "producer", "consumer", "pair", "marginal",
              "marg/con");
  if (gemm_n > 0) std::printf(" %9s %9s %9s", "gemm", "chain", "gemm+");
  std::printf("\n");
  for (const Case& c : cases) run_case(c.op, c.m, c.k, gemm_n);
  return 0;
}
