// The row ops of the quantization kernels (the contract is in row_kernels.cuh): what value each
// element of a row becomes before it is quantized.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "quant/row_io.cuh"
#include "quant/smooth_division.h"

namespace int8dit::quant {

// quantize_rows: the element itself.
struct IdentityOp {
  // Its int8 rows are DESIGN.md's quantization of the input itself, bit for bit (row_kernels.cuh:
  // QuantizesBitExactly); every other op's values carry the fused ops' tolerance.
  static constexpr bool kBitExact = true;
  static constexpr int kStatPasses = 0;
  static constexpr int kChannelVec4s = 0;
  __device__ bool begin_row(int64_t) { return false; }
  __device__ float stat_term(int, float) const { return 0.0f; }
  __device__ void end_pass(int, float) {}
  __device__ void apply8(int, float (&)[kVecElems]) const {}
  __device__ float apply1(int64_t, float x) const { return x; }
};

// quantize_rows with a SmoothQuant divisor, as the grouped kernel runs it (row_grouped.cuh): x / s_k,
// bit for bit the IEEE division, with s_k and 1 / s_k cached as fp32 for the CTA's groups. Every value
// is divided through the reciprocals (smooth_division.h: divide_by_reciprocal), with no test of its
// range; the row max then says whether that was exact (reciprocal_row_max_exact), and a row where it
// may not be is read again and divided by the IEEE division (kChecksRowMax: row_kernels.cuh,
// quantize_held_row). In the register kernels the division is the kernel's (RowArgs::smooth), not the op's.
struct SmoothDivisionOp : IdentityOp {
  static constexpr int kChannelVec4s = 4;  // s_k, then 1 / s_k (NaN where s_k is outside the fast range)
  static constexpr bool kChannelsVaryByRow = false;  // one divisor for every row
  static constexpr bool kChecksRowMax = true;
  static constexpr bool kGroupedRing = true;  // its 64 x 6 grouped rows by bulk copy (row_grouped_ring.cuh)
  const float* smooth = nullptr;
  __device__ void fill8(int k, float4* dst, int stride) const {
    float s[kVecElems], r[kVecElems];
    load8_cached(smooth + k, s);
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) r[e] = divisor_in_fast_range(s[e]) ? __frcp_rn(s[e]) : __int_as_float(0x7fc00000);
    dst[0] = make_float4(s[0], s[1], s[2], s[3]);
    dst[stride] = make_float4(s[4], s[5], s[6], s[7]);
    dst[2 * stride] = make_float4(r[0], r[1], r[2], r[3]);
    dst[3 * stride] = make_float4(r[4], r[5], r[6], r[7]);
  }
  __device__ void apply8_cached(int, float (&v)[kVecElems], const float4* src, int stride) const {
    const float4 s0 = src[0], s1 = src[stride], r0 = src[2 * stride], r1 = src[3 * stride];
    const float s[kVecElems] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
    const float r[kVecElems] = {r0.x, r0.y, r0.z, r0.w, r1.x, r1.y, r1.z, r1.w};
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = divide_by_reciprocal(v[e], s[e], r[e]);
  }
  __device__ static bool row_max_exact(float m) { return reciprocal_row_max_exact(m); }
  // Element e of a vector again, by the IEEE division (src, stride: the vector's cached channel values).
  __device__ float apply1_exact(float x, const float4* src, int stride, int e) const {
    const float* s = reinterpret_cast<const float*>(src + (e / 4) * stride);
    return x / s[e % 4];
  }
};

