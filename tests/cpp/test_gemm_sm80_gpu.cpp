// GPU tests of the Ampere/Ada (mma.sync) W8A8 GEMM family. GemmOptions::force_sm80 selects the family
// on any GPU from sm_80 up, so the lent H100 checks it too. Oracles: int8dit::ref::gemm_w8a8 for the
// int32 accumulator (bit-exact), and a double-precision epilogue on that accumulator for bf16 / fp16
// (1 ulp) and fp32 (4 ulp). Inputs are fresh random each run (the seed is printed on failure).
// INT8DIT_SMALL_SHAPES=1 narrows the shapes (for compute-sanitizer).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "host_array.h"
#include "int8dit/gemm.h"
#include "int8dit/reference.h"

namespace {

using int8dit::DType;
using int8dit::GemmOptions;
using int8dit::GemmParams;
using int8dit::ScaleMode;

bool small_shapes() {
  const char* v = std::getenv("INT8DIT_SMALL_SHAPES");
  return v && *v && std::strcmp(v, "0") != 0;
}

// Why the sm80 family cannot run here, or "" when it can.
std::string why_no_sm80() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return "no CUDA GPU on this machine";
  }
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  if (major < 8) return "the GPU is below sm_80: the mma.sync int8 kernels need Ampere or newer";
  GemmOptions o;
  o.force_sm80 = true;
  if (int8dit::gemm_config_names(&o).empty())
    return "this library was built without the sm80 family (INT8DIT_CUDA_ARCHS holds none of 80/86/89/90a)";
  return "";
}

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&p_, bytes) != cudaSuccess) throw std::runtime_error("cudaMalloc of " + std::to_string(bytes));
  }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T>
  T* as() { return static_cast<T*>(p_); }
  void upload(const void* host) { ASSERT_EQ(cudaMemcpy(p_, host, bytes_, cudaMemcpyHostToDevice), cudaSuccess); }

 private:
  void* p_ = nullptr;
  size_t bytes_;
};

struct Shape {
  int64_t m, n, k;
};

// The variations a run draws: scale granularity, bias, and row padding of A and D.
struct Variant {
  bool scale_a_per_row = true;
  bool scale_b_per_col = true;
  bool bias = true;
  int64_t lda_pad = 0;  // extra int8 elements per row of A (a multiple of 16)
  int64_t ldd_pad = 0;  // extra 16-byte granules per row of D, beyond N rounded up to 16 bytes
};

std::string describe(const Shape& s, const Variant& v) {
  std::ostringstream os;
  os << "M=" << s.m << " N=" << s.n << " K=" << s.k << " scale_a=" << (v.scale_a_per_row ? "row" : "tensor")
     << " scale_b=" << (v.scale_b_per_col ? "col" : "tensor") << " bias=" << v.bias << " lda+" << v.lda_pad
     << " ldd+" << v.ldd_pad << "x16B";
  return os.str();
}

// A problem's host inputs and its exact int32 accumulator from the CPU reference.
struct Problem {
  Shape s;
  Variant v;
  int64_t lda;
  HostArray<int8_t> a, b;
  HostArray<float> scale_a, scale_b, bias;
  HostArray<int32_t> acc;

  Problem(Shape shape, Variant var, std::mt19937_64& rng)
      : s(shape), v(var), lda(shape.k + var.lda_pad),
        a(shape.m * lda), b(shape.n * shape.k),
        scale_a(var.scale_a_per_row ? shape.m : 1), scale_b(var.scale_b_per_col ? shape.n : 1),
        bias(shape.n), acc(shape.m * shape.n) {
    std::uniform_int_distribution<int> q(-127, 127);
    // Scales keep |D| well inside fp16's range for K up to 15360.
    std::uniform_real_distribution<float> scale(1e-3f, 1e-2f), b_dist(-4.f, 4.f);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int8_t>(q(rng));
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int8_t>(q(rng));
    for (size_t i = 0; i < scale_a.size(); ++i) scale_a[i] = scale(rng);
    for (size_t i = 0; i < scale_b.size(); ++i) scale_b[i] = scale(rng);
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = b_dist(rng);
  }

  int8dit::Status compute_reference() {
    GemmParams p;
    p.m = s.m, p.n = s.n, p.k = s.k;
    p.a = a.data(), p.lda = lda, p.b = b.data(), p.ldb = s.k;
    p.d = acc.data(), p.d_type = DType::kInt32, p.ldd = s.n;
    return int8dit::ref::gemm_w8a8(p);
  }
};

