// GPU activation quantization against the CPU reference: quantize_rows bit for bit, the fused
// LayerNorm+adaLN / RMSNorm / GELU producers within the stated tolerance (scales 1e-5 relative;
// int8 values off by at most 1, on at most 0.1% of the elements). Inputs are fresh random numbers
// every run, outputs are poisoned first and checked to be fully written (and padding untouched).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "ref/half_bits.h"

namespace {

using int8dit::DType;
using int8dit::Status;
using int8dit::StatusCode;

constexpr int8_t kPoisonQ = -128;      // never produced: quantized values are clamped to [-127, 127]
constexpr float kPoisonScale = -1.0f;  // never produced: scales are >= 0 or NaN
constexpr uint16_t kPoisonHalf = 0x7fff;  // a NaN in bf16 and fp16
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

bool has_gpu() {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  cudaGetLastError();
  return ok;
}
#define REQUIRE_GPU()                                                                                     \
  do {                                                                                                    \
    if (!has_gpu()) GTEST_SKIP() << "no CUDA GPU on this machine (cudaGetDeviceCount found none): run it on a GPU machine"; \
  } while (0)

// compute-sanitizer runs set INT8DIT_SMALL_SHAPES: skip the big shapes there.
bool small_shapes() { return std::getenv("INT8DIT_SMALL_SHAPES") != nullptr; }

template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(const std::vector<T>& host) : n_(host.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(n_, 1) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() { return p_; }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    EXPECT_EQ(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

uint16_t to_half(float f, DType t) { return t == DType::kBF16 ? int8dit::ref::float_to_bf16(f) : int8dit::ref::float_to_fp16(f); }
float from_half(uint16_t h, DType t) { return t == DType::kBF16 ? int8dit::ref::bf16_to_float(h) : int8dit::ref::fp16_to_float(h); }

std::mt19937& rng() {
  static std::mt19937 gen(std::random_device{}());
  return gen;
}

// One test shape. ldx/ldq/ldy beyond cols leave padding that must be neither read nor written.
struct Case {
  int64_t rows, cols, ldx, ldq;
  DType type;
  bool smooth;
  bool y;
  bool extreme_divisor = false;  // one smoothing divisor of 2^-50: quotients far outside the usual range
  std::string name() const {
    return std::string(int8dit::to_string(type)) + " " + std::to_string(rows) + "x" + std::to_string(cols) +
           " ldx " + std::to_string(ldx) + " ldq " + std::to_string(ldq) + (smooth ? " smooth" : "") + (y ? " +y" : "") +
           (extreme_divisor ? " extreme divisor" : "");
  }
};

std::vector<Case> cases() {
  std::vector<Case> c = {
      {1, 16, 16, 16, DType::kBF16, false, true},     {7, 24, 24, 32, DType::kFP16, true, false},
      {63, 1000, 1000, 1000, DType::kBF16, false, true},  // K % 8 != 0: scalar path
      {64, 1152, 1160, 1152, DType::kBF16, true, true},   {65, 3072, 3072, 3080, DType::kFP16, false, true},
      {127, 3072, 3075, 3072, DType::kBF16, false, false},  // odd stride: scalar path
      {128, 4096, 4096, 4096, DType::kBF16, true, false}, {129, 12288, 12288, 12288, DType::kFP16, true, true},
      {33, 15360, 15360, 15360, DType::kBF16, false, true},
      {9, 20000, 20000, 20000, DType::kBF16, true, true},  // too long for registers: streaming path
      // Row lengths at the edges of the kernels' register tiers (1 / 2 / 4 / 6 / 8 vectors a thread,
      // row_shape.h; 3072 / 3080 and 32768 were the tier edges of the register-row experiment, 702cca5).
      {6, 12280, 12280, 12280, DType::kBF16, true, true}, {5, 12296, 12296, 12296, DType::kFP16, false, true},
      {7, 2312, 2312, 2312, DType::kBF16, true, false},
      // More rows than resident CTAs (also under INT8DIT_SMALL_SHAPES, for the sanitizer): persistent
      // CTAs take several rows each, reusing their channel cache and reduction buffers; padded rows.
      {3000, 1152, 1160, 1168, DType::kBF16, false, true},
      // ... in the LayerNorm test, 3 batch elements: contiguous rows a CTA (row_kernels.cuh:
      // WithRowBlocks), whose blocks straddle the batch boundaries; 32 threads x 6 above, x 4 here.
      {3000, 768, 776, 784, DType::kFP16, false, true},
      // ... LayerNorm's 72 KB channel cache with registers capped for two CTAs an SM (9216 columns:
      // 192 threads x 6 vectors), several rows a CTA and, in the LayerNorm test, several batches:
      {1200, 9216, 9216, 9216, DType::kBF16, false, true},
      // ... and with SmoothQuant: the reciprocals a persistent CTA computes once serve all its rows.
      {2000, 3072, 3072, 3072, DType::kFP16, true, true},
      {5, 1024, 1024, 1024, DType::kFP16, false, false},  {6, 2056, 2056, 2056, DType::kBF16, true, true},
      {5, 4104, 4104, 4104, DType::kBF16, false, true},   {4, 8192, 8192, 8192, DType::kFP16, true, false},
      {9, 3080, 3080, 3080, DType::kBF16, true, true},    {3, 32768, 32768, 32768, DType::kBF16, true, false},
      {8, 3072, 3072, 3072, DType::kBF16, true, true, true}, {8, 12288, 12288, 12288, DType::kFP16, true, false, true},
      // SmoothQuant on the rows of 8 vectors a thread (12296..16384 columns): quantize_rows takes the
      // wide kernel there on Hopper (row_path.h: takes_wide_reciprocals; 480 threads x 4 at 15360),
      // the fused ops the ring. More rows than its resident CTAs (one an SM) and not a multiple of
      // them, padded rows; a 2^-50 divisor (that thread divides); the shortest and longest rows.
      {333, 15360, 15368, 15376, DType::kBF16, true, true},
      {8, 15360, 15360, 15360, DType::kFP16, true, false, true},
      {6, 12296, 12296, 12296, DType::kBF16, true, false}, {4, 16384, 16384, 16384, DType::kFP16, true, true},
  };
  if (!small_shapes()) {
    c.push_back({1000, 3072, 3072, 3072, DType::kBF16, false, true});
    c.push_back({4608, 3072, 3072, 3072, DType::kBF16, true, false});
    c.push_back({300, 15360, 15360, 15360, DType::kBF16, false, false});
  }
  return c;
}

// Random activations: per-row magnitude 2^[-3, 2], some x8 outliers; padding is NaN so a kernel that
// reads it gives a NaN scale. Rows 0, 1, 2 (when there are more than 3) are all zeros, hold a NaN, an Inf;
// with more than 5 rows, row 3 is tiny (magnitude 2^-30) and every other element of row 4 is (2^-70):
// values where a division or normalization that is exact only in the normal range would go wrong.
std::vector<uint16_t> random_rows(const Case& c) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(-3.0f, 2.0f);
  std::uniform_int_distribution<int> outlier(0, 99);
  std::vector<uint16_t> x(static_cast<size_t>(c.rows * c.ldx), to_half(kNaN, c.type));
  for (int64_t r = 0; r < c.rows; ++r) {
    const float mag = std::exp2(uni(rng()));
    for (int64_t k = 0; k < c.cols; ++k) {
      float v = normal(rng()) * mag;
      if (outlier(rng()) == 0) v *= 8.0f;
      if (c.rows > 3 && r == 0) v = 0.0f;
      if (c.rows > 5 && (r == 3 || (r == 4 && k % 2 == 1))) v *= r == 3 ? 0x1p-30f : 0x1p-70f;
      x[r * c.ldx + k] = to_half(v, c.type);
    }
  }
  if (c.rows > 3) {
    x[1 * c.ldx + c.cols / 2] = to_half(kNaN, c.type);
    x[2 * c.ldx + c.cols - 1] = to_half(kInf, c.type);
  }
  return x;
}

// The column whose smoothing divisor is 2^-50 in an extreme_divisor case.
int64_t extreme_column(const Case& c) { return c.cols / 3; }

// With a 2^-50 divisor the row max is that one column's value / 2^-50, so a scale within 1e-5 of the
// reference needs that value within 1e-5 relative, which a fused op's few-ulp differences from the
// reference (rsqrtf, FMA, reduction order) only give where the value is well-conditioned. A random
// element near its row's mean (LayerNorm: x - mean cancels) or a negative GELU input is not: one
// such draw failed the scale check on the H200 (LayerNorm, fp16 8 x 12288). This makes the column
// the row's largest |x| and positive in every ordinary row (3 on); the LayerNorm test also gives it
// no shift and no scale (modulation terms that could cancel it).
void condition_extreme_column(const Case& c, std::vector<uint16_t>& x) {
  if (!c.extreme_divisor || c.rows <= 3) return;
  const int64_t k_star = extreme_column(c);
  for (int64_t r = 3; r < c.rows; ++r) {
    float largest = 0.0f;
    for (int64_t k = 0; k < c.cols; ++k) largest = std::max(largest, std::fabs(from_half(x[r * c.ldx + k], c.type)));
    x[r * c.ldx + k_star] = to_half(largest, c.type);
  }
}

std::vector<float> random_smooth(const Case& c) {
  std::uniform_real_distribution<float> uni(0.25f, 4.0f);
  std::vector<float> s(static_cast<size_t>(c.cols));
  for (float& v : s) v = uni(rng());
  if (c.extreme_divisor) s[static_cast<size_t>(extreme_column(c))] = 0x1p-50f;
  return s;
}

struct Outputs {
  explicit Outputs(const Case& c)
      : q(static_cast<size_t>(c.rows * c.ldq), kPoisonQ),
        scale(static_cast<size_t>(c.rows), kPoisonScale),
        y(static_cast<size_t>(c.rows * c.ldq), kPoisonHalf) {}
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<uint16_t> y;  // row stride ldq as well
};

// Every element in [0, cols) written, the padding untouched.
void expect_fully_written(const Case& c, const Outputs& o) {
  int64_t unwritten = 0, padding_written = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t k = 0; k < c.ldq; ++k) {
      const bool poisoned = o.q[r * c.ldq + k] == kPoisonQ;
      if (k < c.cols) unwritten += poisoned;
      else padding_written += !poisoned;
    }
    unwritten += o.scale[r] == kPoisonScale;
  }
  EXPECT_EQ(unwritten, 0) << c.name();
  EXPECT_EQ(padding_written, 0) << c.name();
}

