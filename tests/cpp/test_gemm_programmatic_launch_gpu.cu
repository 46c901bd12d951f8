// Programmatic dependent launch (GemmOptions::programmatic_launch, on by default on Hopper) lets the
// GEMM's blocks start before the kernel ahead of it in the stream has finished. It must never let the
// GEMM read an input that kernel is still writing, nor write an output it is still reading.
//
// The setup: a writer kernel releases its dependents at once (griddepcontrol.launch_dependents),
// spins for a while, then overwrites A with new values and reads D. Launched right behind it:
//   - a probe launched programmatically that does not wait: it must see the old A, which proves the
//     GPU did start the next kernel early here (otherwise the GEMM check below would prove nothing);
//   - the GEMM, every configuration forced by name: its output must be bit-identical to the same GEMM
//     run on the new A in plain stream order, and the writer must have read D before the GEMM wrote it.
// And the same with the writer replacing B, scale_b and bias instead of A: those are the layer's
// parameters, which a kernel may be tempted to touch before it waits (a kernel-start L2 prefetch of
// them was tried and dropped, bench/results/h200/README.md), and the GEMM must compute with their new
// values all the same.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "bitwise.h"
#include "device_buffer.h"
#include "late_writer.cuh"
#include "random_values.h"
#include "sm90_test_support.h"