size_t out_bytes(DType t) { return t == DType::kBF16 || t == DType::kFP16 ? 2 : 4; }

// D is poisoned with these bytes before every run: NaN for every float type; for int32, 0x7F7F7F7F,
// beyond any accumulator 127*127*K reaches for K <= 15360.
unsigned char poison_byte(DType t) { return t == DType::kInt32 ? 0x7F : 0xFF; }

float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float fp16_to_float(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float mag;
  if (exp == 0) mag = std::ldexp(static_cast<float>(man), -24);
  else if (exp == 31) mag = man ? NAN : INFINITY;
  else mag = std::ldexp(static_cast<float>(man | 0x400), exp - 25);
  return sign ? -mag : mag;
}

// One unit in the last place of `t` at magnitude |x| (normal or subnormal range).
double ulp(DType t, double x) {
  const int mant = t == DType::kBF16 ? 7 : t == DType::kFP16 ? 10 : 23;
  const int min_exp = t == DType::kFP16 ? -14 : -126;
  int e = x == 0.0 ? min_exp : std::ilogb(x);
  if (e < min_exp) e = min_exp;
  return std::ldexp(1.0, e - mant);
}

// Runs the GEMM on the GPU with `opts` and checks every element of D (and that D's padding was not written).
::testing::AssertionResult run_and_check(const Problem& pr, DType out, const GemmOptions& opts, std::string* used) {
  const Shape& s = pr.s;
  const Variant& v = pr.v;
  const int64_t elems16 = 16 / static_cast<int64_t>(out_bytes(out));
  const int64_t ldd = (s.n + elems16 - 1) / elems16 * elems16 + v.ldd_pad * elems16;
  const size_t d_bytes = static_cast<size_t>(s.m * ldd) * out_bytes(out);

  DeviceBuffer a(pr.a.size()), b(pr.b.size()), sa(pr.scale_a.size() * 4), sb(pr.scale_b.size() * 4),
      bias(pr.bias.size() * 4), d(d_bytes);
  a.upload(pr.a.data());
  b.upload(pr.b.data());
  sa.upload(pr.scale_a.data());
  sb.upload(pr.scale_b.data());
  bias.upload(pr.bias.data());
  if (cudaMemset(d.as<void>(), poison_byte(out), d_bytes) != cudaSuccess) return ::testing::AssertionFailure() << "cudaMemset";

  GemmParams p;
  p.m = s.m, p.n = s.n, p.k = s.k;
  p.a = a.as<int8_t>(), p.lda = pr.lda, p.b = b.as<int8_t>(), p.ldb = s.k;
  p.d = d.as<void>(), p.d_type = out, p.ldd = ldd;
  const bool raw = out == DType::kInt32;
  if (!raw) {
    p.scale_a = sa.as<float>(), p.scale_a_mode = v.scale_a_per_row ? ScaleMode::kPerRow : ScaleMode::kPerTensor;
    p.scale_b = sb.as<float>(), p.scale_b_mode = v.scale_b_per_col ? ScaleMode::kPerCol : ScaleMode::kPerTensor;
    p.bias = v.bias ? bias.as<float>() : nullptr;
  }
  *used = int8dit::gemm_selected_config(p, &opts);
  const int8dit::Status st = int8dit::gemm_w8a8(p, nullptr, &opts);
  if (!st.ok()) return ::testing::AssertionFailure() << "gemm_w8a8: " << st.to_string();
  const cudaError_t sync = cudaDeviceSynchronize();
  if (sync != cudaSuccess) return ::testing::AssertionFailure() << "kernel failed: " << cudaGetErrorString(sync);

  std::vector<unsigned char> host(d_bytes);
  cudaMemcpy(host.data(), d.as<void>(), d_bytes, cudaMemcpyDeviceToHost);

  int64_t bad = 0;
  std::ostringstream first;
  auto fail = [&](int64_t m, int64_t n, const std::string& what) {
    if (bad++ < 5) first << "\n  D[" << m << "][" << n << "] " << what;
  };
  const double kFp32Rounding = std::ldexp(1.0, -22);  // the fp32 intermediate the semantics prescribe
  const double ulps = out == DType::kFP32 ? 4.0 : 1.0;
  for (int64_t m = 0; m < s.m; ++m) {
    const unsigned char* row = host.data() + static_cast<size_t>(m * ldd) * out_bytes(out);
    for (int64_t n = 0; n < s.n; ++n) {
      const int32_t acc = pr.acc[m * s.n + n];
      const unsigned char* e = row + n * out_bytes(out);
      if (raw) {
        int32_t got;
        std::memcpy(&got, e, 4);
        if (got != acc) fail(m, n, "= " + std::to_string(got) + ", reference " + std::to_string(acc));
        continue;
      }
      const double sa_v = pr.scale_a[v.scale_a_per_row ? m : 0], sb_v = pr.scale_b[v.scale_b_per_col ? n : 0];
      const double bias_v = v.bias ? pr.bias[n] : 0.0;
      const double product = static_cast<double>(acc) * (sa_v * sb_v);
      const double want = product + bias_v;
      double got;
      if (out == DType::kFP32) {
        float f;
        std::memcpy(&f, e, 4);
        got = f;
      } else {
        uint16_t h;
        std::memcpy(&h, e, 2);
        got = out == DType::kBF16 ? bf16_to_float(h) : fp16_to_float(h);
      }
      const double tol = ulps * ulp(out, std::fabs(want)) + kFp32Rounding * (std::fabs(product) + std::fabs(bias_v));
      if (!(std::fabs(got - want) <= tol)) {  // NaN (an unwritten element) fails here too
        std::ostringstream os;
        os.precision(9);
        os << "= " << got << ", reference " << want << " (tolerance " << tol << ", acc " << acc << ")";
        fail(m, n, os.str());
      }
    }
    // Padding columns [N, ldd) must still hold the poison.
    for (int64_t byte = s.n * out_bytes(out); byte < ldd * static_cast<int64_t>(out_bytes(out)); ++byte)
      if (row[byte] != poison_byte(out)) {
        fail(m, byte / out_bytes(out), "is padding (column >= N) but was written");
        break;
      }
  }
  if (bad) return ::testing::AssertionFailure() << bad << " wrong elements:" << first.str();
  return ::testing::AssertionSuccess();
}

