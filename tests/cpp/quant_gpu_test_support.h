// The GPU quantization tests' shared pieces: the test shapes, random rows with their special cases,
// poisoned outputs and the checks against the CPU reference (bit for bit, or the fused ops' tolerance:
// scales 1e-5 relative; int8 values off by at most 1, on at most 0.1% of the elements).
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "int8dit/quantize.h"
#include "int8dit/reference.h"
#include "ref/half_bits.h"

namespace quant_gpu_test {

using int8dit::DType;
using int8dit::Status;
using int8dit::StatusCode;

inline constexpr int8_t kPoisonQ = -128;      // never produced: quantized values are clamped to [-127, 127]
inline constexpr float kPoisonScale = -1.0f;  // never produced: scales are >= 0 or NaN
inline constexpr uint16_t kPoisonHalf = 0x7fff;  // a NaN in bf16 and fp16
inline const float kNaN = std::numeric_limits<float>::quiet_NaN();
inline const float kInf = std::numeric_limits<float>::infinity();

inline bool has_gpu() {
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
inline bool small_shapes() { return std::getenv("INT8DIT_SMALL_SHAPES") != nullptr; }

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

inline uint16_t to_half(float f, DType t) { return t == DType::kBF16 ? int8dit::ref::float_to_bf16(f) : int8dit::ref::float_to_fp16(f); }
inline float from_half(uint16_t h, DType t) { return t == DType::kBF16 ? int8dit::ref::bf16_to_float(h) : int8dit::ref::fp16_to_float(h); }

// Fresh inputs every run, from a seed printed once a process; INT8DIT_TEST_SEED=<seed> replays a run.
inline std::mt19937& rng() {
  static std::mt19937 gen([] {
    const char* forced = std::getenv("INT8DIT_TEST_SEED");
    const unsigned seed = forced && *forced ? static_cast<unsigned>(std::strtoul(forced, nullptr, 10))
                                            : std::random_device{}();
    std::fprintf(stderr, "quantization GPU tests: random seed %u (INT8DIT_TEST_SEED=%u replays this run)\n", seed, seed);
    return seed;
  }());
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

inline std::vector<Case> cases() {
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
      // ... and 1536 columns, which LayerNorm lays over two warps of 4 vectors (row_shape.h:
      // two_warp_row_launch_shape; the other ops, RMSNorm and the gated residual norm among them, one
      // warp of 6): 192 vectors, the fourth slot of every thread empty; in the LayerNorm test 3 batch
      // elements of 1000 rows.
      {3000, 1536, 1544, 1552, DType::kFP16, false, true}, {2400, 1536, 1536, 1536, DType::kBF16, false, false},
      // ... LayerNorm's 72 KB channel cache with registers capped for two CTAs an SM (9216 columns:
      // 192 threads x 6 vectors), several rows a CTA and, in the LayerNorm test, several batches:
      {1200, 9216, 9216, 9216, DType::kBF16, false, true},
      // ... the grouped kernel (row_grouped.cuh) with fewer rows than its groups: 3 rows of 3072 (in the
      // LayerNorm test three batch elements of one row: three CTAs of 4 groups, one row each), 13 of
      // 1536 (two CTAs of 8 one-warp groups, the second with 3 idle).
      {3, 3072, 3080, 3072, DType::kFP16, false, true}, {13, 1536, 1536, 1544, DType::kBF16, false, false},
      // ... in its second layout, 7 groups of 128 x 3 (row_shape.h: kGrouped128x3), which 1840 and 1848
      // rows of 3072 take on a 132-SM GPU (as 4608 rows do below): padded rows; in the LayerNorm test
      // 1848 rows are 3 batch elements (44 CTAs each); with SmoothQuant's divisor (quantize_rows).
      {1840, 3072, 3080, 3088, DType::kFP16, false, true}, {1848, 3072, 3072, 3072, DType::kBF16, false, false},
      {1840, 3072, 3072, 3072, DType::kBF16, true, false},
      // ... and with SmoothQuant: the reciprocals a persistent CTA computes once serve all its rows.
      {2000, 3072, 3072, 3072, DType::kFP16, true, true},
      // ... and without it: the norms' 64 x 6 rows where 8 groups a CTA take as many rows an SM as 4 (RMSNorm's
      // bulk-copy rows, row_grouped_ring.cuh).
      {2000, 3072, 3072, 3072, DType::kBF16, false, true},
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
    // In the LayerNorm test 100 batch elements of 64 rows: more than the grouped kernel splits the GPU's
    // CTAs over (row_shape.h: grouped_ctas_per_part), so the register kernel's contiguous blocks.
    c.push_back({6400, 3072, 3072, 3072, DType::kBF16, false, false});
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
// From row 5 on, every 7th row (r % 7 == 6) sits 64 x its magnitude off zero and the row before it
// 0.5 x: a mean far from and one near the spread, where a one-pass variance (E[x^2] - mean^2) would
// lose its digits to cancellation (LayerNorm's two passes do not; a joint pass with a fallback measured
// no faster, bench/results/h100/quant_ln_joint_stats_3a19d13.md).
inline std::vector<uint16_t> random_rows(const Case& c) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(-3.0f, 2.0f);
  std::uniform_int_distribution<int> outlier(0, 99);
  std::vector<uint16_t> x(static_cast<size_t>(c.rows * c.ldx), to_half(kNaN, c.type));
  for (int64_t r = 0; r < c.rows; ++r) {
    const float mag = std::exp2(uni(rng()));
    const float offset = r < 5 ? 0.0f : r % 7 == 6 ? 64.0f * mag : r % 7 == 5 ? 0.5f * mag : 0.0f;
    for (int64_t k = 0; k < c.cols; ++k) {
      float v = normal(rng()) * mag + offset;
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
inline int64_t extreme_column(const Case& c) { return c.cols / 3; }

// With a 2^-50 divisor the row max is that one column's value / 2^-50, so a scale within 1e-5 of the
// reference needs that value within 1e-5 relative, which a fused op's few-ulp differences from the
// reference (rsqrtf, FMA, reduction order) only give where the value is well-conditioned. A random
// element near its row's mean (LayerNorm: x - mean cancels) or a negative GELU input is not: one
// such draw failed the scale check on the H200 (LayerNorm, fp16 8 x 12288). This makes the column
// the row's largest |x| and positive in every ordinary row (3 on); the LayerNorm test also gives it
// no shift and no scale (modulation terms that could cancel it).
inline void condition_extreme_column(const Case& c, std::vector<uint16_t>& x) {
  if (!c.extreme_divisor || c.rows <= 3) return;
  const int64_t k_star = extreme_column(c);
  for (int64_t r = 3; r < c.rows; ++r) {
    float largest = 0.0f;
    for (int64_t k = 0; k < c.cols; ++k) largest = std::max(largest, std::fabs(from_half(x[r * c.ldx + k], c.type)));
    x[r * c.ldx + k_star] = to_half(largest, c.type);
  }
}

inline std::vector<float> random_smooth(const Case& c) {
  std::uniform_real_distribution<float> uni(0.25f, 4.0f);
  std::vector<float> s(static_cast<size_t>(c.cols));
  for (float& v : s) v = uni(rng());
  if (c.extreme_divisor) s[static_cast<size_t>(extreme_column(c))] = 0x1p-50f;
  return s;
}

// The concatenating ops' split of a case's row (concat_gelu_quantize, concat_swiglu_quantize): a's
// share, about a fifth (Flux: 3072 of 15360), a multiple of 8 except in every third case, where 3
// columns more keep the call off the vector kernels.
inline int64_t a_columns(const Case& c, size_t index) {
  int64_t a = std::max<int64_t>(8, c.cols / 5 / 8 * 8);
  if (index % 3 == 2) a += 3;
  return std::min(a, c.cols - 1);
}

// Columns [first, first + cols) of x's rows (row stride c.ldx) as rows of their own, with `pad` NaN
// columns after each.
inline std::vector<uint16_t> take_columns(const Case& c, const std::vector<uint16_t>& x, int64_t first, int64_t cols,
                                          int64_t pad) {
  std::vector<uint16_t> out(static_cast<size_t>(c.rows * (cols + pad)), to_half(kNaN, c.type));
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t k = 0; k < cols; ++k) out[r * (cols + pad) + k] = x[r * c.ldx + first + k];
  return out;
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
inline void expect_fully_written(const Case& c, const Outputs& o) {
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

inline void expect_bit_exact(const Case& c, const Outputs& gpu, const Outputs& ref) {
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

inline void expect_within_tolerance(const Case& c, const Outputs& gpu, const Outputs& ref, ToleranceTally& tally) {
  expect_fully_written(c, gpu);
  int64_t bad_scales = 0, far = 0, bad_y = 0;
  struct {
    int64_t row = -1, col = -1;
    float gpu = 0.0f, ref = 0.0f, bound = 0.0f;
  } first_bad_y;
  for (int64_t r = 0; r < c.rows; ++r) {
    const float a = gpu.scale[r], b = ref.scale[r];
    if (std::isnan(b)) bad_scales += !std::isnan(a);
    else bad_scales += !(std::fabs(a - b) <= 1e-5f * std::fabs(b));
    // y's slack beyond its own rounding: the kernels compute a value in fp32 from terms as large as the
    // row's largest value (LayerNorm's x_hat (1 + scale), then + shift), so a value that is the small
    // difference of two such terms carries their fp32 errors, which can be more than one ulp of y
    // (fp16 3000 x 768 +y: one or two values off by more than an ulp in 5 of 28 runs with the bulk ring
    // forced, INT8DIT_QUANT_ROWS=bulk, on the H100; and once in the default path at stop 54, seed
    // 4259271238, y -7.2622e-4 against -7.1621e-4: 14 fp32 ulps of the row's largest |y|, ~6.1).
    // Those errors are the fp32 statistics' against the reference's double ones: the mean's (chains of up to
    // ~24 terms, then up to ~10 levels of the reduction tree: tens of ulps of the row's mean |x|) carried
    // through rstd (1 + scale), the variance's likewise (halved by the square root), rsqrt's 2 ulps and the
    // value's own two roundings: tens of fp32 ulps of the row's largest term in the worst case, so 64 fp32
    // ulps (2^-17) of the largest |y|; at least 1e-6. A wrong channel, batch element or rounding is off by
    // about an ulp of the large values themselves (2^-8 to 2^-11 relative), hundreds of times more.
    float y_slack = 1e-6f;
    if (c.y) {
      float largest = 0.0f;
      for (int64_t k = 0; k < c.cols; ++k) {
        const float fr = std::fabs(from_half(ref.y[r * c.ldq + k], c.type));
        if (std::isfinite(fr)) largest = std::max(largest, fr);
      }
      y_slack = std::max(y_slack, std::ldexp(largest, -17));
    }
    for (int64_t k = 0; k < c.cols; ++k) {
      const int d = std::abs(gpu.q[r * c.ldq + k] - ref.q[r * c.ldq + k]);
      far += d > 1;
      tally.off_by_one += d == 1;
      if (c.y) {
        // y: within one unit in the last place of x_type, or one ulp plus y_slack (or both NaN).
        const uint16_t hg = gpu.y[r * c.ldq + k], hr = ref.y[r * c.ldq + k];
        const float fg = from_half(hg, c.type), fr = from_half(hr, c.type);
        const float ulp = std::fabs(from_half(static_cast<uint16_t>(hr + 1), c.type) - fr);
        const bool ok = (std::isnan(fr) && std::isnan(fg)) || std::abs(int(hg) - int(hr)) <= 1 ||
                        std::fabs(fg - fr) <= ulp + y_slack;
        if (!ok && bad_y++ == 0) first_bad_y = {r, k, fg, fr, ulp + y_slack};
      }
    }
  }
  tally.elements += c.rows * c.cols;
  EXPECT_EQ(bad_scales, 0) << c.name();
  EXPECT_EQ(far, 0) << c.name();
  EXPECT_EQ(bad_y, 0) << c.name() << "; the first at row " << first_bad_y.row << ", column " << first_bad_y.col
                      << ": y " << first_bad_y.gpu << " against the reference's " << first_bad_y.ref << " (allowed "
                      << first_bad_y.bound << ")";
}

// The bad-argument tests' setup: a small input on the host (`x`, also a host pointer to pass where
// device memory is required) and the device (`dx`), and poisoned device outputs that a refused call
// must leave as they are (expect_nothing_written).
struct RefusedCallBuffers {
  Case c{4, 64, 64, 64, DType::kBF16, false, false};
  std::vector<uint16_t> x = random_rows(c);
  Outputs host{c};
  DeviceArray<uint16_t> dx{x};
  DeviceArray<int8_t> dq{host.q};
  DeviceArray<float> dscale{host.scale};
  DeviceArray<uint16_t> dy{host.y};

  void expect_nothing_written() const {
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    for (int8_t v : dq.download()) ASSERT_EQ(v, kPoisonQ);
    for (float v : dscale.download()) ASSERT_EQ(v, kPoisonScale);
    for (uint16_t v : dy.download()) ASSERT_EQ(v, kPoisonHalf);
  }
};

}  // namespace quant_gpu_test
