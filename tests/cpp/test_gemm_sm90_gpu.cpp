// GPU correctness of the Hopper (sm_90a) W8A8 GEMM kernels, every configuration forced by name and the
// heuristic's pick, against the CPU reference:
//   - int32 output: bit-exact against int8dit::ref::gemm_w8a8;
//   - bf16 / fp16: within 1 ulp of the reference computed in double from the reference's int32
//     accumulator, fp32 within 4 ulp (DESIGN.md "Testing");
//   - ragged M, N and K, per-tensor and per-row/column scales, with and without bias, strided views;
//     the output is poisoned (NaN / an impossible int32) before every run, every element of the
//     [M, N] view must be written and the padding columns [N, ldd) and rows past M stay untouched
//     (a TMA store clips at 16 bytes, not per element: N not a multiple of 16 bytes is in the set).
// Inputs are fresh random values on every run; the seed is printed with any failure.
// INT8DIT_SMALL_SHAPES=1 narrows the shape set (compute-sanitizer runs).
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "int8dit/reference.h"
#include "sm90_test_support.h"

namespace int8dit {
namespace {

bool small_shapes() {
  const char* v = std::getenv("INT8DIT_SMALL_SHAPES");
  return v && *v && std::strcmp(v, "0") != 0;
}

using test::output_type_of;
using test::sm90_config_names;
#define SKIP_UNLESS_HOPPER() INT8DIT_SKIP_UNLESS_HOPPER("sm90 GEMM tests")

// ---- numbers ----

float bf16_to_float(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float fp16_to_float(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0x1f) v = mant ? NAN : INFINITY;
  else if (exp == 0) v = std::ldexp(float(mant), -24);
  else v = std::ldexp(float(mant | 0x400), int(exp) - 25);
  return sign ? -v : v;
}

// One unit in the last place of `v` in a type with `mantissa_bits` explicit bits whose smallest
// normal exponent is `min_exp` (subnormals share the ulp of the smallest normal binade).
double ulp(double v, int mantissa_bits, int min_exp) {
  int e = 0;
  std::frexp(v, &e);  // v = f * 2^e, 0.5 <= |f| < 1
  return std::ldexp(1.0, std::max(e - 1, min_exp) - mantissa_bits);
}

// ---- one problem ----

struct Problem {
  int64_t m, n, k;
  int64_t lda_pad = 0, ldb_pad = 0, ldd_pad = 0;  // extra elements per row: strided views
  ScaleMode sa_mode = ScaleMode::kPerRow;
  ScaleMode sb_mode = ScaleMode::kPerCol;
  bool bias = true;

