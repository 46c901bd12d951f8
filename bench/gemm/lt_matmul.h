// The cuBLASLt baselines, all as the same linear layer Y[M, N] = X[M, K] W[N, K]^T (row-major):
// in cuBLASLt's column-major terms that is D[N, M] = W^T(op T) * X(op N), the "TN" layout that the
// int8 and FP8 tensor-core kernels require, with the bias along cuBLAS rows (= our N).
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

enum class LtPath {
  kBf16Bias,     // bf16 x bf16 -> bf16, fp32 compute, CUBLASLT_EPILOGUE_BIAS (bf16 bias)
  kInt8Int32,    // int8 x int8 -> int32, int32 compute, no epilogue (torch._int_mm)
  kFp8Bf16Bias,  // e4m3 x e4m3 -> bf16, fp32 compute, scales + CUBLASLT_EPILOGUE_BIAS (bf16 bias)
  kFp8Bf16,      // the same without the bias epilogue (where cuBLASLt has no outer-vector + bias kernel)
};

enum class Fp8Scaling {
  kOuterVector,  // CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F: per-channel W scale x per-token X scale
  kPerTensor,    // one fp32 scale per operand
};
const char* to_string(Fp8Scaling s);

class LtMatmul {
 public:
  LtMatmul(cublasLtHandle_t handle, LtPath path, int64_t m, int64_t n, int64_t k,
           Fp8Scaling scaling = Fp8Scaling::kOuterVector);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // Epilogue operands that stay fixed over the timed runs (device pointers). kBf16Bias and
  // kFp8Bf16Bias: bf16 bias of length N. kFp8Bf16Bias: scale_w (length N, or 1 if per tensor) and
  // scale_x (length M, or 1).
  void set_bias(const void* bias_bf16);
  void set_fp8_scales(const float* scale_w, const float* scale_x);

  // Up to max_algos candidates from cublasLtMatmulAlgoGetHeuristic, best first; empty where
  // cuBLASLt has none for this problem (the reason is in last_error()).
  std::vector<cublasLtMatmulHeuristicResult_t> heuristics(int max_algos, size_t workspace_bytes);
  const std::string& last_error() const { return last_error_; }

  // Enqueues one GEMM. Throws on a cuBLAS error.
  void run(const cublasLtMatmulAlgo_t& algo, const void* x, const void* w, void* y, void* workspace,
           size_t workspace_bytes, cudaStream_t stream) const;

  static int algo_id(const cublasLtMatmulAlgo_t& algo);
  static int algo_tile(const cublasLtMatmulAlgo_t& algo);

 private:
  cublasLtHandle_t handle_;
  LtPath path_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t w_layout_ = nullptr, x_layout_ = nullptr, y_layout_ = nullptr;
  std::string last_error_;
};

}  // namespace bench