namespace int8dit {
namespace {

// Reads a[0] with no griddepcontrol.wait.
__global__ void impatient_probe(const int8_t* a, int8_t* seen) { *seen = a[0]; }

#define SKIP_UNLESS_HOPPER() INT8DIT_SKIP_UNLESS_HOPPER("programmatic launch tests")

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

template <class T>
using Buffer = test::DeviceBuffer<T>;

// NOTE: CUDA loads a kernel's module on its first launch (lazy loading), and that first launch did not
// overlap the kernel before it (the H200, driver 580): each test runs both kernels once before timing
// anything, so the launches it checks are not first launches.
void load_kernels(int8_t* a, const int8_t* fresh, const uint32_t* d, uint32_t* d_seen, int8_t* seen) {
  test::late_writer<<<1, 32>>>(test::Copies{}.add(a, fresh, 0), d, d_seen, 0);
  impatient_probe<<<1, 1>>>(a, seen);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

TEST(ProgrammaticLaunch, TheGpuStartsTheNextKernelEarlyHere) {
  SKIP_UNLESS_HOPPER();
  if (test::sanitizer_run()) GTEST_SKIP() << "compute-sanitizer serializes kernels: no overlap to observe";
  const std::vector<int8_t> old_a = {11}, new_a = {-42};
  Buffer<int8_t> a(1), fresh(1), seen(1);
  Buffer<uint32_t> d(1), d_seen(1);
  a.upload(old_a), fresh.upload(new_a);
  load_kernels(a.get(), fresh.get(), d.get(), d_seen.get(), seen.get());
  CUDA_OK(cudaDeviceSynchronize());  // the uploads are done before anything runs on the non-blocking stream
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  test::late_writer<<<4, 128, 0, s>>>(test::Copies{}.add(a.get(), fresh.get(), 1), d.get(), d_seen.get(),
                                      test::kLateWriterSpinNs);
  CUDA_OK(test::launch_one_thread_programmatic(impatient_probe, s, a.get(), seen.get()));
  CUDA_OK(cudaStreamSynchronize(s));
  CUDA_OK(cudaStreamDestroy(s));
  EXPECT_EQ(seen.download()[0], old_a[0])
      << "a kernel launched programmatically behind one that released its dependents did not start before it "
         "ended: the GEMM test below would then pass without testing anything";
  EXPECT_EQ(a.download()[0], new_a[0]);
}

// Every configuration, forced by name, with the output type its name says.
class ProgrammaticGemm : public ::testing::TestWithParam<std::string> {};


size_t element_bytes(DType t) { return t == DType::kBF16 || t == DType::kFP16 ? 2 : 4; }

// Which operands the writer replaces while the GEMM waits for it.
enum class Replaced {
  kActivation,  // A: what the GEMM loads after griddepcontrol.wait
  kParameters,  // B, scale_b and bias: the layer's parameters
};

// The GEMM launched programmatically right behind a writer that replaces `replaced` 300 us after
// releasing it: D must be bit-identical to the same GEMM run in plain stream order on the new values,
// and D must not be written before the writer read it.
void check_against_plain_order(const std::string& config, Replaced replaced) {
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  SCOPED_TRACE("config " + config + ", seed " + std::to_string(seed));
  const int64_t m = 333, n = 1152, k = 1536;
  const DType d_type = test::output_type_of(config);
  const bool scaled = d_type != DType::kInt32;  // raw int32: no scales, no bias
  const size_t d_bytes = size_t(m) * n * element_bytes(d_type);

  // Each operand: the buffer the GEMM reads and the values it must end up computing with.
  Buffer<int8_t> a(size_t(m) * k), a_new(size_t(m) * k), b(size_t(n) * k), b_new(size_t(n) * k);
  Buffer<float> sa(m), sb(n), sb_new(n), bias(n), bias_new(n);
  Buffer<uint8_t> d(d_bytes), expected(d_bytes);
  Buffer<uint32_t> d_seen(1);
  Buffer<int8_t> probe_seen(1);
  load_kernels(a.get(), a_new.get(), reinterpret_cast<const uint32_t*>(d.get()), d_seen.get(), probe_seen.get());
  a_new.upload(test::uniform_int8(size_t(m) * k, rng));
  b_new.upload(test::uniform_int8(size_t(n) * k, rng));
  sa.upload(test::uniform_floats(m, rng, 1e-3f, 2e-3f));
  sb_new.upload(test::uniform_floats(n, rng, 1e-3f, 2e-3f));
  bias_new.upload(test::uniform_floats(n, rng, -1.0f, 1.0f));

  GemmParams p;
  p.m = m, p.n = n, p.k = k, p.lda = k, p.ldb = k, p.ldd = n;
  p.a = a.get(), p.b = b.get(), p.d_type = d_type;
  if (scaled) p.scale_a = sa.get(), p.scale_b = sb.get(), p.bias = bias.get();
  p.d = expected.get();  // the workspace query validates the whole call
  GemmOptions opts;
  opts.config = config.c_str();
  const size_t ws_bytes = gemm_workspace_size(p, &opts);
  Buffer<uint8_t> ws(ws_bytes ? ws_bytes : 1);
  p.workspace = ws.get(), p.workspace_bytes = ws_bytes;

  CUDA_OK(cudaDeviceSynchronize());  // the uploads are done before anything runs on the non-blocking stream
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  // The expected output: every operand at its new value, plain stream order.
  CUDA_OK(cudaMemcpy(a.get(), a_new.get(), a.count(), cudaMemcpyDeviceToDevice));
  CUDA_OK(cudaMemcpy(b.get(), b_new.get(), b.count(), cudaMemcpyDeviceToDevice));
  CUDA_OK(cudaMemcpy(sb.get(), sb_new.get(), sb.count() * sizeof(float), cudaMemcpyDeviceToDevice));
  CUDA_OK(cudaMemcpy(bias.get(), bias_new.get(), bias.count() * sizeof(float), cudaMemcpyDeviceToDevice));
  GemmOptions plain = opts;
  plain.programmatic_launch = false;
  const Status expected_status = gemm_w8a8(p, s, &plain);
  ASSERT_TRUE(expected_status.ok()) << expected_status.to_string();
  CUDA_OK(cudaStreamSynchronize(s));

  // Old values (other random draws) in what the writer replaces, and a poisoned D.
  test::Copies copies;
  if (replaced == Replaced::kActivation) {
    a.upload(test::uniform_int8(size_t(m) * k, rng));
    copies.add(a.get(), a_new.get(), int64_t(a.count()));
  } else {
    b.upload(test::uniform_int8(size_t(n) * k, rng));
    copies.add(b.get(), b_new.get(), int64_t(b.count()));
    if (scaled) {
      sb.upload(test::uniform_floats(n, rng, 3e-3f, 4e-3f));
      bias.upload(test::uniform_floats(n, rng, 2.0f, 3.0f));
      copies.add(sb.get(), sb_new.get(), int64_t(sb.count() * sizeof(float)));
      copies.add(bias.get(), bias_new.get(), int64_t(bias.count() * sizeof(float)));
    }
  }
  CUDA_OK(cudaMemset(d.get(), 0xFF, d_bytes));
  CUDA_OK(cudaMemset(d_seen.get(), 0, 4));
  CUDA_OK(cudaDeviceSynchronize());
  p.d = d.get();
  test::late_writer<<<8, 256, 0, s>>>(copies, reinterpret_cast<const uint32_t*>(d.get()), d_seen.get(),
                                      test::kLateWriterSpinNs);
  const Status st = gemm_w8a8(p, s, &opts);
  ASSERT_TRUE(st.ok()) << st.to_string();
  CUDA_OK(cudaStreamSynchronize(s));
  CUDA_OK(cudaStreamDestroy(s));

  EXPECT_EQ(d_seen.download()[0], 0xFFFFFFFFu) << "the GEMM wrote D while the kernel before it still read it";
  EXPECT_EQ(test::differing_elements(d.download(), expected.download()), 0u)
      << "bytes of D differ from the same GEMM run in plain stream order on the new values: the GEMM used an "
         "operand before the kernel writing it had finished";
}

TEST_P(ProgrammaticGemm, WaitsForTheKernelThatWritesItsInput) {
  SKIP_UNLESS_HOPPER();
  check_against_plain_order(GetParam(), Replaced::kActivation);
}

TEST_P(ProgrammaticGemm, WaitsForTheKernelThatWritesItsParameters) {
  SKIP_UNLESS_HOPPER();
  check_against_plain_order(GetParam(), Replaced::kParameters);
}

INSTANTIATE_TEST_SUITE_P(Sm90, ProgrammaticGemm, ::testing::ValuesIn(test::sm90_config_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace int8dit
