#include "tune/timing_buffers.h"

#include <algorithm>
#include <random>

#include "core/cuda_check.h"

namespace int8dit::tune {
namespace {

// NOTE: 3x L2 so a set is evicted before it is read again; at most 32 sets and 2 GiB in all so a
// tiny problem does not allocate without bound.
constexpr size_t kMaxSets = 32;
constexpr size_t kMaxRotationBytes = size_t{2} << 30;

size_t l2_bytes() {
  int dev = 0, l2 = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev);
  return l2 > 0 ? static_cast<size_t>(l2) : size_t{50} << 20;
}

}  // namespace

TimingBuffers::~TimingBuffers() {
  for (void* p : allocations_) cudaFreeAsync(p, stream_);
  if (!allocations_.empty()) cudaStreamSynchronize(stream_);
}

Status TimingBuffers::allocate(int64_t m, int64_t n, int64_t k, DType d_type, bool bias, size_t workspace_bytes,
                               cudaStream_t stream) {
  m_ = m, n_ = n, k_ = k, d_type_ = d_type, bias_ = bias && d_type != DType::kInt32, stream_ = stream;
  auto alloc = [&](size_t bytes, void** out) {
    Status st = detail::cuda_status(cudaMallocAsync(out, std::max<size_t>(bytes, 16), stream), "cudaMallocAsync");
    if (st.ok()) allocations_.push_back(*out);
    return st;
  };
  const size_t a_bytes = static_cast<size_t>(m * k), b_bytes = static_cast<size_t>(n * k);
  // NOTE: D's rows must start on 16-byte boundaries (validate()), so pad ldd for odd N.
  const int64_t elems16 = 16 / static_cast<int64_t>(size_of(d_type));
  ldd_ = (n + elems16 - 1) / elems16 * elems16;
  const size_t d_bytes = static_cast<size_t>(m * ldd_) * size_of(d_type);
  const size_t set_bytes = a_bytes + b_bytes + d_bytes;
  size_t want = (3 * l2_bytes() + set_bytes - 1) / set_bytes;
  want = std::min(want, std::max<size_t>(1, kMaxRotationBytes / set_bytes));
  want = std::clamp<size_t>(want, 1, kMaxSets);

  // One random int8 image of the largest input, copied into every set.
  std::vector<int8_t> host(std::max(a_bytes, b_bytes));
  std::mt19937 rng(12345);
  for (size_t i = 0; i < host.size(); i += 4) {
    uint32_t r = rng();
    for (size_t j = 0; j < 4 && i + j < host.size(); ++j) host[i + j] = static_cast<int8_t>(static_cast<int>((r >> (8 * j)) & 0xFF) % 255 - 127);
  }
  sets_.resize(want);
  for (Set& s : sets_) {
    void *a = nullptr, *b = nullptr, *d = nullptr;
    INT8DIT_RETURN_IF_ERROR(alloc(a_bytes, &a));
    INT8DIT_RETURN_IF_ERROR(alloc(b_bytes, &b));
    INT8DIT_RETURN_IF_ERROR(alloc(d_bytes, &d));
    s.a = static_cast<int8_t*>(a), s.b = static_cast<int8_t*>(b), s.d = d;
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaMemcpyAsync(a, host.data(), a_bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync"));
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaMemcpyAsync(b, host.data(), b_bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync"));
  }
  if (d_type != DType::kInt32) {
    std::vector<float> scales(static_cast<size_t>(std::max(m, n)), 1.0f / 127.0f);
    void *sa = nullptr, *sb = nullptr, *bi = nullptr;
    INT8DIT_RETURN_IF_ERROR(alloc(static_cast<size_t>(m) * 4, &sa));
    INT8DIT_RETURN_IF_ERROR(alloc(static_cast<size_t>(n) * 4, &sb));
    INT8DIT_RETURN_IF_ERROR(alloc(static_cast<size_t>(n) * 4, &bi));
    scale_a_ = static_cast<float*>(sa), scale_b_ = static_cast<float*>(sb), bias_ptr_ = static_cast<float*>(bi);
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaMemcpyAsync(sa, scales.data(), m * 4, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync"));
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaMemcpyAsync(sb, scales.data(), n * 4, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync"));
    INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaMemcpyAsync(bi, scales.data(), n * 4, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync"));
  }
  if (workspace_bytes > 0) INT8DIT_RETURN_IF_ERROR(alloc(workspace_bytes, &workspace_));
  workspace_bytes_ = workspace_bytes;
  // NOTE: the host image must outlive the asynchronous copies.
  return detail::cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

GemmParams TimingBuffers::params(int i) const {
  const Set& s = sets_[static_cast<size_t>(i) % sets_.size()];
  GemmParams p;
  p.m = m_, p.n = n_, p.k = k_;
  p.a = s.a, p.lda = k_;
  p.b = s.b, p.ldb = k_;
  p.d = s.d, p.d_type = d_type_, p.ldd = ldd_;
  if (d_type_ != DType::kInt32) {
    p.scale_a = scale_a_;
    p.scale_b = scale_b_;
    p.bias = bias_ ? bias_ptr_ : nullptr;
  }
  p.workspace = workspace_;
  p.workspace_bytes = workspace_bytes_;
  return p;
}

GemmParams TimingBuffers::params(int i, int64_t m) const {
  GemmParams p = params(i);
  p.m = std::min(m, m_);
  return p;
}

}  // namespace int8dit::tune
