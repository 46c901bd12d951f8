// Test helper: a 64-byte aligned host array (the GEMM's validation asks for 16-byte aligned bases,
// on the CPU reference as on the GPU), filled with a poison value so unwritten elements show.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

template <typename T>
class HostArray {
 public:
  explicit HostArray(size_t n, T fill = T()) : n_(n) {
    const size_t bytes = ((n * sizeof(T) + 63) / 64 + 1) * 64;
    data_.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
    if (!data_) throw std::bad_alloc();
    for (size_t i = 0; i < n_; ++i) data_.get()[i] = fill;
  }
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return data_.get()[i]; }
  const T& operator[](size_t i) const { return data_.get()[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  size_t n_;
  std::unique_ptr<T, Free> data_;
};