void expect_bit_exact(const Case& c, const Outputs& gpu, const Outputs& ref) {
  expect_fully_written(c, gpu);
  int64_t scale_diffs = 0, q_diffs = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    const bool same = std::isnan(ref.scale[r]) ? std::isnan(gpu.scale[r])
                                               : int8dit::ref::float_bits(gpu.scale[r]) == int8dit::ref::float_bits(ref.scale[r]);
    scale_diffs += !same;
    for (int64_t k = 0; k < c.cols; ++k) q_diffs += gpu.q[r * c.ldq + k] != ref.q[r * c.ldq + k];
  }
  EXPECT_EQ(scale_diffs, 0) << c.name();
  EXPECT_EQ(q_diffs, 0) << c.name();
}

// Counts over a whole test, so the 0.1% bound is asserted on many elements, not on one tiny shape.
struct ToleranceTally {
  int64_t elements = 0, off_by_one = 0;
  void expect_within_bound() const {
    EXPECT_LE(off_by_one * 1000, elements) << off_by_one << " of " << elements << " int8 values differ by 1 (bound: 0.1%)";
  }
};

void expect_within_tolerance(const Case& c, const Outputs& gpu, const Outputs& ref, ToleranceTally& tally) {
  expect_fully_written(c, gpu);
  int64_t bad_scales = 0, far = 0, bad_y = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    const float a = gpu.scale[r], b = ref.scale[r];
    if (std::isnan(b)) bad_scales += !std::isnan(a);
    else bad_scales += !(std::fabs(a - b) <= 1e-5f * std::fabs(b));
    for (int64_t k = 0; k < c.cols; ++k) {
      const int d = std::abs(gpu.q[r * c.ldq + k] - ref.q[r * c.ldq + k]);
      far += d > 1;
      tally.off_by_one += d == 1;
      if (c.y) {
        // y: within one unit in the last place of x_type (or both NaN, or both below 1e-6).
        const uint16_t hg = gpu.y[r * c.ldq + k], hr = ref.y[r * c.ldq + k];
        const float fg = from_half(hg, c.type), fr = from_half(hr, c.type);
        const bool ok = (std::isnan(fr) && std::isnan(fg)) || std::abs(int(hg) - int(hr)) <= 1 ||
                        std::fabs(fg - fr) <= 1e-6f;
        bad_y += !ok;
      }
    }
  }
  tally.elements += c.rows * c.cols;
  EXPECT_EQ(bad_scales, 0) << c.name();
  EXPECT_EQ(far, 0) << c.name();
  EXPECT_EQ(bad_y, 0) << c.name();
}

