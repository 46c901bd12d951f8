// A device allocation for tests: n elements of T, freed with the test; uploads, downloads and byte
// fills report failures through GoogleTest.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

namespace int8dit::test {

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : count_(n) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr_), (n ? n : 1) * sizeof(T)), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t count() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }
  void upload(const std::vector<T>& h) {
    ASSERT_LE(h.size(), count_);
    EXPECT_EQ(cudaMemcpy(ptr_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> h(count_);
    EXPECT_EQ(cudaMemcpy(h.data(), ptr_, bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  // Every byte set to `byte` (poison before a run).
  void fill_bytes(int byte) { EXPECT_EQ(cudaMemset(ptr_, byte, bytes()), cudaSuccess); }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace int8dit::test
