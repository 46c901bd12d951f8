// Element loads/stores and the per-row quantization step shared by every activation-quantization kernel.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "quant/row_shape.h"  // kVecElems

namespace int8dit::quant {

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

// The 8 elements of a 16-byte vector as floats (bf16: a shift or a mask each).
template <typename T>
__device__ __forceinline__ void unpack8(const uint4& raw, float (&v)[kVecElems]) {
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < kVecElems; ++i) v[i] = to_float(e[i]);
}
template <>
__device__ __forceinline__ void unpack8<__nv_bfloat16>(const uint4& raw, float (&v)[kVecElems]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = __uint_as_float(w[i] << 16);
    v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// Read-only, cache-friendly variant for per-channel vectors that every row of a batch reads again.
template <typename T>
__device__ __forceinline__ void load8_cached(const T* p, float (&v)[kVecElems]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < kVecElems; ++i) v[i] = to_float(e[i]);
}

__device__ __forceinline__ void load8_cached(const float* p, float (&v)[kVecElems]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}

template <typename T>
__device__ __forceinline__ void store8(T* p, const float (&v)[kVecElems]) {
  uint4 raw;
  T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int i = 0; i < kVecElems; ++i) e[i] = from_float<T>(v[i]);
  *reinterpret_cast<uint4*>(p) = raw;
}

// A shared-memory pointer as the 32-bit address the async copies take.
__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// An L2 policy for data read once (sm_80+): the bulk-copy ring's rows and the staged grouped kernel's.
__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

// Asks L2 for the `bytes` bytes at p (16-byte aligned, bytes a multiple of 16) with one bulk prefetch
// (cp.async.bulk.prefetch.L2, sm_90): no registers held and nothing to wait for. The wide SmoothQuant
// kernel asks for the row after the one it loads into registers, so DRAM sees two rows a CTA in flight
// where the registers hold one (row_kernels.cuh: row_quantize_registers, kPrefetchesL2). A no-op
// before sm_90.
__device__ __forceinline__ void prefetch_l2(const void* p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#endif
}

// max that propagates NaN (PTX max.NaN, sm_80+): a NaN anywhere in the row makes amax NaN, an Inf
// makes it Inf, so the row max alone says whether the row is finite.
__device__ __forceinline__ float max_nan(float a, float b) {
  float d;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b));
  return d;
}

// The per-row factors of DESIGN.md's quantization, from the row's max |v|.
struct RowQuant {
  float scale;  // written to the per-row scale output
  float inv;    // multiplies each value before rounding
  bool fast;    // every value is finite and |v * inv| <= 127.00002: quantize8_fast applies
};

__device__ __forceinline__ RowQuant row_quant(float amax) {
  if (!(amax <= 3.402823466e38f)) return {__uint_as_float(0x7fc00000u), 0.0f, false};  // NaN/Inf: NaN scale, zeros
  if (amax == 0.0f) return {0.0f, 0.0f, false};                                       // zero row: scale 0, zeros
  // NOTE: plain '/' is IEEE-rounded division in nvcc's default -prec-div=true, matching the CPU bit for bit.
  const float inv = 127.0f / amax;
  return {amax / 127.0f, inv, inv <= 3.402823466e38f};  // amax below ~3.7e-37 overflows inv: the clamped path
}

// clamp(rint(v * inv), -127, 127); the conversion rounds half to even and maps NaN to 0. Any row.
__device__ __forceinline__ int8_t quantize_value(float v, float inv) {
  const int r = __float2int_rn(__fmul_rn(v, inv));
  return static_cast<int8_t>(max(-127, min(127, r)));
}

__device__ __forceinline__ void store8_int8(int8_t* p, const float (&v)[kVecElems], float inv) {
  uint32_t lo = 0, hi = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    lo |= static_cast<uint32_t>(static_cast<uint8_t>(quantize_value(v[i], inv))) << (8 * i);
    hi |= static_cast<uint32_t>(static_cast<uint8_t>(quantize_value(v[i + 4], inv))) << (8 * i);
  }
  *reinterpret_cast<uint2*>(p) = make_uint2(lo, hi);
}

// The same values for a row where RowQuant::fast holds, in ~3 instructions an element: adding 1.5 * 2^23
// to |x| <= 127.00002 rounds x to an integer (half to even, as rint) held in the low mantissa bits, whose
// low byte is the two's-complement int8; no clamp is needed in that range.
// kExact (quantize_rows, bit-exact against the reference): __fmul_rn/__fadd_rn keep DESIGN.md's two
// roundings apart, rint(fl(v * inv)). Otherwise (the fused ops, whose values already differ from the
// reference's within DESIGN.md's tolerance) one FFMA rounds v * inv + 1.5 * 2^23 once: the same integer
// except where fl(v * inv) lands on a tie that the exact product does not, a few elements in a million
// (|v * inv| >= 64 has a 2^-17 ulp), and one instruction an element fewer.
template <bool kExact>
__device__ __forceinline__ uint32_t quantize4_fast(const float* v, float inv) {
  constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23
  uint32_t b[4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
    b[i] = __float_as_uint(kExact ? __fadd_rn(__fmul_rn(v[i], inv), kRoundMagic) : __fmaf_rn(v[i], inv, kRoundMagic));
  return __byte_perm(__byte_perm(b[0], b[1], 0x0040), __byte_perm(b[2], b[3], 0x0040), 0x5410);
}

// Stored evict-first (st.global.cs): a call reads its rows faster than DRAM can also write its int8 rows back,
// so they wait dirty in L2; marked evict-first they leave it sooner (the likely reading, not measured: during
// the call's own tail, where DRAM idles, rather than at the next call's start, whose first rows they delay).
// Measured on the H100 (docs/quantization.md, the table of what was tried): 0.965-0.989 of the normal stores'
// time back to back; behind the producer that writes the input and before the W8A8 GEMM that reads these rows,
// the chain of the three 0.986-1.005. Only the fast path: the clamped rows (store8_int8) are rare.
template <bool kExact>
__device__ __forceinline__ void store8_int8_fast(int8_t* p, const float (&v)[kVecElems], float inv) {
  __stcs(reinterpret_cast<uint2*>(p), make_uint2(quantize4_fast<kExact>(v, inv), quantize4_fast<kExact>(v + 4, inv)));
}

}  // namespace int8dit::quant
