// sm90_probe: TOPS of every bf16 Hopper configuration (and the heuristic's pick) on the Flux-dev and
// DiT-XL/2 linear shapes, plus the host cost of one call. Not the benchmark (bench/gemm is): no
// baselines, no JSON; it exists to pick tiles and to check the heuristic.
//
// Timing: kIters runs queued back to back after kWarmup, an event between consecutive runs, median
// of the intervals; A and B rotate through enough copies that one run's operands are never in L2
// (50 MB on H100) from the previous run. Host cost is measured apart, at the end.
//
//   sm90_probe [MxNxK ...]       these shapes instead of the built-in list
//   PROBE_EPILOGUE=tensor        per-tensor scales and no bias (isolates the broadcast loads of the
//                                epilogue: per-row scale_a, per-column scale_b and bias)
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "int8dit/int8dit.h"

namespace {

constexpr int kWarmup = 10;
constexpr int kIters = 50;
constexpr size_t kRotateBytes = 256u << 20;  // > 5x L2
constexpr size_t kFillerBytes = size_t(4) << 30;  // ~1.5 ms of memset: time for the host to queue all runs

struct Shape {
  const char* label;
  int64_t m, n, k;
};

#define CHECK_CUDA(x)                                                             \
  do {                                                                            \
    cudaError_t err = (x);                                                        \
    if (err != cudaSuccess) {                                                     \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(err)); \
      std::exit(1);                                                               \
    }                                                                             \
  } while (0)

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace int8dit;
  DeviceInfo dev;
  Status st = current_device(&dev);
  if (!st.ok() || dev.family != KernelFamily::kSm90Wgmma || !dev.family_built) {
    std::printf("sm90_probe: needs a Hopper GPU and a build with 90a (%s)\n", st.to_string().c_str());
    return 0;
  }
  std::printf("device: %s, %d SMs\n", dev.name.c_str(), dev.sm_count);

  std::vector<std::string> labels;  // owns the labels of shapes given on the command line
  for (int i = 1; i < argc; ++i) labels.emplace_back(argv[i]);
  std::vector<Shape> shapes = {
      {"flux single lin1", 4608, 21504, 3072}, {"flux single lin2", 4608, 3072, 15360},
      {"flux img qkv", 4096, 9216, 3072},      {"flux img proj", 4096, 3072, 3072},
      {"flux img fc1", 4096, 12288, 3072},     {"flux img fc2", 4096, 3072, 12288},
      {"flux txt qkv", 512, 9216, 3072},       {"flux txt proj", 512, 3072, 3072},
      {"flux txt fc1", 512, 12288, 3072},      {"flux txt fc2", 512, 3072, 12288},
      {"dit-xl qkv", 2048, 3456, 1152},        {"dit-xl proj", 2048, 1152, 1152},
      {"dit-xl fc1", 2048, 4608, 1152},        {"dit-xl fc2", 2048, 1152, 4608},
      {"square 8192", 8192, 8192, 8192},       {"M=1 proj", 1, 3072, 3072},
  };

  if (!labels.empty()) {
    shapes.clear();
    for (const std::string& l : labels) {
      long long m = 0, n = 0, k = 0;
      if (std::sscanf(l.c_str(), "%lldx%lldx%lld", &m, &n, &k) != 3 || m < 1 || n < 1 || k < 16 || n > 21504 ||
          m * n > 8192LL * 21504) {
        std::printf("sm90_probe: '%s' is not a shape MxNxK (N <= 21504, M*N <= 8192*21504)\n", l.c_str());
        return 2;
      }
      shapes.push_back({l.c_str(), m, n, k});
    }
  }
  const char* epilogue_env = std::getenv("PROBE_EPILOGUE");
  const bool per_tensor = epilogue_env && std::string(epilogue_env) == "tensor";
  std::printf("epilogue: %s\n", per_tensor ? "per-tensor scales, no bias" : "per-row x per-column scales, bias");

  // Operand pool: random int8, rotated through so every run reads A and B from DRAM.
  std::vector<int8_t> host(kRotateBytes);
  std::mt19937 rng(1);
  for (size_t i = 0; i < host.size(); i += 4) {
    uint32_t r = rng();
    for (int j = 0; j < 4; ++j) host[i + j] = static_cast<int8_t>(int((r >> (8 * j)) & 0xff) % 255 - 127);
  }
  int8_t* pool = nullptr;
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&pool), kRotateBytes));
  CHECK_CUDA(cudaMemcpy(pool, host.data(), kRotateBytes, cudaMemcpyHostToDevice));
  const int64_t max_mn = 8192 * 21504;
  void* d = nullptr;
  float *sa = nullptr, *sb = nullptr, *bias = nullptr;
  CHECK_CUDA(cudaMalloc(&d, max_mn * 2));
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&sa), 21504 * 4));
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&sb), 21504 * 4));
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&bias), 21504 * 4));
  std::vector<float> ones(21504, 1e-4f);
  CHECK_CUDA(cudaMemcpy(sa, ones.data(), ones.size() * 4, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(sb, ones.data(), ones.size() * 4, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(bias, ones.data(), ones.size() * 4, cudaMemcpyHostToDevice));
  void* ws = nullptr;
  size_t ws_bytes = 0;
  std::vector<cudaEvent_t> events(kIters + 1);
  for (cudaEvent_t& event : events) CHECK_CUDA(cudaEventCreate(&event));
  void* filler = nullptr;  // target of the memset that keeps the GPU busy while the host queues runs
  CHECK_CUDA(cudaMalloc(&filler, kFillerBytes));

  std::vector<std::string> configs;
  for (const std::string& c : split(gemm_config_names()))
    if (c.find("_bf16_") != std::string::npos) configs.push_back(c);
  configs.push_back("");  // the heuristic

  auto params_for = [&](const Shape& s, int slot) {
    GemmParams p;
    p.m = s.m, p.n = s.n, p.k = s.k;
    const int64_t bytes = (s.m + s.n) * s.k;
    const int64_t slots = std::max<int64_t>(1, int64_t(kRotateBytes) / bytes);
    const int8_t* base = pool + (slot % slots) * bytes;
    p.a = base, p.lda = s.k, p.b = base + s.m * s.k, p.ldb = s.k;
    p.scale_a = sa, p.scale_b = sb, p.bias = per_tensor ? nullptr : bias;
    if (per_tensor) p.scale_a_mode = ScaleMode::kPerTensor, p.scale_b_mode = ScaleMode::kPerTensor;
    p.d = d, p.d_type = DType::kBF16, p.ldd = s.n;
    return p;
  };

  std::printf("\n%-18s %-40s %9s %8s %6s\n", "shape", "config", "ms", "TOPS", "peak%");
  for (const Shape& s : shapes) {
    double best = 0;
    std::string best_name;
    for (const std::string& c : configs) {
      GemmOptions opts;
      opts.config = c.empty() ? nullptr : c.c_str();
      opts.check_pointers = false;
      GemmParams p = params_for(s, 0);
      const std::string name = gemm_selected_config(p, &opts);
      if (name.empty()) continue;
      const size_t need = gemm_workspace_size(p, &opts);
      if (need > ws_bytes) {
        CHECK_CUDA(cudaFree(ws));
        CHECK_CUDA(cudaMalloc(&ws, need));
        ws_bytes = need;
      }
      // Warm-up, then the timed runs back to back behind a long memset, so the host's dispatch and
      // launch cost is hidden (the host runs ahead) and the events bracket GPU time only.
      bool ok = true;
      for (int it = 0; it < kWarmup && ok; ++it) {
        p = params_for(s, it);
        p.workspace = ws, p.workspace_bytes = ws_bytes;
        ok = gemm_w8a8(p, nullptr, &opts).ok();
      }
      CHECK_CUDA(cudaMemsetAsync(filler, 0, kFillerBytes));
      CHECK_CUDA(cudaEventRecord(events[0]));
      for (int it = 0; it < kIters && ok; ++it) {
        p = params_for(s, kWarmup + it);
        p.workspace = ws, p.workspace_bytes = ws_bytes;
        Status r = gemm_w8a8(p, nullptr, &opts);
        CHECK_CUDA(cudaEventRecord(events[it + 1]));
        if (!r.ok()) {
          std::printf("%-18s %-40s failed: %s\n", s.label, name.c_str(), r.to_string().c_str());
          ok = false;
        }
      }
      CHECK_CUDA(cudaDeviceSynchronize());
      std::vector<float> ms;
      for (int it = 0; it < kIters && ok; ++it) {
        float t = 0;
        CHECK_CUDA(cudaEventElapsedTime(&t, events[it], events[it + 1]));
        ms.push_back(t);
      }
      if (!ok) continue;
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      const double tops = 2.0 * s.m * s.n * s.k / (med * 1e-3) / 1e12;
      std::printf("%-18s %-40s %9.4f %8.1f %6.1f\n", s.label, (c.empty() ? "heuristic -> " + name : name).c_str(), med,
                  tops, 100.0 * tops / 1979.0);
      if (!c.empty() && tops > best) best = tops, best_name = name;
    }
    std::printf("%-18s best: %s %.1f TOPS\n\n", s.label, best_name.c_str(), best);
  }

  // Host cost of one call at M = 1 (validation, dispatch, launch): batches of 10 calls, far below what
  // the launch queue holds, so the host never waits on the GPU; every call must succeed.
  for (const Shape& s : {Shape{"M=1 N=3072 K=3072", 1, 3072, 3072}, Shape{"M=1 N=128 K=64", 1, 128, 64}}) {
    for (bool check : {false, true}) {
      GemmOptions opts;
      opts.check_pointers = check;
      GemmParams p = params_for(s, 0);
      const size_t need = gemm_workspace_size(p, &opts);
      if (need > ws_bytes) {
        CHECK_CUDA(cudaFree(ws));
        CHECK_CUDA(cudaMalloc(&ws, need));
        ws_bytes = need;
      }
      p.workspace = ws, p.workspace_bytes = ws_bytes;
      std::vector<double> us;
      for (int batch = 0; batch < 200; ++batch) {
        CHECK_CUDA(cudaDeviceSynchronize());
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 10; ++i) {
          Status r = gemm_w8a8(p, nullptr, &opts);
          if (!r.ok()) {
            std::printf("host timing call failed: %s\n", r.to_string().c_str());
            return 1;
          }
        }
        auto t1 = std::chrono::steady_clock::now();
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / 10);
      }
      std::sort(us.begin(), us.end());
      std::printf("host_us_per_call (%s, %s, check_pointers=%d): median %.2f us, min %.2f us\n", s.label,
                  gemm_selected_config(p, &opts).c_str(), check, us[us.size() / 2], us[0]);
    }
  }
  // Where the time goes: validation + dispatch alone, and the cheapest async runtime call.
  {
    GemmParams p = params_for({"", 1, 128, 64}, 0);
    GemmOptions opts;
    opts.check_pointers = false;
    auto per_call_us = [](auto&& fn) {
      std::vector<double> us;
      for (int batch = 0; batch < 200; ++batch) {
        CHECK_CUDA(cudaDeviceSynchronize());
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 10; ++i) fn();
        auto t1 = std::chrono::steady_clock::now();
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / 10);
      }
      std::sort(us.begin(), us.end());
      return us[us.size() / 2];
    };
    std::printf("host us, median: validate+dispatch (gemm_can_implement) %.2f, cudaMemsetAsync(4 B) %.2f\n",
                per_call_us([&] { gemm_can_implement(p, &opts); }),
                per_call_us([&] { cudaMemsetAsync(filler, 0, 4); }));
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  return 0;
}
