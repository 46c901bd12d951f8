#include "lt_matmul.h"

#include "check.h"

namespace bench {

const char* to_string(Fp8Scaling s) { return s == Fp8Scaling::kOuterVector ? "outer_vector" : "per_tensor"; }

LtMatmul::LtMatmul(cublasLtHandle_t handle, LtPath path, int64_t m, int64_t n, int64_t k, Fp8Scaling scaling)
    : handle_(handle), path_(path) {
  cudaDataType_t in_type = CUDA_R_16BF, out_type = CUDA_R_16BF, scale_type = CUDA_R_32F;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  switch (path) {
    case LtPath::kBf16Bias:
      break;
    case LtPath::kInt8Int32:
      in_type = CUDA_R_8I;
      out_type = CUDA_R_32I;
      scale_type = CUDA_R_32I;
      compute = CUBLAS_COMPUTE_32I;
      break;
    case LtPath::kFp8Bf16Bias:
    case LtPath::kFp8Bf16:
      in_type = CUDA_R_8F_E4M3;
      break;
  }
  BENCH_CUBLAS(cublasLtMatmulDescCreate(&desc_, compute, scale_type));
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  BENCH_CUBLAS(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof op_t));
  BENCH_CUBLAS(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof op_n));
  if (path == LtPath::kBf16Bias || path == LtPath::kFp8Bf16Bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    BENCH_CUBLAS(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    const cudaDataType_t bias_type = CUDA_R_16BF;
    BENCH_CUBLAS(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type));
  }
  const bool fp8 = path == LtPath::kFp8Bf16Bias || path == LtPath::kFp8Bf16;
  if (fp8 && scaling == Fp8Scaling::kOuterVector) {
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    BENCH_CUBLAS(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode));
    BENCH_CUBLAS(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode));
  }
  // Column-major views: W [N, K] row-major is K x N with ld K (op T); X [M, K] is K x M with ld K;
  // Y [M, N] row-major is N x M with ld N.
  BENCH_CUBLAS(cublasLtMatrixLayoutCreate(&w_layout_, in_type, uint64_t(k), uint64_t(n), k));
  BENCH_CUBLAS(cublasLtMatrixLayoutCreate(&x_layout_, in_type, uint64_t(k), uint64_t(m), k));
  BENCH_CUBLAS(cublasLtMatrixLayoutCreate(&y_layout_, out_type, uint64_t(n), uint64_t(m), n));
}

LtMatmul::~LtMatmul() {
  if (y_layout_) cublasLtMatrixLayoutDestroy(y_layout_);
  if (x_layout_) cublasLtMatrixLayoutDestroy(x_layout_);
  if (w_layout_) cublasLtMatrixLayoutDestroy(w_layout_);
  if (desc_) cublasLtMatmulDescDestroy(desc_);
}

void LtMatmul::set_bias(const void* bias_bf16) {
  BENCH_CUBLAS(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_bf16, sizeof bias_bf16));
}

void LtMatmul::set_fp8_scales(const float* scale_w, const float* scale_x) {
  // cuBLAS's A is our W (scale per output channel), its B is our X (scale per token).
  BENCH_CUBLAS(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &scale_w, sizeof scale_w));
  BENCH_CUBLAS(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &scale_x, sizeof scale_x));
}

std::vector<cublasLtMatmulHeuristicResult_t> LtMatmul::heuristics(int max_algos, size_t workspace_bytes) {
  cublasLtMatmulPreference_t pref = nullptr;
  BENCH_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
  BENCH_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                    sizeof workspace_bytes));
  std::vector<cublasLtMatmulHeuristicResult_t> results(max_algos);
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, desc_, w_layout_, x_layout_, y_layout_, y_layout_,
                                                           pref, max_algos, results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS) {
    last_error_ = std::string("cublasLtMatmulAlgoGetHeuristic: ") + cublasLtGetStatusName(st);
    return {};
  }
  results.resize(found);
  if (found == 0) last_error_ = "cublasLtMatmulAlgoGetHeuristic returned no algorithm";
  return results;
}

void LtMatmul::run(const cublasLtMatmulAlgo_t& algo, const void* x, const void* w, void* y, void* workspace,
                   size_t workspace_bytes, cudaStream_t stream) const {
  const float alpha_f = 1.0f, beta_f = 0.0f;
  const int32_t alpha_i = 1, beta_i = 0;
  const bool int_scale = path_ == LtPath::kInt8Int32;
  const void* alpha = int_scale ? static_cast<const void*>(&alpha_i) : &alpha_f;
  const void* beta = int_scale ? static_cast<const void*>(&beta_i) : &beta_f;
  BENCH_CUBLAS(cublasLtMatmul(handle_, desc_, alpha, w, w_layout_, x, x_layout_, beta, y, y_layout_, y, y_layout_,
                              &algo, workspace, workspace_bytes, stream));
}

int LtMatmul::algo_id(const cublasLtMatmulAlgo_t& algo) {
  int id = -1;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, nullptr);
  return id;
}

int LtMatmul::algo_tile(const cublasLtMatmulAlgo_t& algo) {
  uint32_t tile = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, nullptr);
  return int(tile);
}

}  // namespace bench
