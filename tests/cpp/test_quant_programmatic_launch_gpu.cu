// The activation-quantization kernels release the kernel after them early (release_dependent_launch,
// src/quant/row_kernels.cuh): the Hopper GEMM that reads their output, launched programmatically (the
// default), may then be scheduled while they still run, and must still read only finished rows.
//
//   - The release happens: a probe launched programmatically behind a long quantization, reading
//     without waiting, finds the last row's scale not yet written. (Without it the second test could
//     pass without anything having started early.)
//   - Quantization then GEMM, as int8dit's linear layer runs them, for every producer and each kind
//     of row kernel (one CTA a row, persistent, persistent with the SmoothQuant reciprocals or the
//     channel cache, the grouped kernel's several rows a CTA (the gated residual norm's among them,
//     which also reads an update and writes x_out), the wide SmoothQuant kernel at 15360
//     columns, Hopper's bulk-copy ring, the scalar fallback): the GEMM's output is bit for bit that of the same pair in plain stream
//     order, with the quantized rows and D poisoned in between.
#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bitwise.h"
#include "device_buffer.h"
#include "late_writer.cuh"
#include "random_values.h"
#include "int8dit/gemm.h"
#include "int8dit/quantize.h"
#include "sm90_test_support.h"

namespace int8dit {
namespace {

using test::DeviceBuffer;

#define SKIP_UNLESS_HOPPER() INT8DIT_SKIP_UNLESS_HOPPER("programmatic launch after quantization")
#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call
#define STATUS_OK(call)                            \
  do {                                             \
    const Status st_ = (call);                     \
    ASSERT_TRUE(st_.ok()) << #call << ": " << st_.to_string(); \
  } while (0)

constexpr uint32_t kPoisonWord = 0xFFFFFFFFu;  // a NaN: never a scale the kernels write for finite rows

// Reads *word with no griddepcontrol.wait.
__global__ void read_without_waiting(const uint32_t* word, uint32_t* seen) { *seen = *word; }

// n bf16 bit patterns of values drawn uniformly from [lo, hi).
std::vector<uint16_t> random_bf16(size_t n, std::mt19937& rng, float lo, float hi) {
  const std::vector<float> f = test::uniform_floats(n, rng, lo, hi);
  std::vector<uint16_t> v(n);
  for (size_t i = 0; i < n; ++i) {
    const __nv_bfloat16 b = __float2bfloat16(f[i]);
    std::memcpy(&v[i], &b, sizeof(v[i]));
  }
  return v;
}

TEST(QuantProgrammaticLaunch, ReleasesTheNextKernelBeforeItEnds) {
  SKIP_UNLESS_HOPPER();
  if (test::sanitizer_run()) GTEST_SKIP() << "compute-sanitizer serializes kernels: no overlap to observe";
  // SmoothQuant rows of 3072: the persistent kernel, every CTA resident from the start. Its registers
  // leave room on the SMs for the one-thread probe. ~50k rows: a couple of hundred microseconds.
  const int64_t rows = 50'000, cols = 3072;
  DeviceBuffer<__nv_bfloat16> x(size_t(rows) * cols);
  DeviceBuffer<float> smooth(cols), scale(rows);
  DeviceBuffer<int8_t> q(size_t(rows) * cols);
  DeviceBuffer<uint32_t> seen(1);
  x.fill_bytes(0x3c);  // every element 0x3c3c, about 0.0115
  smooth.upload(std::vector<float>(cols, 0.5f));
  QuantizeRowsParams p;
  p.rows = rows, p.cols = cols, p.x = x.get(), p.ldx = cols, p.smooth = smooth.get();
  p.q = q.get(), p.ldq = cols, p.scale = scale.get();
  const uint32_t* last_scale = reinterpret_cast<const uint32_t*>(scale.get() + rows - 1);

  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  // NOTE: a kernel's first (lazily loaded) launch did not overlap the one before it on the H200
  // (test_gemm_programmatic_launch_gpu.cu): both kernels run once before the launch that is checked.
  STATUS_OK(quantize_rows(p, s));
  CUDA_OK(test::launch_one_thread_programmatic(read_without_waiting, s, last_scale, seen.get()));
  CUDA_OK(cudaStreamSynchronize(s));

  scale.fill_bytes(0xFF);
  seen.fill_bytes(0);
  CUDA_OK(cudaDeviceSynchronize());
  STATUS_OK(quantize_rows(p, s));
  CUDA_OK(test::launch_one_thread_programmatic(read_without_waiting, s, last_scale, seen.get()));
  CUDA_OK(cudaStreamSynchronize(s));
  CUDA_OK(cudaStreamDestroy(s));

  EXPECT_EQ(seen.download()[0], kPoisonWord)
      << "a kernel launched programmatically behind quantize_rows started only once the last row was done: "
         "the quantization kernel did not release its dependents early";
  uint32_t written = 0;
  CUDA_OK(cudaMemcpy(&written, last_scale, sizeof(written), cudaMemcpyDeviceToHost));
  EXPECT_NE(written, kPoisonWord) << "the last row's scale was never written";
}

// One producer of GEMM inputs, as a call on the stream writing q [rows, cols] and scale [rows].
struct Producer {
  std::string name;
  int64_t cols;
  int64_t ldx;  // cols + 1 (rows not 16-byte aligned): the scalar kernel
  // (x, a per-channel vector of x's type (modulation or weight), smooth or null, q, scale, rows, cols,
  // ldx, stream)
  std::function<Status(const void*, const void*, const float*, int8_t*, float*, int64_t, int64_t, int64_t,
                       cudaStream_t)>
      run;
  bool smooth;
};

constexpr int64_t kRows = 4093;  // ragged; ~10-60 us of quantization, long enough for the GEMM to start early

Status run_quantize_rows(const void* x, const void*, const float* smooth, int8_t* q, float* scale, int64_t rows,
                         int64_t cols, int64_t ldx, cudaStream_t s) {
  QuantizeRowsParams p;
  p.rows = rows, p.cols = cols, p.x = x, p.ldx = ldx, p.smooth = smooth, p.q = q, p.ldq = cols, p.scale = scale;
  return quantize_rows(p, s);
}

Status run_layernorm(const void* x, const void* vec, const float* smooth, int8_t* q, float* scale, int64_t rows,
                     int64_t cols, int64_t ldx, cudaStream_t s) {
  LayerNormModulateQuantizeParams p;
  p.rows = rows, p.cols = cols, p.x = x, p.ldx = ldx, p.tokens_per_batch = rows;
  p.mod_shift = vec, p.mod_scale = vec, p.ld_mod = cols, p.smooth = smooth;
  p.q = q, p.ldq = cols, p.scale = scale;
  return layernorm_modulate_quantize(p, s);
}

// The gated residual form's x_out (r = x + gate * x, the update read from x itself): a buffer of its own,
// allocated by the first call that needs more (each test's first call of a producer is its unchecked one,
// synchronized after) and kept for the process.
void* residual_out(size_t bytes) {
  static void* buffer = nullptr;
  static size_t held = 0;
  if (bytes > held) {
    if (buffer) cudaFree(buffer);
    if (cudaMalloc(&buffer, bytes) != cudaSuccess) return nullptr;
    held = bytes;
  }
  return buffer;
}

Status run_layernorm_residual(const void* x, const void* vec, const float* smooth, int8_t* q, float* scale, int64_t rows,
                              int64_t cols, int64_t ldx, cudaStream_t s) {
  LayerNormModulateQuantizeParams p;
  p.rows = rows, p.cols = cols, p.x = x, p.ldx = ldx, p.tokens_per_batch = rows;
  p.mod_shift = vec, p.mod_scale = vec, p.ld_mod = cols, p.smooth = smooth;
  p.update = x, p.ld_update = ldx, p.gate = vec, p.ld_gate = cols;
  p.x_out = residual_out(size_t(rows) * ldx * sizeof(uint16_t)), p.ld_x_out = ldx;
  p.q = q, p.ldq = cols, p.scale = scale;
  return layernorm_modulate_quantize(p, s);
}

Status run_rmsnorm(const void* x, const void* vec, const float* smooth, int8_t* q, float* scale, int64_t rows,
                   int64_t cols, int64_t ldx, cudaStream_t s) {
  RmsNormQuantizeParams p;
  p.rows = rows, p.cols = cols, p.x = x, p.ldx = ldx, p.weight = vec, p.smooth = smooth;
  p.q = q, p.ldq = cols, p.scale = scale;
  return rmsnorm_quantize(p, s);
}

Status run_gelu(const void* x, const void*, const float* smooth, int8_t* q, float* scale, int64_t rows, int64_t cols,
                int64_t ldx, cudaStream_t s) {
  GeluQuantizeParams p;
  p.rows = rows, p.cols = cols, p.x = x, p.ldx = ldx, p.smooth = smooth, p.q = q, p.ldq = cols, p.scale = scale;
  return gelu_quantize(p, s);
}

std::vector<Producer> producers() {
  return {
      {"quantize_rows_3072", 3072, 3072, run_quantize_rows, false},
      {"quantize_rows_smooth_3072", 3072, 3072, run_quantize_rows, true},
      {"quantize_rows_scalar_rows_3072", 3072, 3073, run_quantize_rows, false},
      {"layernorm_3072", 3072, 3072, run_layernorm, false},  // the grouped kernel (4 rows a CTA)
      {"layernorm_1536", 1536, 1536, run_layernorm, false},  // ... and its one-warp rows, 8 a CTA
      {"layernorm_residual_3072", 3072, 3072, run_layernorm_residual, false},  // grouped, 6 rows a CTA
      {"layernorm_15360", 15360, 15360, run_layernorm, false},
      {"quantize_rows_smooth_15360", 15360, 15360, run_quantize_rows, true},  // the wide kernel (480 threads)
      {"rmsnorm_3072", 3072, 3072, run_rmsnorm, false},
      {"gelu_12288", 12288, 12288, run_gelu, false},
  };
}

class QuantThenGemm : public ::testing::TestWithParam<Producer> {};

TEST_P(QuantThenGemm, GemmLaunchedProgrammaticallyReadsTheFinishedRows) {
  SKIP_UNLESS_HOPPER();
  const Producer& prod = GetParam();
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  SCOPED_TRACE(prod.name + ", seed " + std::to_string(seed));
  const int64_t m = test::sanitizer_run() ? 333 : kRows, k = prod.cols, n = 1152;

  DeviceBuffer<uint16_t> x(size_t(m) * prod.ldx), vec(k);
  DeviceBuffer<float> smooth(k), sx(m), sw(n), bias(n);
  DeviceBuffer<int8_t> q(size_t(m) * k), w(size_t(n) * k);
  DeviceBuffer<__nv_bfloat16> d(size_t(m) * n), expected(size_t(m) * n);
  x.upload(random_bf16(x.count(), rng, -3.0f, 3.0f));
  vec.upload(random_bf16(k, rng, -0.5f, 0.5f));
  smooth.upload(test::uniform_floats(k, rng, 0.5f, 2.0f));
  sw.upload(test::uniform_floats(n, rng, 1e-3f, 2e-3f));
  bias.upload(test::uniform_floats(n, rng, -1.0f, 1.0f));
  w.upload(test::uniform_int8(size_t(n) * k, rng));
  const float* smooth_ptr = prod.smooth ? smooth.get() : nullptr;

  GemmParams g;
  g.m = m, g.n = n, g.k = k, g.a = q.get(), g.lda = k, g.b = w.get(), g.ldb = k;
  g.scale_a = sx.get(), g.scale_b = sw.get(), g.bias = bias.get(), g.d_type = DType::kBF16, g.ldd = n;
  g.d = expected.get();
  const size_t ws_bytes = gemm_workspace_size(g);
  DeviceBuffer<uint8_t> ws(ws_bytes ? ws_bytes : 1);
  g.workspace = ws.get(), g.workspace_bytes = ws_bytes;
  GemmOptions plain;
  plain.programmatic_launch = false;

  CUDA_OK(cudaDeviceSynchronize());  // the uploads are done before anything runs on the non-blocking stream
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  auto quantize = [&] { return prod.run(x.get(), vec.get(), smooth_ptr, q.get(), sx.get(), m, k, prod.ldx, s); };
  // The expected output, in plain stream order (and every kernel loaded before the checked pair).
  STATUS_OK(quantize());
  STATUS_OK(gemm_w8a8(g, s, &plain));
  CUDA_OK(cudaStreamSynchronize(s));

  q.fill_bytes(0x80);  // -128: never a quantized value
  sx.fill_bytes(0xFF);
  d.fill_bytes(0xFF);
  CUDA_OK(cudaDeviceSynchronize());
  g.d = d.get();
  STATUS_OK(quantize());
  STATUS_OK(gemm_w8a8(g, s));  // programmatic: the default on Hopper
  CUDA_OK(cudaStreamSynchronize(s));
  CUDA_OK(cudaStreamDestroy(s));

  EXPECT_EQ(test::differing_elements(d.download(), expected.download()), 0u)
      << "elements of D differ from the same quantization and GEMM in plain stream order: the "
         "GEMM read rows the quantization kernel had not finished";
}

// The row kernels are themselves launched programmatically on Hopper (row_launch.cuh), behind
// whatever ran before them: each must wait for that kernel before it reads its input or writes its
// outputs. A writer that releases its dependents at once replaces x 300 us later and records q's first
// word meanwhile; the quantization launched right behind it must give q and the scales bit for bit as
// on the new x in plain order, and not have written q while the writer ran.
class QuantAfterWriter : public ::testing::TestWithParam<Producer> {};

TEST_P(QuantAfterWriter, WaitsForTheKernelThatWritesItsInput) {
  SKIP_UNLESS_HOPPER();
  const Producer& prod = GetParam();
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  SCOPED_TRACE(prod.name + ", seed " + std::to_string(seed));
  const int64_t m = test::sanitizer_run() ? 333 : kRows, k = prod.cols;

  DeviceBuffer<uint16_t> x(size_t(m) * prod.ldx), x_new(size_t(m) * prod.ldx), vec(k);
  DeviceBuffer<float> smooth(k), scale(m), scale_expected(m);
  DeviceBuffer<int8_t> q(size_t(m) * k), q_expected(size_t(m) * k);
  DeviceBuffer<uint32_t> q_seen(1);
  x_new.upload(random_bf16(x.count(), rng, -3.0f, 3.0f));
  vec.upload(random_bf16(k, rng, -0.5f, 0.5f));
  smooth.upload(test::uniform_floats(k, rng, 0.5f, 2.0f));
  const float* smooth_ptr = prod.smooth ? smooth.get() : nullptr;
  const uint32_t* q_word = reinterpret_cast<const uint32_t*>(q.get());

  CUDA_OK(cudaDeviceSynchronize());  // the uploads are done before anything runs on the non-blocking stream
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  auto quantize = [&](int8_t* qd, float* sd) {
    return prod.run(x.get(), vec.get(), smooth_ptr, qd, sd, m, k, prod.ldx, s);
  };
  // The expected rows: the new x, nothing running before the quantization (which also loads every kernel).
  test::late_writer<<<1, 32, 0, s>>>(test::Copies{}, q_word, q_seen.get(), 0);
  CUDA_OK(cudaMemcpyAsync(x.get(), x_new.get(), x.count() * sizeof(uint16_t), cudaMemcpyDeviceToDevice, s));
  CUDA_OK(cudaStreamSynchronize(s));
  STATUS_OK(quantize(q_expected.get(), scale_expected.get()));
  CUDA_OK(cudaStreamSynchronize(s));

  x.upload(random_bf16(x.count(), rng, -30.0f, 30.0f));  // the old x: other values, other scales
  q.fill_bytes(0x80);                                      // -128: never a quantized value
  scale.fill_bytes(0xFF);
  q_seen.fill_bytes(0);
  CUDA_OK(cudaDeviceSynchronize());
  test::late_writer<<<8, 256, 0, s>>>(test::Copies{}.add(x.get(), x_new.get(), int64_t(x.count() * sizeof(uint16_t))),
                                      q_word, q_seen.get(), test::kLateWriterSpinNs);
  STATUS_OK(quantize(q.get(), scale.get()));  // programmatic: the default on Hopper
  CUDA_OK(cudaStreamSynchronize(s));
  CUDA_OK(cudaStreamDestroy(s));

  EXPECT_EQ(q_seen.download()[0], 0x80808080u) << "the quantization wrote q while the kernel before it still ran";
  EXPECT_EQ(test::differing_elements(q.download(), q_expected.download()), 0u)
      << "int8 values differ from the same quantization of the new x in plain order: the kernel "
         "read x before the kernel writing it had finished";
  EXPECT_EQ(test::differing_elements(scale.download(), scale_expected.download()), 0u)
      << "row scales differ from the same quantization of the new x in plain order";
}

INSTANTIATE_TEST_SUITE_P(Producers, QuantAfterWriter, ::testing::ValuesIn(producers()),
                         [](const ::testing::TestParamInfo<Producer>& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(Producers, QuantThenGemm, ::testing::ValuesIn(producers()),
                         [](const ::testing::TestParamInfo<Producer>& info) { return info.param.name; });

}  // namespace
}  // namespace int8dit