// ---------------- quantize_rows: bit-exact ----------------

TEST(QuantizeRowsGpu, BitExactAgainstReferenceOnRaggedStridedShapes) {
  REQUIRE_GPU();
  for (const Case& c : cases()) {
    auto x = random_rows(c);
    // Row 4: values near 1e-38 (subnormal in places), where 127 / amax overflows to Inf (the clamped path).
    if (c.rows > 4)
      for (int64_t k = 0; k < c.cols; ++k) x[4 * c.ldx + k] = to_half(from_half(x[4 * c.ldx + k], c.type) * 1e-38f, c.type);
    const auto smooth = random_smooth(c);
    Outputs ref(c), gpu(c);
    DeviceArray<uint16_t> dx(x);
    DeviceArray<float> dsmooth(smooth);
    DeviceArray<int8_t> dq(gpu.q);
    DeviceArray<float> dscale(gpu.scale);

    int8dit::QuantizeRowsParams p;
    p.rows = c.rows, p.cols = c.cols, p.x = x.data(), p.x_type = c.type, p.ldx = c.ldx;
    p.smooth = c.smooth ? smooth.data() : nullptr;
    p.q = ref.q.data(), p.ldq = c.ldq, p.scale = ref.scale.data();
    ASSERT_TRUE(int8dit::ref::quantize_rows(p).ok());

    p.x = dx.get(), p.smooth = c.smooth ? dsmooth.get() : nullptr, p.q = dq.get(), p.scale = dscale.get();
    const Status st = (c.rows % 2) ? int8dit::quantize_weights(p, nullptr) : int8dit::quantize_rows(p, nullptr);
    ASSERT_TRUE(st.ok()) << c.name() << ": " << st.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << c.name();
    gpu.q = dq.download();
    gpu.scale = dscale.download();
    expect_bit_exact(c, gpu, ref);
    if (c.rows > 3) {
      EXPECT_EQ(gpu.scale[0], 0.0f) << "a zero row has scale 0 (" << c.name() << ")";
      EXPECT_TRUE(std::isnan(gpu.scale[1]) && std::isnan(gpu.scale[2])) << "NaN/Inf rows have a NaN scale (" << c.name() << ")";
    }
  }
}

