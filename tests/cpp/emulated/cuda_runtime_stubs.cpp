// The CUDA runtime as `int8dit check`'s steps (tools/int8dit/check_*.cpp, check_device.h) use it, on
// host memory: "device" buffers are malloc'ed, copies are memcpy, every call succeeds. Linked into the
// emulated tests instead of libcudart.
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <cstring>

extern "C" {
cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::malloc(n ? n : 1);
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind) {
  std::memcpy(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaGetLastError() { return cudaSuccess; }
const char* cudaGetErrorString(cudaError_t) { return "(stub)"; }
const char* cudaGetErrorName(cudaError_t) { return "(stub)"; }
}