// LayerNorm (no affine) + adaLN modulation; mean and variance in two passes over the held row.
// NOTE: per element this is two FFMAs, ((x * rstd) - mean * rstd) * (1 + scale) + shift, and the
// statistics use rsqrtf and a multiply by 1/cols: a few fp32 ulp from (x - mean) / sqrt(var + eps),
// far below the int8 step and within DESIGN.md's tolerance for the fused ops. The IEEE divisions and
// sqrt they replace each cost a slow-path check per row, and the kernel is issue-bound.
template <typename T>
struct LayerNormModulateOp {
  static constexpr int kStatPasses = 2;
  static constexpr int kChannelVec4s = 4;  // 1 + scale and shift as fp32, cached per batch
  // Its one-warp cached rows (1536 columns: 12 KB of channel values a CTA) are a grid that shared memory
  // sizes, launched in stream order (row_path.h: launches_programmatically), so its 1536-column rows take
  // two warps instead (row_shape.h: two_warp_row_launch_shape).
  static constexpr bool kOneWarpRowsInStreamOrder = true;
  const T* shift = nullptr;  // [batches, cols], row stride ld_mod
  const T* mod_scale = nullptr;
  int64_t ld_mod = 0;
  int64_t tokens_per_batch = 1;
  float eps = 0.0f;
  float inv_cols = 0.0f;  // 1 / cols
  // RMSNorm's statistics (LayerNormModulateQuantizeParams::rms_norm): the mean taken as 0, so the second
  // pass sums x^2. A runtime flag rather than an op of its own: the row kernels are instantiated per op,
  // and the first pass's reduction it wastes costs less than doubling them.
  bool rms = false;
  // The multiplier is scale_offset + scale: 1 for the modulation's 1 + scale, 0 where the rows are the
  // norm's own weight (LayerNormModulateQuantizeParams::scale_is_weight). A kernel parameter, so the sum
  // costs the FADD that 1 + scale did.
  float scale_offset = 1.0f;
  // per row
  const T* shift_row = nullptr;
  const T* scale_row = nullptr;
  float mean = 0.0f, rstd = 0.0f, neg_mean_rstd = 0.0f;
  int64_t cached_batch = -1;

  __device__ int64_t batch_of(int64_t row) const {
    // 32-bit division where it fits (a 64-bit one is a ~70-instruction call, once per row and thread).
    return (row | tokens_per_batch) <= 0xffffffffLL
               ? static_cast<int64_t>(static_cast<uint32_t>(row) / static_cast<uint32_t>(tokens_per_batch))
               : row / tokens_per_batch;
  }
  // True where this row's batch differs from the previous row's: its channel values need a refill.
  __device__ bool begin_row(int64_t row) {
    const int64_t b = batch_of(row);
    shift_row = shift + b * ld_mod;
    scale_row = mod_scale + b * ld_mod;
    const bool refill = b != cached_batch;
    cached_batch = b;
    return refill;
  }
  // Several batch elements in the call: their rows have different channel values, and the launcher
  // gives each CTA of a cached kernel contiguous rows (row_kernels.cuh: WithRowBlocks).
  static constexpr bool kChannelsVaryByRow = true;
  bool channels_vary(int64_t rows) const { return tokens_per_batch < rows; }
  // Consecutive rows that share one batch element's channel values (the grouped kernel's parts).
  int64_t rows_sharing_channels() const { return tokens_per_batch; }
  __device__ float stat_term(int pass, float x) const {
    if (pass == 0) return x;
    const float d = x - mean;
    return d * d;
  }
  __device__ void end_pass(int pass, float sum) {
    if (pass == 0) {
      mean = rms ? 0.0f : sum * inv_cols;
    } else {
      rstd = rsqrtf(sum * inv_cols + eps);
      neg_mean_rstd = -mean * rstd;
    }
  }
  __device__ void apply8(int k, float (&v)[kVecElems]) const {
    float sh[kVecElems], sc[kVecElems];
    load8_cached(shift_row + k, sh);
    load8_cached(scale_row + k, sc);
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = fmaf(fmaf(v[e], rstd, neg_mean_rstd), scale_offset + sc[e], sh[e]);
  }
  // The channel values of elements k..k + 7 to dst[0], dst[stride], ...: 1 + scale (two float4), shift (two).
  __device__ void fill8(int k, float4* dst, int stride) const {
    float sh[kVecElems], sc[kVecElems];
    load8_cached(shift_row + k, sh);
    load8_cached(scale_row + k, sc);
    const float o = scale_offset;
    dst[0] = make_float4(o + sc[0], o + sc[1], o + sc[2], o + sc[3]);
    dst[stride] = make_float4(o + sc[4], o + sc[5], o + sc[6], o + sc[7]);
    dst[2 * stride] = make_float4(sh[0], sh[1], sh[2], sh[3]);
    dst[3 * stride] = make_float4(sh[4], sh[5], sh[6], sh[7]);
  }
  __device__ void apply8_cached(int, float (&v)[kVecElems], const float4* src, int stride) const {
    const float4 s0 = src[0], s1 = src[stride], h0 = src[2 * stride], h1 = src[3 * stride];
    const float sc1[kVecElems] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
    const float sh[kVecElems] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = fmaf(fmaf(v[e], rstd, neg_mean_rstd), sc1[e], sh[e]);
  }
  __device__ float apply1(int64_t k, float x) const {
    return fmaf(fmaf(x, rstd, neg_mean_rstd), scale_offset + to_float(__ldg(scale_row + k)),
                to_float(__ldg(shift_row + k)));
  }
};