std::vector<std::string> config_names(const GemmOptions& opts) {
  std::vector<std::string> names;
  std::stringstream all(int8dit::gemm_config_names(&opts));
  for (std::string name; std::getline(all, name, ',');) names.push_back(name);
  return names;
}

// A configuration's output type, from its name: "sm80_<type>_<tile>...".
DType config_type(const std::string& name) {
  if (name.rfind("sm80_bf16_", 0) == 0) return DType::kBF16;
  if (name.rfind("sm80_fp16_", 0) == 0) return DType::kFP16;
  if (name.rfind("sm80_fp32_", 0) == 0) return DType::kFP32;
  return DType::kInt32;
}

class Sm80Gemm : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = why_no_sm80();
    if (!why.empty()) GTEST_SKIP() << why;
    opts_.force_sm80 = true;
    const uint64_t seed = std::random_device{}();
    rng_.seed(seed);
    seed_trace_ = "random seed " + std::to_string(seed);
  }

  // Builds the problem, its CPU reference, and checks `out` with `opts` (config or heuristic).
  void check(Shape s, Variant v, DType out, GemmOptions opts, const char* expect_prefix = "sm80_") {
    SCOPED_TRACE(seed_trace_);
    SCOPED_TRACE(describe(s, v) + " out=" + int8dit::to_string(out));
    Problem pr(s, v, rng_);
    const int8dit::Status st = pr.compute_reference();
    ASSERT_TRUE(st.ok()) << "CPU reference: " << st.to_string();
    std::string used;
    EXPECT_TRUE(run_and_check(pr, out, opts, &used)) << "config " << used;
    EXPECT_EQ(used.rfind(expect_prefix, 0), 0u) << "dispatch chose " << used;
  }

  GemmOptions opts_;
  std::mt19937_64 rng_;
  std::string seed_trace_;
};

// Every configuration, forced by name, on ragged shapes that cut every tile edge.
TEST_F(Sm80Gemm, EveryConfigByName) {
  std::vector<Shape> shapes = {{1, 72, 16}, {65, 200, 80}, {129, 264, 1040}};
  if (!small_shapes()) shapes.push_back({1000, 520, 3072});
  const std::vector<std::string> names = config_names(opts_);
  ASSERT_FALSE(names.empty());
  int i = 0;
  for (const Shape& s : shapes) {
    // One problem (and one CPU reference) serves every configuration.
    SCOPED_TRACE(seed_trace_);
    Variant v;
    v.scale_a_per_row = i % 2 == 0, v.scale_b_per_col = i % 3 != 2, v.bias = i % 2 == 1;
    v.lda_pad = 16 * (i % 2), v.ldd_pad = i % 3;
    ++i;
    SCOPED_TRACE(describe(s, v));
    Problem pr(s, v, rng_);
    const int8dit::Status st = pr.compute_reference();
    ASSERT_TRUE(st.ok()) << "CPU reference: " << st.to_string();
    for (const std::string& name : names) {
      GemmOptions o = opts_;
      o.config = name.c_str();
      std::string used;
      EXPECT_TRUE(run_and_check(pr, config_type(name), o, &used)) << "config " << name;
      EXPECT_EQ(used, name);
    }
  }
}

