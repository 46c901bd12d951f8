// Device facts, kernel families and the GPU-only argument errors: host memory passed as device
// memory, CUDA error strings, a GPU below sm_80, and "no GPU" itself. Tests that need a CUDA GPU
// skip with the reason where there is none; the ones that check the no-GPU behaviour run there.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "host_array.h"
#include "int8dit/check.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "int8dit/reference.h"

namespace int8dit {
namespace {

bool has_gpu() {
  int count = 0;
  const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  cudaGetLastError();
  return ok;
}

#define SKIP_WITHOUT_GPU() \
  if (!has_gpu()) GTEST_SKIP() << "no CUDA GPU on this machine (cudaGetDeviceCount found none): run it on a GPU machine"

// Device memory freed at scope exit.
template <typename T>
struct DeviceArray {
  T* ptr = nullptr;
  explicit DeviceArray(size_t n) { EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)), cudaSuccess); }
  ~DeviceArray() { cudaFree(ptr); }
};

TEST(KernelFamily, BelowSm80HasNoFamilyAndSaysWhy) {
  for (int cc : {50, 61, 70, 72, 75}) EXPECT_EQ(kernel_family_for(cc), KernelFamily::kNone) << "cc " << cc;
  EXPECT_NE(std::string(to_string(KernelFamily::kNone)).find("8.0 or newer"), std::string::npos);
}

TEST(KernelFamily, AmpereAndAdaUseMmaSyncAndHopperUsesWgmma) {
  for (int cc : {80, 86, 87, 89}) EXPECT_EQ(kernel_family_for(cc), KernelFamily::kSm80MmaSync) << "cc " << cc;
  EXPECT_EQ(kernel_family_for(90), KernelFamily::kSm90Wgmma);
}

// A null pointer is refused by name before any CUDA call (so on any machine), where the device
// checking mode would otherwise hand it to cudaMemcpyAsync.
TEST(PointerCheck, NullIsRefusedByNameWithoutACudaCall) {
  Status st = detail::check_device_pointer(nullptr, "scale");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("scale is null"), std::string::npos) << st.message();
  std::vector<int64_t> rows;
  st = find_nonfinite_rows_on_device(nullptr, 4, nullptr, &rows);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("scale is null"), std::string::npos) << st.message();
  EXPECT_TRUE(detail::check_device_pointers({{nullptr, "optional"}}).ok());  // a call's optional inputs
}