// LayerNorm + modulation of the row r = x + gate[b] * update, with r written to x_out: a DiT block's
// gated residual update fused into its MLP's norm (quantize.h). The kernels load x and the update
// (fetch8) as usual; an op with kTransformsInput then turns each vector of x into r (begin_transform(row),
// transform8), stores r (store_transformed8), and the statistics follow (row_kernels.cuh). Vector
// kernels only (the launcher refuses other layouts); on Hopper its rows of 1152..1536 and 2304..3072
// columns run in the grouped kernel (row_shape.h: kGroupedTransformCtaThreads).
template <typename T>
struct GatedResidualLayerNormModulateOp : LayerNormModulateOp<T> {
  static constexpr bool kTransformsInput = true;
  // Registers (178 a thread) size its one-warp grid, not shared memory: it launches programmatically as
  // one warp already (docs/quantization_history.md, Next 0), and keeps the one-warp rows.
  static constexpr bool kOneWarpRowsInStreamOrder = false;
  const T* update = nullptr;  // [rows, cols], row stride ld_update
  int64_t ld_update = 0;
  const T* gate = nullptr;    // [batches, cols], row stride ld_gate; null: 1
  int64_t ld_gate = 0;
  T* x_out = nullptr;         // [rows, cols], row stride ld_x_out
  int64_t ld_x_out = 0;
  // per row
  const T* gate_row = nullptr;
  T* out_row = nullptr;

  // The update's elements k..k + 7 of a row, as loaded (evict-first: read once); where they are, for a
  // kernel that copies them itself (row_grouped.cuh: kStaged).
  __device__ const uint4* second_input8_address(int64_t row, int64_t k) const {
    return reinterpret_cast<const uint4*>(update + row * ld_update + k);
  }
  __device__ uint4 fetch8(int64_t row, int64_t k) const { return __ldcs(second_input8_address(row, k)); }
  __device__ void begin_transform(int64_t row) {
    out_row = x_out + row * ld_x_out;
    if (gate) gate_row = gate + this->batch_of(row) * ld_gate;
  }
  // v (x's elements k..k + 7) becomes r = x + g * u, rounded to T.
  __device__ void transform8(int k, float (&v)[kVecElems], uint4 update8) const {
    float u[kVecElems];
    unpack8<T>(update8, u);
    float g[kVecElems];
    if (gate_row) {
      load8_cached(gate_row + k, g);
    } else {
#pragma unroll
      for (int e = 0; e < kVecElems; ++e) g[e] = 1.0f;
    }
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = to_float(from_float<T>(fmaf(g[e], u[e], v[e])));
  }
  __device__ void store_transformed8(int k, const float (&v)[kVecElems]) const { store8(out_row + k, v); }
};

// RMSNorm with a per-channel weight.
template <typename T>
struct RmsNormOp {
  static constexpr int kStatPasses = 1;
  static constexpr int kChannelVec4s = 2;  // the weight as fp32, the same for every row
  // The 6-vector cached kernel's registers capped for two 256-thread CTAs an SM (128, no spills for
  // bf16; row_kernels.cuh: cached_kernel_min_ctas). Uncapped it took 142 once it no longer carried the
  // SmoothQuant division (c1ed37e): one CTA an SM at 12288 columns, 46.4 -> 48.0 us at 4096 x 12288.
  static constexpr int kCachedMinCtas = 2;
  // Its 64 x 6 grouped rows by bulk copy (row_grouped_ring.cuh): 4096 x 3072 16.00 -> 15.69 us on the H100
  // (bench/results/h100/quant_ab_grouped_ring_all_ops.md), and 16.03 -> 15.76 as the library's only change
  // (quant_ab_rmsnorm_ring.md).
  static constexpr bool kGroupedRing = true;
  const T* weight = nullptr;
  float eps = 0.0f;
  float inv_cols = 0.0f;  // 1 / cols
  float rstd = 0.0f;
  bool filled = false;

  __device__ bool begin_row(int64_t) {
    const bool refill = !filled;
    filled = true;
    return refill;
  }
  static constexpr bool kChannelsVaryByRow = false;  // one weight for every row
  __device__ float stat_term(int, float x) const { return x * x; }
  __device__ void end_pass(int, float sum) { rstd = rsqrtf(sum * inv_cols + eps); }  // as LayerNormModulateOp
  __device__ void apply8(int k, float (&v)[kVecElems]) const {
    float w[kVecElems];
    load8_cached(weight + k, w);
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = v[e] * rstd * w[e];
  }
  __device__ void fill8(int k, float4* dst, int stride) const {
    float w[kVecElems];
    load8_cached(weight + k, w);
    dst[0] = make_float4(w[0], w[1], w[2], w[3]);
    dst[stride] = make_float4(w[4], w[5], w[6], w[7]);
  }
  __device__ void apply8_cached(int, float (&v)[kVecElems], const float4* src, int stride) const {
    const float4 w0 = src[0], w1 = src[stride];
    const float w[kVecElems] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = v[e] * rstd * w[e];
  }
  __device__ float apply1(int64_t k, float x) const { return x * rstd * to_float(__ldg(weight + k)); }
};