// The M set of DESIGN.md, N off every tile multiple, through the heuristic, bf16 output.
TEST_F(Sm80Gemm, RaggedShapesBf16) {
  std::vector<int64_t> ms = {1, 7, 63, 64, 65, 127, 128, 129, 1000, 4608};
  if (small_shapes()) ms = {1, 7, 65, 129};
  int i = 0;
  for (int64_t m : ms) {
    const int64_t n = m >= 1000 ? 264 : 136 + 8 * (i % 5);
    const int64_t k = m >= 1000 ? 3072 : 48 + 64 * (i % 4);
    Variant v;
    v.scale_a_per_row = i % 2 == 0, v.scale_b_per_col = i % 4 != 1, v.bias = i % 3 != 0;
    v.lda_pad = 16 * (i % 3), v.ldd_pad = i % 2;
    check({m, n, k}, v, DType::kBF16, opts_);
    ++i;
  }
}

// K from one 16-wide step up to 15360 (many partial and full K tiles): the raw accumulator, bit-exact.
TEST_F(Sm80Gemm, KSweepInt32BitExact) {
  std::vector<int64_t> ks = {16, 32, 48, 64, 80, 112, 128, 144, 1040, 4096, 15360};
  if (small_shapes()) ks = {16, 48, 80, 144};
  int i = 0;
  for (int64_t k : ks) {
    Variant v;
    v.lda_pad = 16 * (i++ % 2);
    check({129, 200, k}, v, DType::kInt32, opts_);
  }
}

// fp16 and fp32 outputs through the heuristic, per-tensor and per-row scales, with and without bias.
TEST_F(Sm80Gemm, Fp16AndFp32Outputs) {
  const std::vector<Shape> shapes = small_shapes() ? std::vector<Shape>{{65, 136, 80}}
                                                   : std::vector<Shape>{{65, 136, 80}, {1000, 300, 1040}, {7, 1032, 15360}};
  int i = 0;
  for (DType out : {DType::kFP16, DType::kFP32}) {
    for (const Shape& s : shapes) {
      Variant v;
      v.scale_a_per_row = i % 2 == 1, v.scale_b_per_col = i % 2 == 0, v.bias = i % 3 != 1, v.ldd_pad = i % 2;
      check(s, v, out, opts_);
      ++i;
    }
  }
}

// Dispatch: the switch selects this family, a forced config must match D's type, names are checked.
TEST_F(Sm80Gemm, DispatchHonoursForceAndConfig) {
  GemmParams p;
  p.m = 64, p.n = 64, p.k = 64, p.lda = 64, p.ldb = 64, p.ldd = 64;
  DeviceBuffer a(64 * 64), d(64 * 64 * 4), s(4);
  p.a = a.as<int8_t>(), p.b = a.as<int8_t>(), p.d = d.as<void>();
  p.scale_a = p.scale_b = s.as<float>();
  p.scale_a_mode = ScaleMode::kPerTensor, p.scale_b_mode = ScaleMode::kPerTensor;
  EXPECT_EQ(int8dit::gemm_selected_config(p, &opts_).rfind("sm80_bf16_", 0), 0u);

  GemmOptions wrong = opts_;
  wrong.config = "sm80_fp32_128x128x64_w2x2_s4";
  const int8dit::Status st = int8dit::gemm_can_implement(p, &wrong);
  EXPECT_EQ(st.code(), int8dit::StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("writes fp32"), std::string::npos) << st.message();

  GemmOptions unknown = opts_;
  unknown.config = "sm80_bf16_no_such_tile";
  EXPECT_EQ(int8dit::gemm_can_implement(p, &unknown).code(), int8dit::StatusCode::kInvalidArgument);

  p.m = 0;  // an empty batch is Ok and touches nothing
  EXPECT_TRUE(int8dit::gemm_w8a8(p, nullptr, &opts_).ok());
}

}  // namespace