TEST(QuantizeRowsGpu, BadArgumentsAreRefusedBeforeAnythingIsWritten) {
  REQUIRE_GPU();
  const Case c{4, 64, 64, 64, DType::kBF16, false, false};
  const auto x = random_rows(c);
  Outputs host(c);
  DeviceArray<uint16_t> dx(x);
  DeviceArray<int8_t> dq(host.q);
  DeviceArray<float> dscale(host.scale);
  int8dit::QuantizeRowsParams p;
  p.rows = c.rows, p.cols = c.cols, p.x = dx.get(), p.ldx = c.ldx, p.q = dq.get(), p.ldq = c.ldq, p.scale = dscale.get();

  auto bad = p;
  bad.ldq = 63;
  Status st = int8dit::quantize_rows(bad, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("ldq = 63"), std::string::npos) << st.message();

  bad = p;
  bad.x = x.data();  // host memory
  st = int8dit::quantize_rows(bad, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("x (the input)"), std::string::npos) << st.message();

  bad = p;
  bad.x_type = DType::kFP32;
  st = int8dit::quantize_rows(bad, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kNotSupported);
  EXPECT_NE(st.message().find("bf16 or fp16"), std::string::npos) << st.message();

  bad = p;
  bad.rows = 0, bad.x = nullptr, bad.q = nullptr, bad.scale = nullptr;
  EXPECT_TRUE(int8dit::quantize_rows(bad, nullptr).ok()) << "an empty batch is valid and launches nothing";

  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (int8_t v : dq.download()) ASSERT_EQ(v, kPoisonQ);
  for (float v : dscale.download()) ASSERT_EQ(v, kPoisonScale);
}

