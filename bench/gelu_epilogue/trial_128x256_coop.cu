// One GELU-epilogue trial configuration (gelu_epilogue.cuh), the twin of the library's sm90_bf16_128x256x128_2x1_coop.
#define CUTLASS_ENABLE_GDC_FOR_SM90 1
#include "gelu_epilogue.cuh"

int8dit::Status gelu_trial::run_gelu_128x256_coop(const int8dit::GemmParams& p, cudaStream_t stream) {
  using namespace int8dit::detail::sm90;
  return run_gelu<GemmConfig<cutlass::bfloat16_t, 128, 256, 128, 2, 1, Schedule::kCooperative, TileScheduling::kPersistent>>(p, stream);
}