// GELU, tanh approximation, written as x * sigmoid(2u) = x / (1 + 2^a) with a = -2u * log2(e) =
// x * (C1 * x^2 + C2): the same function as 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
// NOTE: tanhf costs ~20 instructions an element and would make this kernel compute-bound; ex2.approx
// and a fast divide keep it at a few ulp and memory-bound. For negative x, gelu is tiny and its
// relative error is the absolute error of a (up to ~50 at x = -7, where the row max can still come
// from gelu(x) through a 2^-50 SmoothQuant divisor): folding log2(e) into the constants and forming a
// with one FMA leaves 3 roundings of terms <= |a| where u, -2u and * log2(e) took 6 (worst relative
// error 3.7e-6 against 7.4e-6 over x in [-6.9, 3], fp32 emulated against double; DESIGN.md allows 1e-5
// for the scale, and a GPU test failed once on the old form).
struct GeluTanhOp {
  static constexpr int kStatPasses = 0;
  static constexpr int kChannelVec4s = 0;
  // The row max in one redux.sync a warp (row_kernels.cuh: RowMaxInOneRedux): 4096 x 3072 15.92 -> 15.65 us,
  // 4608 x 3072 17.52 -> 17.23 on the H100 (bench/results/h100/quant_ab_merged_stats_gelu_redux.md).
  static constexpr bool kRowMaxInOneRedux = true;
  static constexpr float kC2 = -2.0f * 0.7978845608028654f * 1.4426950408889634f;
  static constexpr float kC1 = kC2 * 0.044715f;
  __device__ static float gelu(float x) {
    const float a = x * fmaf(kC1, x * x, kC2);  // three instructions where kC1 x x^2 + kC2 x took four
    float p;  // 2^a; +inf for a >= 128 (then x / inf = -0), 0 below -126
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(p) : "f"(a));
    return __fdividef(x, 1.0f + p);
  }
  __device__ bool begin_row(int64_t) { return false; }
  __device__ float stat_term(int, float) const { return 0.0f; }
  __device__ void end_pass(int, float) {}
  __device__ void apply8(int, float (&v)[kVecElems]) const {
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = gelu(v[e]);
  }
  __device__ float apply1(int64_t, float x) const { return gelu(x); }
};

// swiglu_quantize: v = silu(gate) * up, the gated MLP's second-linear input (quantize.h). The kernels
// read gate as their x and fetch up's vectors with it (kTransformsInput): the product never exists in
// memory. silu(g) = g / (1 + 2^(-g log2 e)) with ex2.approx and a fast divide, as GELU above: a few
// ulp, memory-bound (2^a overflows to +inf for g < -88, and g / inf = -0, silu's limit). Vector kernels
// only (the entry point refuses other layouts), up to 24576 columns through the wide one.
template <typename T>
struct SwigluOp {
  static constexpr int kStatPasses = 0;
  static constexpr int kChannelVec4s = 0;
  static constexpr bool kTransformsInput = true;
  static constexpr bool kWideRows = true;  // FLUX.2-dev's 18432-wide MLP (row_shape.h)
  static constexpr float kNegLog2e = -1.4426950408889634f;
  const T* up = nullptr;  // [rows, cols], row stride ld_up
  int64_t ld_up = 0;
  __device__ static float silu(float g) {
    float p;  // 2^(-g log2 e) = e^-g
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(p) : "f"(g * kNegLog2e));
    return __fdividef(g, 1.0f + p);
  }
  __device__ bool begin_row(int64_t) { return false; }
  __device__ float stat_term(int, float) const { return 0.0f; }
  __device__ void end_pass(int, float) {}
  // up's elements k..k + 7 of a row, as loaded (evict-first: read once).
  __device__ uint4 fetch8(int64_t row, int64_t k) const {
    return __ldcs(reinterpret_cast<const uint4*>(up + row * ld_up + k));
  }
  __device__ void begin_transform(int64_t) {}
  // v (gate's elements k..k + 7) becomes silu(gate) * up, in fp32 (not rounded to T: what is quantized).
  __device__ void transform8(int, float (&v)[kVecElems], uint4 up8) const {
    float u[kVecElems];
    unpack8<T>(up8, u);
#pragma unroll
    for (int e = 0; e < kVecElems; ++e) v[e] = silu(v[e]) * u[e];
  }
  __device__ void store_transformed8(int, const float (&)[kVecElems]) const {}  // nothing to write back
  __device__ void apply8(int, float (&)[kVecElems]) const {}
  __device__ float apply1(int64_t, float x) const { return x; }
};

