// One GELU-epilogue trial configuration (gelu_epilogue.cuh), the twin of the library's sm90_bf16_128x128x128_2x1_pingpong.
#define CUTLASS_ENABLE_GDC_FOR_SM90 1
#include "gelu_epilogue.cuh"

int8dit::Status gelu_trial::run_gelu_128x128_pingpong(const int8dit::GemmParams& p, cudaStream_t stream) {
  using namespace int8dit::detail::sm90;
  return run_gelu<GemmConfig<cutlass::bfloat16_t, 128, 128, 128, 2, 1, Schedule::kPingpong, TileScheduling::kPersistent>>(p, stream);
}