// ---------------- fused producers: within tolerance ----------------

// Runs one fused op on the CPU and the GPU for every case. `fill` sets the op's own fields of the
// params from host (on_device = false) or device copies of its vectors.
template <typename P>
void check_fused(const char* op_name, const std::function<Status(const P&)>& ref_op,
                 const std::function<Status(const P&, cudaStream_t)>& gpu_op,
                 const std::function<void(P&, const Case&, bool on_device)>& fill) {
  ToleranceTally tally;
  for (const Case& c : cases()) {
    SCOPED_TRACE(std::string(op_name) + " " + c.name());
    auto x = random_rows(c);
    condition_extreme_column(c, x);
    const auto smooth = random_smooth(c);
    Outputs ref(c), gpu(c);
    DeviceArray<uint16_t> dx(x), dy(gpu.y);
    DeviceArray<float> dsmooth(smooth);
    DeviceArray<int8_t> dq(gpu.q);
    DeviceArray<float> dscale(gpu.scale);

    P p;
    p.rows = c.rows, p.cols = c.cols, p.x = x.data(), p.x_type = c.type, p.ldx = c.ldx;
    p.smooth = c.smooth ? smooth.data() : nullptr;
    p.q = ref.q.data(), p.ldq = c.ldq, p.scale = ref.scale.data();
    p.y = c.y ? ref.y.data() : nullptr, p.ldy = c.ldq;
    fill(p, c, false);
    ASSERT_TRUE(ref_op(p).ok());

    p.x = dx.get(), p.smooth = c.smooth ? dsmooth.get() : nullptr, p.q = dq.get(), p.scale = dscale.get();
    p.y = c.y ? dy.get() : nullptr;
    fill(p, c, true);
    const Status st = gpu_op(p, nullptr);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    gpu.q = dq.download();
    gpu.scale = dscale.download();
    gpu.y = dy.download();
    expect_within_tolerance(c, gpu, ref, tally);
    if (c.rows > 3) {
      EXPECT_TRUE(std::isnan(gpu.scale[1]) && std::isnan(gpu.scale[2])) << "NaN/Inf rows have a NaN scale";
    }
  }
  tally.expect_within_bound();
}

// Per-channel vectors of a case, random, on the host and the device.
struct ChannelVectors {
  ChannelVectors(const Case& c, int64_t count, float lo, float hi) {
    std::uniform_real_distribution<float> uni(lo, hi);
    host.resize(static_cast<size_t>(count));
    for (auto& v : host) v = to_half(uni(rng()), c.type);
    device = std::make_unique<DeviceArray<uint16_t>>(host);
  }
  const void* get(bool on_device) const { return on_device ? device->get() : host.data(); }
  // host[i] = 0 for every i in `indices`, on the device too.
  void zero(const std::vector<int64_t>& indices) {
    for (int64_t i : indices) host[static_cast<size_t>(i)] = 0;
    device = std::make_unique<DeviceArray<uint16_t>>(host);
  }
  std::vector<uint16_t> host;
  std::unique_ptr<DeviceArray<uint16_t>> device;
};

TEST(LayerNormModulateQuantizeGpu, MatchesReferenceWithinToleranceWithPerBatchModulation) {
  REQUIRE_GPU();
  std::unique_ptr<ChannelVectors> mod;
  check_fused<int8dit::LayerNormModulateQuantizeParams>(
      "layernorm_modulate_quantize",
      [](const auto& p) { return int8dit::ref::layernorm_modulate_quantize(p); },
      [](const auto& p, cudaStream_t s) { return int8dit::layernorm_modulate_quantize(p, s); },
      [&mod](auto& p, const Case& c, bool on_device) {
        // Batches of tokens_per_batch rows; shift and scale are the two halves of one [batches, 2K]
        // tensor, as chunks of the adaLN linear's output are (ld_mod = 2K).
        const int64_t tpb = c.rows % 3 == 0 ? c.rows / 3 : c.rows;
        if (!on_device) {
          mod = std::make_unique<ChannelVectors>(c, c.rows / tpb * 2 * c.cols, -1.0f, 1.0f);
          if (c.extreme_divisor) {  // no shift or scale at the extreme column (condition_extreme_column)
            std::vector<int64_t> at;
            for (int64_t b = 0; b < c.rows / tpb; ++b)
              at.push_back(b * 2 * c.cols + extreme_column(c)), at.push_back(b * 2 * c.cols + c.cols + extreme_column(c));
            mod->zero(at);
          }
        }
        p.eps = 1e-6f, p.tokens_per_batch = tpb, p.ld_mod = 2 * c.cols;
        p.mod_shift = static_cast<const uint16_t*>(mod->get(on_device));
        p.mod_scale = static_cast<const uint16_t*>(mod->get(on_device)) + c.cols;
      });
}

