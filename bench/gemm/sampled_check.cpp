#include "sampled_check.h"

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "check.h"

namespace bench {
namespace {

size_t size_of(ElemType t) {
  switch (t) {
    case ElemType::kInt8:
    case ElemType::kFp8E4M3: return 1;
    case ElemType::kBf16: return 2;
    case ElemType::kInt32: return 4;
  }
  return 0;
}

double element(ElemType t, const unsigned char* p) {
  switch (t) {
    case ElemType::kInt8: return double(*reinterpret_cast<const int8_t*>(p));
    case ElemType::kFp8E4M3: {
      __nv_fp8_e4m3 v;
      std::memcpy(&v, p, 1);
      return double(float(v));
    }
    case ElemType::kBf16: {
      __nv_bfloat16 v;
      std::memcpy(&v, p, 2);
      return double(__bfloat162float(v));
    }
    case ElemType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return double(v);
    }
  }
  return 0;
}

std::vector<unsigned char> copy_row(const void* base, int64_t row, int64_t len, ElemType t) {
  std::vector<unsigned char> h(static_cast<size_t>(len) * size_of(t));
  BENCH_CUDA(cudaMemcpy(h.data(), static_cast<const unsigned char*>(base) + size_t(row) * h.size(), h.size(),
                        cudaMemcpyDeviceToHost));
  return h;
}

}  // namespace

SampleResult check_samples(const SampleSpec& s) {
  SampleResult r;
  uint64_t state = 0x2545F4914F6CDD1Dull;
  auto next = [&](int64_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return int64_t((state >> 33) % uint64_t(bound));
  };
  const size_t in_size = size_of(s.in_type), out_size = size_of(s.out_type);
  for (int i = 0; i < s.samples; ++i) {
    // The corners first (tails of ragged tiles live there), then random elements.
    const int64_t row = i == 0 ? 0 : i == 1 ? s.m - 1 : next(s.m);
    const int64_t col = i == 0 ? 0 : i == 1 ? s.n - 1 : next(s.n);
    const std::vector<unsigned char> xr = copy_row(s.x, row, s.k, s.in_type);
    const std::vector<unsigned char> wr = copy_row(s.w, col, s.k, s.in_type);
    unsigned char got_raw[4];
    BENCH_CUDA(cudaMemcpy(got_raw, static_cast<const unsigned char*>(s.y) + (size_t(row) * s.n + col) * out_size,
                          out_size, cudaMemcpyDeviceToHost));
    double dot = 0, abs_dot = 0;
    for (int64_t kk = 0; kk < s.k; ++kk) {
      const double p = element(s.in_type, &xr[kk * in_size]) * element(s.in_type, &wr[kk * in_size]);
      dot += p;
      abs_dot += std::fabs(p);
    }
    const double got = element(s.out_type, got_raw);
    double want = s.expected(row, col, dot);
    if (s.exact && s.out_type == ElemType::kBf16) want = double(__bfloat162float(__float2bfloat16_rn(float(want))));
    const double bound = s.exact ? 0.0 : s.rel_tol * (std::fabs(want) + 0.01 * s.magnitude(row, col, abs_dot));
    const double err = std::fabs(got - want);
    ++r.checked;
    if (!s.exact && bound > 0) r.max_err = std::fmax(r.max_err, err / bound);
    if (!(err <= bound)) {  // also catches NaN
      if (r.ok)
        r.message = "Y[" + std::to_string(row) + "][" + std::to_string(col) + "] = " + std::to_string(got) +
                    ", expected " + std::to_string(want) + (s.exact ? " exactly" : " +- " + std::to_string(bound));
      r.ok = false;
    }
  }
  return r;
}

}  // namespace bench
