// The benchmark's own small GPU kernels: random inputs, the dequantize step of the cuBLASLt int8
// baseline, the output comparison, a fallback reference GEMM, and the stream-holding kernels used
// for timing. Host-side launchers; every launcher checks its launch and throws on error.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace bench {

// ---- random inputs (fill.cu): counter-based, so a (seed, index) pair always gives the same value ----
// The operands' distribution matters to speed, not only to checks: under the H100's power cap the SM
// clock a GEMM holds depends on how many multiplier bits toggle, so uniform full-range int8 (the worst
// case) runs at a lower clock than the bell-shaped values a per-token quantizer makes of real
// activations. `normal` draws N(0, 1) scaled so that 4 sigma reaches the range's end (int8: sigma =
// 127 / 4, rounded and clamped to [-127, 127]; bf16: mean (lo + hi) / 2, sigma (hi - lo) / 8; fp8:
// sigma = amplitude / 4), about where a row of a few thousand values puts its absmax. `small` draws
// integers uniform in [-2, 2] in every type (what CUTLASS's examples initialize 8-bit operands with):
// few toggling bits, a diagnostic of how far the clock climbs on low-entropy data, not a DiT's values.
enum class Distribution { uniform, normal, small };
inline const char* distribution_name(Distribution d) {
  return d == Distribution::normal ? "normal" : d == Distribution::small ? "small" : "uniform";
}
void fill_int8(int8_t* p, size_t n, uint64_t seed, cudaStream_t s,
               Distribution d = Distribution::uniform);  // uniform: [-127, 127]
void fill_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s,
               Distribution d = Distribution::uniform);
void fill_fp8_e4m3(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float amplitude, cudaStream_t s,
                   Distribution d = Distribution::uniform);
void fill_f32(float* p, size_t n, uint64_t seed, float lo, float hi, cudaStream_t s);

// ---- the dequantize kernel of the "cuBLASLt int8 + dequantize" baseline (dequant.cu) ----
// y[m][n] = bf16(float(acc[m][n]) * (scale_x[m] * scale_w[n]) + bias[n]), fp32, one rounding,
// no fused multiply-add: the same arithmetic as int8dit::ref::epilogue_value.
void dequantize_int32_to_bf16(const int32_t* acc, int64_t m, int64_t n, const float* scale_x,
                              const float* scale_w, const float* bias, __nv_bfloat16* y, cudaStream_t s);

// ---- comparison of two bf16 [m, n] outputs (compare.cu) ----
struct CompareResult {
  double max_rel_err = 0;    // max |got - ref| / max(|ref|, floor), floor = 1e-3 * max |ref|
  double max_abs_ref = 0;
  int64_t over_tol = 0;      // elements whose relative error exceeds the tolerance
  int64_t non_finite = 0;    // elements where got or ref is NaN/Inf (outputs are poisoned with NaN)
  bool ok() const { return over_tol == 0 && non_finite == 0; }
};
CompareResult compare_bf16(const __nv_bfloat16* got, const __nv_bfloat16* ref, int64_t m, int64_t n,
                           double rel_tol, cudaStream_t s);

// ---- fallback reference (reference_gemm.cu): exact int32 A[M,K] x B[N,K]^T with dp4a ----
// Only used where cuBLASLt has no int8 algorithm for a shape; slow but independent.
void reference_gemm_int8(const int8_t* a, const int8_t* b, int32_t* acc, int64_t m, int64_t n, int64_t k,
                         cudaStream_t s);

// ---- stream holding and clock probing (spin.cu) ----
// Spins until *release (host-mapped memory) becomes non-zero or timeout_ns passes; sets *timed_out.
void launch_hold_stream(const volatile int* release, int* timed_out, uint64_t timeout_ns, cudaStream_t s);
// Runs one spinning block per SM for `duration_ns` and returns the SM clock each block saw, in MHz
// (clock64 cycles over globaltimer nanoseconds), averaged over the blocks.
double measure_sm_clock_mhz(int sm_count, uint64_t duration_ns);

// ---- the host's launch floor (launch_floor.cu) ----
// Host microseconds per cudaLaunchKernelExC of an empty kernel (132 x 384 threads) whose parameter
// block is `param_bytes` (one of the two below), with `dynamic_smem` bytes of dynamic shared memory
// (the GEMM asks for ~200 KB): the median over `rounds` rounds of `calls` back-to-back launches.
constexpr int kLaunchFloorSmallParamBytes = 64;
// sizeof(Params) of sm90_bf16_64x128x128_1x1_pingpong (the M = 1 pick) with CUTLASS 4.2, printed by a
// host program that includes src/gemm/sm90/w8a8_gemm_sm90.cuh.
constexpr int kLaunchFloorGemmParamBytes = 1792;
// through_driver: cuLaunchKernelEx with the kernel's CUfunction looked up once, instead of the runtime's
// cudaLaunchKernelExC (which finds the function from its host stub on every launch).
double measure_empty_launch_us(cudaStream_t stream, int calls, int rounds, int param_bytes, size_t dynamic_smem,
                               bool through_driver = false);

}  // namespace bench