  std::string describe() const {
    return "M=" + std::to_string(m) + " N=" + std::to_string(n) + " K=" + std::to_string(k) +
           " lda=K+" + std::to_string(lda_pad) + " ldb=K+" + std::to_string(ldb_pad) + " ldd=N+" +
           std::to_string(ldd_pad) + (sa_mode == ScaleMode::kPerRow ? " sa/row" : " sa/tensor") +
           (sb_mode == ScaleMode::kPerCol ? " sb/col" : " sb/tensor") + (bias ? " bias" : " no-bias");
  }
};

template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t count) {
    if (count) EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr), count * sizeof(T)), cudaSuccess);
  }
  DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    if (ptr) EXPECT_EQ(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

constexpr int32_t kInt32Poison = 0x7fffffff;  // |acc| <= 127*127*K < 2^31 - 1: never a real result

// Runs one problem on the GPU (config forced by name, or the heuristic when `config` is empty) and
// checks every output element. Returns the configuration that ran.
std::string run_and_check(const Problem& pr, DType d_type, const std::string& config) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(pr.describe() + " out=" + to_string(d_type) + " config=" + (config.empty() ? "<heuristic>" : config) +
               " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> q(-127, 127);
  // Scales sized so that acc * sa * sb is O(1), like the bias: both terms of the epilogue matter.
  const float unit_scale = 1.f / (73.f * std::pow(float(pr.k), 0.25f));
  std::uniform_real_distribution<float> scale(0.5f * unit_scale, 2.f * unit_scale), bias_value(-2.f, 2.f);

  const bool raw = d_type == DType::kInt32;
  const int64_t esize = static_cast<int64_t>(size_of(d_type));
  const int64_t d_align = 16 / esize;
  const int64_t lda = pr.k + pr.lda_pad, ldb = pr.k + pr.ldb_pad;
  const int64_t ldd = (pr.n + pr.ldd_pad + d_align - 1) / d_align * d_align;

  // Padding bytes of A and B hold random values too: a kernel that reads them gets a wrong sum.
  std::vector<int8_t> a(pr.m * lda), b(pr.n * ldb);
  for (auto& v : a) v = static_cast<int8_t>(q(rng));
  for (auto& v : b) v = static_cast<int8_t>(q(rng));
  std::vector<float> sa(pr.sa_mode == ScaleMode::kPerRow ? pr.m : 1), sb(pr.sb_mode == ScaleMode::kPerCol ? pr.n : 1);
  for (auto& v : sa) v = scale(rng);
  for (auto& v : sb) v = scale(rng);
  std::vector<float> bias(pr.n);
  for (auto& v : bias) v = bias_value(rng);

  // The exact accumulator from the CPU reference (rows padded to 16 bytes, as validate() asks).
  const int64_t ld_acc = (pr.n + 3) / 4 * 4;
  std::vector<int32_t> acc(pr.m * ld_acc);
  {
    GemmParams r;
    r.m = pr.m, r.n = pr.n, r.k = pr.k, r.a = a.data(), r.lda = lda, r.b = b.data(), r.ldb = ldb;
    r.d = acc.data(), r.d_type = DType::kInt32, r.ldd = ld_acc;
    Status st = ref::gemm_w8a8(r);
    EXPECT_TRUE(st.ok()) << "CPU reference: " << st.to_string();
    if (!st.ok()) return "";
  }

  DeviceBuffer<int8_t> d_a(a), d_b(b);
  DeviceBuffer<float> d_sa(sa), d_sb(sb), d_bias(bias);
  // D gets kGuardRows extra rows after its M rows: rows past M must stay untouched too.
  constexpr int64_t kGuardRows = 2;
  const int64_t rows = pr.m + kGuardRows;
  std::vector<uint8_t> poison(rows * ldd * esize, 0xff);  // all-ones: NaN in bf16, fp16 and fp32
  if (raw)
    for (int64_t i = 0; i < rows * ldd; ++i) std::memcpy(&poison[i * 4], &kInt32Poison, 4);
  DeviceBuffer<uint8_t> d_d(poison);

  GemmParams p;
  p.m = pr.m, p.n = pr.n, p.k = pr.k;
  p.a = d_a.ptr, p.lda = lda, p.b = d_b.ptr, p.ldb = ldb;
  if (!raw) {
    p.scale_a = d_sa.ptr, p.scale_a_mode = pr.sa_mode;
    p.scale_b = d_sb.ptr, p.scale_b_mode = pr.sb_mode;
    p.bias = pr.bias ? d_bias.ptr : nullptr;
  }
  p.d = d_d.ptr, p.d_type = d_type, p.ldd = ldd;

  GemmOptions opts;
  opts.config = config.empty() ? nullptr : config.c_str();
  const std::string ran = gemm_selected_config(p, &opts);
  EXPECT_FALSE(ran.empty()) << "no configuration serves the problem: " << gemm_can_implement(p, &opts).to_string();
  const size_t ws_bytes = gemm_workspace_size(p, &opts);
  DeviceBuffer<uint8_t> ws(ws_bytes);
  p.workspace = ws.ptr, p.workspace_bytes = ws_bytes;

  Status st = gemm_w8a8(p, nullptr, &opts);
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess) << cudaGetErrorString(cudaGetLastError());
  std::vector<uint8_t> out(poison.size());
  EXPECT_EQ(cudaMemcpy(out.data(), d_d.ptr, out.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  if (!st.ok()) return ran;

  int64_t bad = 0, untouched = 0, outside_written = 0;
  const int mant = d_type == DType::kBF16 ? 7 : d_type == DType::kFP16 ? 10 : 23;
  const int min_exp = d_type == DType::kFP16 ? -14 : -126;
  const double ulps = d_type == DType::kFP32 ? 4.0 : 1.0;
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < ldd; ++j) {
      const uint8_t* e = &out[(i * ldd + j) * esize];
      if (i >= pr.m || j >= pr.n) {  // guard rows, padding of a strided view: must keep the poison
        outside_written += std::memcmp(e, &poison[(i * ldd + j) * esize], esize) != 0;
        continue;
      }
      const int32_t exact = acc[i * ld_acc + j];
      if (raw) {
        int32_t got;
        std::memcpy(&got, e, 4);
        untouched += got == kInt32Poison;
        if (got != exact && bad++ < 5)
          ADD_FAILURE() << "int32 D[" << i << "][" << j << "] = " << got << ", reference " << exact;
        continue;
      }
      float got;
      if (d_type == DType::kFP32) {
        std::memcpy(&got, e, 4);
      } else {
        uint16_t h;
        std::memcpy(&h, e, 2);
        got = d_type == DType::kBF16 ? bf16_to_float(h) : fp16_to_float(h);
      }
      // The fp32 pipeline of DESIGN.md, in double: float(acc) and sa*sb (an fp32 product) are its inputs.
      const float sab = sa[pr.sa_mode == ScaleMode::kPerRow ? i : 0] * sb[pr.sb_mode == ScaleMode::kPerCol ? j : 0];
      const double want = double(float(exact)) * double(sab) + (pr.bias ? double(bias[j]) : 0.0);
      untouched += std::isnan(got);
      if (!(std::fabs(double(got) - want) <= ulps * ulp(want, mant, min_exp)) && bad++ < 5)
        ADD_FAILURE() << to_string(d_type) << " D[" << i << "][" << j << "] = " << got << ", reference " << want
                      << " (acc " << exact << "), off by " << std::fabs(double(got) - want) / ulp(want, mant, min_exp)
                      << " ulp";
    }
  }
  EXPECT_EQ(bad, 0) << "elements outside the bound";
  EXPECT_EQ(untouched, 0) << "elements of [M, N] still hold the poison (never written, or NaN)";
  EXPECT_EQ(outside_written, 0) << "elements outside [M, N] (padding columns [N, ldd), rows past M) were written";
  return ran;
}