TEST(CudaErrors, StatusCarriesTheCudaErrorNameAndString) {
  const Status st = detail::cuda_status(cudaErrorInvalidValue, "cudaMemcpy (test)");
  EXPECT_EQ(st.code(), StatusCode::kCudaError);
  EXPECT_NE(st.message().find("cudaMemcpy (test) failed"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("cudaErrorInvalidValue"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(cudaGetErrorString(cudaErrorInvalidValue)), std::string::npos) << st.message();
  EXPECT_TRUE(detail::cuda_status(cudaSuccess, "x").ok());
}

TEST(Device, WithoutAGpuCurrentDeviceSaysNoCudaGpuFound) {
  if (has_gpu()) GTEST_SKIP() << "this machine has a CUDA GPU: the no-GPU message cannot be observed here";
  DeviceInfo info;
  const Status st = current_device(&info);
  EXPECT_EQ(st.code(), StatusCode::kNotSupported);
  EXPECT_NE(st.message().find("no CUDA GPU found"), std::string::npos) << st.message();
}

TEST(Device, WithoutAGpuTheGemmSaysSoInsteadOfCrashing) {
  if (has_gpu()) GTEST_SKIP() << "this machine has a CUDA GPU: the no-GPU path cannot be observed here";
  HostArray<int8_t> a(16 * 16), b(16 * 16);
  HostArray<int32_t> d(16 * 16);
  GemmParams p;
  p.m = p.n = p.k = 16;
  p.a = a.data(), p.lda = 16, p.b = b.data(), p.ldb = 16;
  p.d = d.data(), p.d_type = DType::kInt32, p.ldd = 16;
  GemmOptions no_pointer_check;
  no_pointer_check.check_pointers = false;
  const Status st = gemm_w8a8(p, nullptr, &no_pointer_check);
  EXPECT_EQ(st.code(), StatusCode::kNotSupported) << st.to_string();
  EXPECT_NE(st.message().find("no usable CUDA GPU"), std::string::npos) << st.message();
  EXPECT_EQ(gemm_config_names(), "");
}

TEST(DeviceGpu, CurrentDeviceReportsAPlausibleGpu) {
  SKIP_WITHOUT_GPU();
  DeviceInfo info;
  const Status st = current_device(&info);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_FALSE(info.name.empty());
  EXPECT_GE(info.cc, 50);
  EXPECT_GT(info.sm_count, 0);
  EXPECT_GT(info.memory_bytes, size_t{1} << 30);
  EXPECT_GT(info.l2_bytes, 0u);
  EXPECT_EQ(info.family, kernel_family_for(info.cc));
}

TEST(DeviceGpu, HostPointerPassedAsDeviceMemoryIsRejectedByName) {
  SKIP_WITHOUT_GPU();
  const int64_t m = 16, n = 16, k = 32;
  DeviceArray<int8_t> b(n * k);
  DeviceArray<int32_t> d(m * n);
  HostArray<int8_t> host_a(m * k, 1);
  GemmParams p;
  p.m = m, p.n = n, p.k = k;
  p.a = host_a.data(), p.lda = k, p.b = b.ptr, p.ldb = k;
  p.d = d.ptr, p.d_type = DType::kInt32, p.ldd = n;
  const Status st = gemm_w8a8(p, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("A points to host memory"), std::string::npos) << st.message();
}

TEST(DeviceGpu, HostScalesPassedToTheDeviceCheckingModeAreRejected) {
  SKIP_WITHOUT_GPU();
  HostArray<float> host_scale(4, 1.0f);
  std::vector<int64_t> rows;
  const Status st = find_nonfinite_rows_on_device(host_scale.data(), 4, nullptr, &rows);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("host memory"), std::string::npos) << st.message();
}

// The pointer check asks the driver for three attributes (device.cpp); these are the kinds of memory
// whose answers differ: pinned host memory is CUDA's but not the GPU's, managed memory is usable from
// the GPU whatever its device field says, and a pointer inside an allocation counts as that allocation.
TEST(DeviceGpu, PointerCheckTellsPinnedManagedAndInteriorPointersApart) {
  SKIP_WITHOUT_GPU();
  const std::vector<float> scales = {0.5f, 1.0f, std::numeric_limits<float>::infinity(), 2.0f};
  const int64_t count = static_cast<int64_t>(scales.size());
  std::vector<int64_t> rows;

  float* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&pinned), sizeof(float) * scales.size()), cudaSuccess);
  std::copy(scales.begin(), scales.end(), pinned);
  Status st = find_nonfinite_rows_on_device(pinned, count, nullptr, &rows);
  cudaFreeHost(pinned);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("scale points to host memory"), std::string::npos) << st.message();

  float* managed = nullptr;
  ASSERT_EQ(cudaMallocManaged(reinterpret_cast<void**>(&managed), sizeof(float) * scales.size()), cudaSuccess);
  std::copy(scales.begin(), scales.end(), managed);
  st = find_nonfinite_rows_on_device(managed, count, nullptr, &rows);
  cudaFree(managed);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(rows, (std::vector<int64_t>{2}));

  DeviceArray<float> d(16);
  ASSERT_EQ(cudaMemcpy(d.ptr + 9, scales.data(), sizeof(float) * scales.size(), cudaMemcpyHostToDevice), cudaSuccess);
  st = find_nonfinite_rows_on_device(d.ptr + 9, count, nullptr, &rows);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(rows, (std::vector<int64_t>{2}));
}

