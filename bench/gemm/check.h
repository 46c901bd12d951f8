// Error checks for the benchmark: a failed CUDA or cuBLAS call throws, and the caller decides whether
// that ends one row (a shape) or the whole run. The message says which call failed and where.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace bench {

struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void check_cuda(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return;
  throw BenchError(std::string(what) + " failed: " + cudaGetErrorString(err) + " (" + file + ":" +
                   std::to_string(line) + ")");
}

inline void check_cublas(cublasStatus_t st, const char* what, const char* file, int line) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  throw BenchError(std::string(what) + " failed: " + cublasLtGetStatusName(st) + " (" + file + ":" +
                   std::to_string(line) + ")");
}

}  // namespace bench

#define BENCH_CUDA(call) ::bench::check_cuda((call), #call, __FILE__, __LINE__)
#define BENCH_CUBLAS(call) ::bench::check_cublas((call), #call, __FILE__, __LINE__)