// concat_gelu_quantize: the row [a | GELU(h)] of Flux's single-stream proj_out, read from two inputs.
// The kernels read a as their x; an op with kSecondInput tells them where each element lives
// (element(), row_kernels.cuh), so that the concatenation is never written. The vector kernels run
// it only where gelu_from is a multiple of 8 (each 16-byte vector from one input) and h's rows allow
// 16-byte loads (the launcher's op_vector_ok).
template <typename T>
struct ConcatGeluOp {
  static constexpr int kStatPasses = 0;
  static constexpr int kChannelVec4s = 0;
  static constexpr bool kSecondInput = true;
  const T* h = nullptr;    // [rows, cols - gelu_from], row stride ldh
  int64_t ldh = 0;
  int64_t gelu_from = 0;   // the first column taken from h (a's column count)
  __device__ bool begin_row(int64_t) { return false; }
  __device__ float stat_term(int, float) const { return 0.0f; }
  __device__ void end_pass(int, float) {}
  __device__ void apply8(int k, float (&v)[kVecElems]) const {
    if (k >= gelu_from) GeluTanhOp{}.apply8(k, v);
  }
  __device__ float apply1(int64_t k, float x) const { return k >= gelu_from ? GeluTanhOp::gelu(x) : x; }
  // Element k of the row `row`, whose first input is x (row stride ldx).
  __device__ const T* element(const T* x, int64_t ldx, int64_t row, int64_t k) const {
    return k < gelu_from ? x + row * ldx + k : h + row * ldh + (k - gelu_from);
  }
};

// concat_swiglu_quantize: the row [a | silu(gate) * up] of FLUX.2's single-stream to_out, from three
// inputs: a is the kernels' x, gate the second input the row continues in (kSecondInput, as
// ConcatGeluOp's h), and up's vectors are fetched with gate's and multiply them (kTransformsInput, as
// SwigluOp). Neither the product nor the concatenation is written. Vector kernels only, up to 24576
// columns (kWideRows: FLUX.2-dev's 6144 + 18432); the entry point checks that every 16-byte vector
// comes from one input (a_cols % 8 == 0) and that all three allow 16-byte loads.
template <typename T>
struct ConcatSwigluOp {
  static constexpr int kStatPasses = 0;
  static constexpr int kChannelVec4s = 0;
  static constexpr bool kSecondInput = true;
  static constexpr bool kTransformsInput = true;
  static constexpr bool kWideRows = true;
  const T* gate = nullptr;  // [rows, cols - swiglu_from], row stride ld_gate
  int64_t ld_gate = 0;
  const T* up = nullptr;    // [rows, cols - swiglu_from], row stride ld_up
  int64_t ld_up = 0;
  int64_t swiglu_from = 0;  // the first column of the gated part (a's column count)
  __device__ bool begin_row(int64_t) { return false; }
  __device__ float stat_term(int, float) const { return 0.0f; }
  __device__ void end_pass(int, float) {}
  __device__ const T* element(const T* x, int64_t ldx, int64_t row, int64_t k) const {
    return k < swiglu_from ? x + row * ldx + k : gate + row * ld_gate + (k - swiglu_from);
  }
  // up's elements for the row's columns k..k + 7 where they are in the gated part; nothing is read for a's.
  __device__ uint4 fetch8(int64_t row, int64_t k) const {
    if (k < swiglu_from) return make_uint4(0u, 0u, 0u, 0u);
    return __ldcs(reinterpret_cast<const uint4*>(up + row * ld_up + (k - swiglu_from)));
  }
  __device__ void begin_transform(int64_t) {}
  __device__ void transform8(int k, float (&v)[kVecElems], uint4 up8) const {
    if (k >= swiglu_from) SwigluOp<T>{}.transform8(k, v, up8);
  }
  __device__ void store_transformed8(int, const float (&)[kVecElems]) const {}  // nothing to write back
  __device__ void apply8(int, float (&)[kVecElems]) const {}
  __device__ float apply1(int64_t, float x) const { return x; }
};

}  // namespace int8dit::quant