// The check remembers the allocations it found good (src/core/pointer_check.cpp): a second look at a
// pointer, or one into the same allocation, is answered from that memory and must agree with the
// driver's answer; host memory checked after device memory is still refused.
TEST(DeviceGpu, PointerCheckRemembersGoodAllocationsAndStillRefusesHostMemory) {
  SKIP_WITHOUT_GPU();
  DeviceArray<float> d(1024);
  ASSERT_TRUE(detail::check_device_pointer(d.ptr, "x").ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(detail::check_device_pointer(d.ptr, "x").ok());
    EXPECT_TRUE(detail::check_device_pointer(d.ptr + 777, "x").ok());
  }
  std::vector<float> host(1024);
  Status st = detail::check_device_pointer(host.data(), "y");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("y points to host memory"), std::string::npos) << st.message();

  float* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&pinned), 4096), cudaSuccess);
  for (int i = 0; i < 2; ++i) {  // a refusal is never remembered: the second answer is the driver's again
    st = detail::check_device_pointer(pinned + 8, "z");
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  }
  cudaFreeHost(pinned);

  // More allocations than the memory holds: every one still passes, the first ones by a new query.
  std::vector<float*> many(40, nullptr);
  for (float*& p : many) ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), 256), cudaSuccess);
  for (int round = 0; round < 2; ++round) {
    for (float* p : many) EXPECT_TRUE(detail::check_device_pointer(p + 3, "w").ok());
  }
  for (float* p : many) cudaFree(p);
}

// A pointer the memory would refuse is asked about again, and the error then is the driver's: here a
// remembered allocation of device 0 checked while device 1 is current.
TEST(DeviceGpu, PointerCheckOnAnotherDeviceStillFailsOnceRemembered) {
  SKIP_WITHOUT_GPU();
  int count = 0;
  cudaGetDeviceCount(&count);
  if (count < 2) GTEST_SKIP() << "needs two CUDA GPUs (this machine has " << count << ")";
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  DeviceArray<float> d(64);
  ASSERT_TRUE(detail::check_device_pointer(d.ptr, "x").ok());
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  const Status st = detail::check_device_pointer(d.ptr, "x");
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("x lives on device 0 but the current device is 1"), std::string::npos) << st.message();
  EXPECT_TRUE(detail::check_device_pointer(d.ptr, "x").ok());
}

TEST(DeviceGpu, CheckingModeFindsNonFiniteScalesInDeviceMemory) {
  SKIP_WITHOUT_GPU();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> scales = {0.5f, nan, 0.0f, std::numeric_limits<float>::infinity(), 1.0f};
  DeviceArray<float> d(scales.size());
  ASSERT_EQ(cudaMemcpy(d.ptr, scales.data(), scales.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  std::vector<int64_t> rows;
  const Status st = find_nonfinite_rows_on_device(d.ptr, static_cast<int64_t>(scales.size()), nullptr, &rows);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(rows, (std::vector<int64_t>{1, 3}));
}

TEST(DeviceGpu, GemmOnThisGpuIsBitExactOrSaysWhyNot) {
  SKIP_WITHOUT_GPU();
  const int64_t m = 65, n = 48, k = 96;
  HostArray<int8_t> a(m * k), b(n * k);
  for (int64_t i = 0; i < m * k; ++i) a[i] = static_cast<int8_t>((i * 37) % 255 - 127);
  for (int64_t i = 0; i < n * k; ++i) b[i] = static_cast<int8_t>((i * 91) % 255 - 127);
  HostArray<int32_t> want(m * n);
  GemmParams p;
  p.m = m, p.n = n, p.k = k, p.lda = k, p.ldb = k, p.ldd = n, p.d_type = DType::kInt32;
  p.a = a.data(), p.b = b.data(), p.d = want.data();
  ASSERT_TRUE(ref::gemm_w8a8(p).ok());

  DeviceArray<int8_t> da(m * k), db(n * k);
  DeviceArray<int32_t> dd(m * n);
  cudaMemcpy(da.ptr, a.data(), m * k, cudaMemcpyHostToDevice);
  cudaMemcpy(db.ptr, b.data(), n * k, cudaMemcpyHostToDevice);
  cudaMemset(dd.ptr, 0xff, m * n * sizeof(int32_t));  // poison: unwritten elements read -1
  p.a = da.ptr, p.b = db.ptr, p.d = dd.ptr;
  const Status st = gemm_w8a8(p, nullptr);
  if (st.code() == StatusCode::kNotImplemented || st.code() == StatusCode::kNotSupported)
    GTEST_SKIP() << "the GPU path cannot run this raw int32 problem here: " << st.to_string();
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  HostArray<int32_t> got(m * n);
  cudaMemcpy(got.data(), dd.ptr, m * n * sizeof(int32_t), cudaMemcpyDeviceToHost);
  for (int64_t i = 0; i < m * n; ++i) ASSERT_EQ(got[i], want[i]) << "element (" << i / n << ", " << i % n << ")";
}

}  // namespace
}  // namespace int8dit