TEST(RmsNormQuantizeGpu, MatchesReferenceWithinTolerance) {
  REQUIRE_GPU();
  std::unique_ptr<ChannelVectors> weight;
  check_fused<int8dit::RmsNormQuantizeParams>(
      "rmsnorm_quantize", [](const auto& p) { return int8dit::ref::rmsnorm_quantize(p); },
      [](const auto& p, cudaStream_t s) { return int8dit::rmsnorm_quantize(p, s); },
      [&weight](auto& p, const Case& c, bool on_device) {
        if (!on_device) weight = std::make_unique<ChannelVectors>(c, c.cols, 0.5f, 2.0f);
        p.eps = 1e-6f, p.weight = weight->get(on_device);
      });
}

TEST(GeluQuantizeGpu, MatchesReferenceWithinTolerance) {
  REQUIRE_GPU();
  check_fused<int8dit::GeluQuantizeParams>(
      "gelu_quantize", [](const auto& p) { return int8dit::ref::gelu_quantize(p); },
      [](const auto& p, cudaStream_t s) { return int8dit::gelu_quantize(p, s); }, [](auto&, const Case&, bool) {});
}

TEST(FusedQuantizeGpu, BadArgumentsAreRefusedBeforeAnythingIsWritten) {
  REQUIRE_GPU();
  const Case c{4, 64, 64, 64, DType::kBF16, false, true};
  const auto x = random_rows(c);
  Outputs host(c);
  DeviceArray<uint16_t> dx(x), dy(host.y);
  DeviceArray<int8_t> dq(host.q);
  DeviceArray<float> dscale(host.scale);

  int8dit::LayerNormModulateQuantizeParams ln;
  ln.rows = 4, ln.cols = 64, ln.x = dx.get(), ln.ldx = 64, ln.tokens_per_batch = 3, ln.mod_shift = dx.get(),
  ln.mod_scale = dx.get(), ln.ld_mod = 64, ln.q = dq.get(), ln.ldq = 64, ln.scale = dscale.get(), ln.y = dy.get(), ln.ldy = 64;
  Status st = int8dit::layernorm_modulate_quantize(ln, nullptr);
  EXPECT_NE(st.message().find("not a multiple of tokens_per_batch"), std::string::npos) << st.message();
  ln.tokens_per_batch = 2;
  ln.mod_shift = x.data();  // host memory
  st = int8dit::layernorm_modulate_quantize(ln, nullptr);
  EXPECT_NE(st.message().find("mod_shift"), std::string::npos) << st.message();

  int8dit::RmsNormQuantizeParams rms;
  rms.rows = 4, rms.cols = 64, rms.x = dx.get(), rms.ldx = 64, rms.weight = dx.get(), rms.q = dq.get(), rms.ldq = 64,
  rms.scale = dscale.get(), rms.y = dy.get(), rms.ldy = 32;
  st = int8dit::rmsnorm_quantize(rms, nullptr);
  EXPECT_NE(st.message().find("ldy = 32"), std::string::npos) << st.message();

  int8dit::GeluQuantizeParams gelu;
  gelu.rows = 4, gelu.cols = 64, gelu.x = dx.get(), gelu.ldx = 64, gelu.q = dq.get(), gelu.ldq = 64, gelu.scale = nullptr;
  st = int8dit::gelu_quantize(gelu, nullptr);
  EXPECT_NE(st.message().find("scale"), std::string::npos) << st.message();

  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (int8_t v : dq.download()) ASSERT_EQ(v, kPoisonQ);
  for (float v : dscale.download()) ASSERT_EQ(v, kPoisonScale);
  for (uint16_t v : dy.download()) ASSERT_EQ(v, kPoisonHalf);
}

}  // namespace