// The ragged shape set of DESIGN.md: M over {1,7,63,64,65,127,128,129,1000,4608}, N off every tile
// width, K from 16 to 15360. Each shape gets one combination of scale modes, bias and strides, so the
// set covers all of them; CPU reference cost stays about 4 G multiply-adds per configuration.
std::vector<Problem> ragged_problems() {
  struct Shape {
    int64_t m, n, k;
  };
  std::vector<Shape> shapes = {{1, 129, 16},      {7, 200, 48},     {63, 257, 128},   {64, 384, 144},
                               {65, 520, 1024},   {127, 96, 2064},  {128, 1000, 512}, {129, 1152, 1152},
                               {1000, 777, 320},  {4608, 136, 3072}, {33, 72, 15360}, {300, 3072, 256}};
  if (small_shapes()) shapes = {{1, 129, 16}, {65, 200, 144}, {129, 264, 1024}};
  std::vector<Problem> problems;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Problem p{shapes[i].m, shapes[i].n, shapes[i].k};
    p.sa_mode = i % 2 ? ScaleMode::kPerTensor : ScaleMode::kPerRow;
    p.sb_mode = (i / 2) % 2 ? ScaleMode::kPerTensor : ScaleMode::kPerCol;
    p.bias = i % 3 != 2;
    if (i % 3 == 1) p.lda_pad = 32, p.ldb_pad = 16, p.ldd_pad = 24;
    problems.push_back(p);
  }
  return problems;
}

// ---- tests ----

class Sm90GemmConfig : public ::testing::TestWithParam<std::string> {};

TEST_P(Sm90GemmConfig, RaggedShapesScalesBiasStrides) {
  SKIP_UNLESS_HOPPER();
  const std::string& config = GetParam();
  const DType d_type = output_type_of(config);
  for (const Problem& pr : ragged_problems()) {
    EXPECT_EQ(run_and_check(pr, d_type, config), config);
    if (HasFailure()) return;  // the first failing shape says enough
  }
}

INSTANTIATE_TEST_SUITE_P(Sm90, Sm90GemmConfig, ::testing::ValuesIn(sm90_config_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// The heuristic's pick for each M bucket and the shape families of the issue (small N/K variants).
TEST(Sm90GemmHeuristic, Bf16EveryMBucket) {
  SKIP_UNLESS_HOPPER();
  std::vector<Problem> problems = {{1, 3072, 3072}, {7, 1152, 4608}, {200, 1000, 1152}, {512, 3072, 1024},
                                   {1000, 1152, 1152}, {2048, 1152, 256}, {4608, 640, 512}};
  if (small_shapes()) problems = {{1, 3072, 256}, {512, 384, 256}};
  for (size_t i = 0; i < problems.size(); ++i) {
    problems[i].sa_mode = i % 2 ? ScaleMode::kPerTensor : ScaleMode::kPerRow;
    problems[i].bias = i % 3 != 0;
    const std::string ran = run_and_check(problems[i], DType::kBF16, "");
    EXPECT_NE(ran.find("sm90_bf16_"), std::string::npos) << ran;
    if (HasFailure()) return;
  }
}

TEST(Sm90GemmHeuristic, Fp16Fp32Int32Outputs) {
  SKIP_UNLESS_HOPPER();
  const Problem pr{129, 520, 1024};
  for (DType t : {DType::kFP16, DType::kFP32, DType::kInt32}) {
    const std::string ran = run_and_check(pr, t, "");
    EXPECT_NE(ran.find(std::string("sm90_") + to_string(t)), std::string::npos) << ran;
  }
}

TEST(Sm90Gemm, EmptyBatchWritesNothing) {
  SKIP_UNLESS_HOPPER();
  GemmParams p;
  p.m = 0, p.n = 64, p.k = 64, p.lda = 64, p.ldb = 64, p.ldd = 64;
  EXPECT_TRUE(gemm_w8a8(p, nullptr).ok());
}

TEST(Sm90Gemm, ForcedConfigWithWrongOutputTypeIsRejected) {
  SKIP_UNLESS_HOPPER();
  GemmParams p;
  p.m = 1, p.n = 16, p.k = 16, p.lda = 16, p.ldb = 16, p.ldd = 16;
  DeviceBuffer<int8_t> a(16), b(256);
  DeviceBuffer<float> s(16);
  DeviceBuffer<uint16_t> d(16);
  p.a = a.ptr, p.b = b.ptr, p.scale_a = s.ptr, p.scale_b = s.ptr, p.d = d.ptr, p.d_type = DType::kBF16;
  GemmOptions opts;
  opts.config = "sm90_int32_128x128x128_2x1_coop";
  const Status st = gemm_w8a8(p, nullptr, &opts);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
}

}  // namespace
}  // namespace int8dit
