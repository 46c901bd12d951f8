// Element loads/stores and the per-row quantization step shared by every activation-quantization kernel.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace int8dit::quant {

// Eight elements of T travel as one 16-byte vector.
constexpr int kVecElems = 8;

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

// 8 elements at p (16-byte aligned) as floats.
template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&v)[kVecElems]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < kVecElems; ++i) v[i] = to_float(e[i]);
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

// |v| as raw bits: for non-negative floats the bit patterns order like the values, and every NaN
// pattern sorts above +Inf, so an unsigned max of these finds amax and flags a non-finite row at once.
__device__ __forceinline__ uint32_t abs_bits(float v) { return __float_as_uint(v) & 0x7fffffffu; }
constexpr uint32_t kInfBits = 0x7f800000u;

// The per-row factors of DESIGN.md's quantization, from the row's max |v| (as abs_bits).
struct RowQuant {
  float scale;  // written to the per-row scale output
  float inv;    // multiplies each value before rounding
};

__device__ __forceinline__ RowQuant row_quant(uint32_t amax_bits) {
  if (amax_bits >= kInfBits) return {__uint_as_float(0x7fc00000u), 0.0f};  // NaN/Inf in the row: NaN scale, zeros
  if (amax_bits == 0) return {0.0f, 0.0f};                                  // zero row: scale 0, zeros
  const float amax = __uint_as_float(amax_bits);
  // NOTE: plain '/' is IEEE-rounded division in nvcc's default -prec-div=true, matching the CPU bit for bit.
  return {amax / 127.0f, 127.0f / amax};
}

// clamp(rint(v * inv), -127, 127); the conversion rounds half to even and maps NaN to 0.
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

}  // namespace int8dit::quant
