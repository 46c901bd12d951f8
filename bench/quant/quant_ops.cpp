#include "quant_ops.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "int8dit/attention.h"
#include "int8dit/quantize.h"
#include "int8dit/residual.h"
#include "timing.h"

namespace bench_quant {
namespace {

// NOTE: the rotating sets together span >= 256 MB (5x the H100's L2), so each call reads from DRAM.
constexpr double kRotationBytes = 256e6;

struct BufferSet {
  uint16_t* x = nullptr;
  int8_t* q = nullptr;
  float* scale = nullptr;
  uint16_t* y = nullptr;
  uint16_t* update = nullptr;  // the gated residual cases: the attention output added to x
  uint16_t* x_out = nullptr;
  uint16_t* mod = nullptr;     // per-token cases: this set's [m, 2K] shift | scale rows
};

void require_ok(const int8dit::Status& st, const std::string& op) {
  if (st.ok()) return;
  std::fprintf(stderr, "int8dit_bench_quant: %s failed: %s\n", op.c_str(), st.to_string().c_str());
  std::exit(1);
}

}  // namespace

std::vector<OpCase> dit_cases() {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{4608, 3072}, {4096, 3072}, {4608, 15360}, {4096, 12288}};
  const std::vector<std::string> ops = {"quantize_rows", "quantize_rows+smooth", "layernorm_modulate_quantize",
                                        "layernorm_modulate_quantize+y", "rmsnorm_quantize", "gelu_quantize"};
  std::vector<OpCase> cases;
  for (const auto& [m, k] : shapes)
    for (const auto& op : ops) cases.push_back({op, m, k});
  // SD3-medium at 1024 px with guidance (2 x 4096 tokens, 1536 wide) and DiT-XL/2 at 512 px, batch 8
  // (8 x 1024 tokens, 1152 wide; below the target's M x K, timed for the model).
  for (const int64_t batches : {1, 2}) cases.push_back({"layernorm_modulate_quantize", 8192, 1536, batches});
  for (const int64_t batches : {1, 8}) cases.push_back({"layernorm_modulate_quantize", 8192, 1152, batches});
  // Flux's single-stream proj_out input at 1024 px: [attention (3072) | GELU(proj_mlp) (12288)].
  cases.push_back({"concat_gelu_quantize", 4608, 15360});
  // A gated MLP's second-linear input, silu(w1 x) * w3 x, from the two GEMM outputs: Z-Image's
  // feed-forward at 1024 px (4096 image + 512 text tokens, 10240 wide).
  cases.push_back({"swiglu_quantize", 4608, 10240});
  // FLUX.2-dev's double-stream image MLP at 1024 px (4096 tokens, 18432 wide): the 512-thread kernel.
  cases.push_back({"swiglu_quantize", 4096, 18432});
  // FLUX.2-dev's single-stream to_out input at 1024 px: [attention (6144) | silu(gate) * up (18432)].
  cases.push_back({"concat_swiglu_quantize", 4608, 24576});
  // A block's gated residual update fused into its MLP's norm (h = h + gate * attention, written, then
  // the norm; no y where the MLP takes the int8 rows straight, as the blocks run it since a71d998, and
  // with y where it does not): DiT-XL/2 (8 images) and Flux's image stream.
  cases.push_back({"layernorm_modulate_quantize+residual", 8192, 1152, 8});
  cases.push_back({"layernorm_modulate_quantize+residual+y", 8192, 1152, 8});
  cases.push_back({"layernorm_modulate_quantize+residual", 4096, 3072});
  // A modulation row per token (Wan 2.2 TI2V's per-token timesteps; not issue 4's target): the norm, the
  // norm with the gated update before it, and the gated add, each table as large as x.
  cases.push_back({"layernorm_modulate_quantize", 4096, 3072, 4096});
  cases.push_back({"layernorm_modulate_quantize+residual", 4096, 3072, 4096});
  cases.push_back({"gated_add", 4096, 3072, 4096});
  // The residual update that ends a DiT-XL/2 block (h + gate * MLP output; no quantization), which
  // PyTorch's broadcasting addcmul runs at 1.7 TB/s: below the target's M x K, timed for the model.
  cases.push_back({"gated_add", 8192, 1152, 8});
  // ... and Flux's (single-stream blocks 4608 x 3072, the double-stream image stream 4096 x 3072), where
  // the e2e profile of 54907e6 listed 48 us a call on average, twice what the DiT figure predicts: a
  // recorded time, which counts the wait of the kernel's early (programmatic) start behind the GEMM
  // before it, up to a whole tile's mainloop of a ping-pong GEMM (int8dit.bench.profile.top_kernels).
  // Timed alone here, the kernel's own figure.
  cases.push_back({"gated_add", 4608, 3072});
  cases.push_back({"gated_add", 4096, 3072});
  // Flux's q (or k) before attention at 1024 px: 24 heads of 128, per-head RMSNorm + rotary embedding
  // (int8dit::qk_norm_rope; PyTorch runs a norm kernel and ~8 elementwise ones). The single-stream
  // blocks' 4608 tokens and the double-stream image stream's 4096.
  cases.push_back({"qk_norm_rope", 4608, 3072});
  cases.push_back({"qk_norm_rope", 4096, 3072});
  // SD3-medium's joint attention at 1024 px: the image part of q, k or v (4096 tokens, 24 heads of 64)
  // into the [1, 24, S, 64] buffer attention reads (PyTorch: torch.cat over transposed views).
  cases.push_back({"join_heads", 4096, 1536});
  return cases;
}

std::string OpCase::label() const {
  std::string s = op + "@" + std::to_string(m) + "x" + std::to_string(k);
  return batches > 1 ? s + "/" + std::to_string(batches) : s;
}

OpResult run_op_case(const OpCase& c) {
  const bool smooth = c.op == "quantize_rows+smooth";
  const bool residual = c.op.rfind("layernorm_modulate_quantize+residual", 0) == 0;
  const bool with_y = c.op == "layernorm_modulate_quantize+y" || c.op == "layernorm_modulate_quantize+residual+y";
  const bool gated_add = c.op == "gated_add";
  const bool qk_rope = c.op == "qk_norm_rope";
  const bool join = c.op == "join_heads";
  const bool swiglu = c.op == "swiglu_quantize";
  const bool concat_swiglu = c.op == "concat_swiglu_quantize";  // a: K / 4 columns, gate and up: 3K / 4 each
  constexpr int64_t kHeadDim = 128;  // qk_norm_rope: Flux's heads
  constexpr int64_t kJoinHeadDim = 64;  // join_heads: SD3's
  const size_t mk = static_cast<size_t>(c.m * c.k);

  OpResult r;
  r.bytes = gated_add ? 3 * 2.0 * mk + 2.0 * c.k * c.batches  // x and the update read, the sum written, the gates
            : qk_rope ? 2 * 2.0 * mk + 2.0 * kHeadDim + 2 * 4.0 * kHeadDim * c.m  // x, out, weight, cos and sin rows
            : join    ? 2 * 2.0 * mk                                               // x read, out written
            : swiglu  ? 2 * 2.0 * mk + mk + 4.0 * c.m                              // gate and up read, q and scales
            : concat_swiglu ? 2.0 * mk + 2.0 * (mk - mk / 4) + mk + 4.0 * c.m      // a, gate and up read; q, scales
                      : 2.0 * mk + mk + 4.0 * c.m + (with_y ? 2.0 * mk : 0.0);
  if (smooth) r.bytes += 4.0 * c.k;
  if (c.op.rfind("layernorm", 0) == 0) r.bytes += 2.0 * 2 * c.k * c.batches;  // each batch element's shift and scale
  if (residual) r.bytes += 2.0 * mk + 2.0 * mk + 2.0 * c.k * c.batches;  // the update read, h written, the gates
  if (c.op == "rmsnorm_quantize") r.bytes += 2.0 * c.k;

  const int sets = static_cast<int>(std::clamp(kRotationBytes / r.bytes + 1.0, 1.0, 16.0));
  std::vector<BufferSet> bufs(static_cast<size_t>(sets));
  for (int s = 0; s < sets; ++s) {
    bufs[s].x = device_alloc<uint16_t>(mk);
    bufs[s].q = device_alloc<int8_t>(mk);
    bufs[s].scale = device_alloc<float>(static_cast<size_t>(c.m));
    if (with_y) bufs[s].y = device_alloc<uint16_t>(mk);
    if (residual || gated_add || qk_rope || join || swiglu || concat_swiglu) {
      bufs[s].update = device_alloc<uint16_t>(mk);
      bufs[s].x_out = device_alloc<uint16_t>(mk);
      fill_bf16(bufs[s].update, mk, 4321u + s);
    }
    fill_bf16(bufs[s].x, mk, 1234u + s);
  }
  // Per-channel vectors: SmoothQuant divisor, adaLN shift|scale ([batches, 2K]), RMSNorm weight.
  if (c.batches < 1 || c.m % c.batches != 0) {
    std::fprintf(stderr, "int8dit_bench_quant: %s: M must be a multiple of the batch count\n", c.label().c_str());
    std::exit(2);
  }
  float* smooth_vec = device_alloc<float>(static_cast<size_t>(c.k));
  // qk_norm_rope's cos and sin tables, [m, 128] fp32 each (values in [0.5, 2): the timing does not care)
  float* rope = qk_rope ? device_alloc<float>(static_cast<size_t>(2 * kHeadDim * c.m)) : nullptr;
  if (rope) fill_f32(rope, static_cast<size_t>(2 * kHeadDim * c.m), 0.5f, 2.0f, 13u);
  // (a per-token table is as large as x: each set its own, so that it comes from DRAM as x does)
  const size_t mod_elems = static_cast<size_t>(2 * c.k * c.batches);
  uint16_t* shared_mod = device_alloc<uint16_t>(mod_elems);
  fill_f32(smooth_vec, static_cast<size_t>(c.k), 0.5f, 2.0f, 7u);
  fill_bf16(shared_mod, mod_elems, 11u);
  for (int s = 0; s < sets && c.per_token(); ++s) {
    bufs[s].mod = device_alloc<uint16_t>(mod_elems);
    fill_bf16(bufs[s].mod, mod_elems, 17u + s);
  }
  check_cuda(cudaDeviceSynchronize(), "fill");

  auto launch = [&](int call) {
    const BufferSet& b = bufs[static_cast<size_t>(call % sets)];
    uint16_t* const mod = b.mod ? b.mod : shared_mod;
    if (join) {  // x [1, m, k / 64, 64] into the set's x_out as [1, k / 64, m, 64]
      int8dit::QKNormRopeParams p;
      p.batches = 1, p.tokens = c.m, p.heads = c.k / kJoinHeadDim, p.head_dim = kJoinHeadDim, p.normalize = false;
      p.x = b.x, p.x_batch_stride = c.m * c.k, p.x_token_stride = c.k, p.x_head_stride = kJoinHeadDim;
      p.out = b.x_out, p.out_batch_stride = c.m * c.k, p.out_token_stride = kJoinHeadDim;
      p.out_head_stride = c.m * kJoinHeadDim;
      require_ok(int8dit::qk_norm_rope(p, nullptr), c.op);
    } else if (qk_rope) {  // x [1, m, k / 128, 128] into the set's x_out; the weight: the modulation buffer's first row
      int8dit::QKNormRopeParams p;
      p.batches = 1, p.tokens = c.m, p.heads = c.k / kHeadDim, p.head_dim = kHeadDim, p.eps = 1e-6f;
      p.x = b.x, p.x_batch_stride = c.m * c.k, p.x_token_stride = c.k, p.x_head_stride = kHeadDim;
      p.weight = mod, p.cos = rope, p.sin = rope + kHeadDim * c.m, p.ld_rope = kHeadDim, p.rope_rows = c.m;
      p.out = b.x_out, p.out_batch_stride = c.m * c.k, p.out_token_stride = c.k, p.out_head_stride = kHeadDim;
      require_ok(int8dit::qk_norm_rope(p, nullptr), c.op);
    } else if (gated_add) {  // the gates: the modulation buffer's shift rows, as one chunk of an adaLN output
      int8dit::GatedAddParams p;
      p.rows = c.m, p.cols = c.k, p.x = b.x, p.ldx = c.k, p.update = b.update, p.ld_update = c.k;
      p.gate = mod, p.ld_gate = 2 * c.k, p.tokens_per_batch = c.m / c.batches, p.out = b.x_out, p.ld_out = c.k;
      require_ok(int8dit::gated_add(p, nullptr), c.op);
    } else if (c.op.rfind("quantize_rows", 0) == 0) {
      int8dit::QuantizeRowsParams p;
      p.rows = c.m, p.cols = c.k, p.x = b.x, p.ldx = c.k, p.q = b.q, p.ldq = c.k, p.scale = b.scale;
      p.smooth = smooth ? smooth_vec : nullptr;
      require_ok(int8dit::quantize_rows(p, nullptr), c.op);
    } else if (c.op.rfind("layernorm_modulate_quantize", 0) == 0) {
      int8dit::LayerNormModulateQuantizeParams p;
      p.rows = c.m, p.cols = c.k, p.x = b.x, p.ldx = c.k, p.eps = 1e-6f, p.tokens_per_batch = c.m / c.batches;
      p.mod_shift = mod, p.mod_scale = mod + c.k, p.ld_mod = 2 * c.k;
      p.q = b.q, p.ldq = c.k, p.scale = b.scale, p.y = b.y, p.ldy = c.k;
      if (residual) {  // the gates: the modulation buffer's shift rows, as one chunk of an adaLN output
        p.update = b.update, p.ld_update = c.k, p.gate = mod, p.ld_gate = 2 * c.k, p.x_out = b.x_out, p.ld_x_out = c.k;
      }
      require_ok(int8dit::layernorm_modulate_quantize(p, nullptr), c.op);
    } else if (c.op == "rmsnorm_quantize") {
      int8dit::RmsNormQuantizeParams p;
      p.rows = c.m, p.cols = c.k, p.x = b.x, p.ldx = c.k, p.eps = 1e-6f, p.weight = mod;
      p.q = b.q, p.ldq = c.k, p.scale = b.scale;
      require_ok(int8dit::rmsnorm_quantize(p, nullptr), c.op);
    } else if (swiglu) {  // gate: the set's x, up: its update buffer
      int8dit::SwigluQuantizeParams p;
      p.rows = c.m, p.cols = c.k, p.gate = b.x, p.ld_gate = c.k, p.up = b.update, p.ld_up = c.k;
      p.q = b.q, p.ldq = c.k, p.scale = b.scale;
      require_ok(int8dit::swiglu_quantize(p, nullptr), c.op);
    } else if (concat_swiglu) {
      // a [M, K / 4] then gate [M, 3K / 4] in the set's x buffer, up in its update buffer.
      int8dit::ConcatSwigluQuantizeParams p;
      const int64_t ka = c.k / 4, kh = c.k - c.k / 4;
      p.rows = c.m, p.a = b.x, p.a_cols = ka, p.lda = ka, p.gate = b.x + c.m * ka, p.ld_gate = kh;
      p.up = b.update, p.ld_up = kh, p.h_cols = kh, p.q = b.q, p.ldq = c.k, p.scale = b.scale;
      require_ok(int8dit::concat_swiglu_quantize(p, nullptr), c.op);
    } else if (c.op == "concat_gelu_quantize") {
      // The two inputs share the set's x buffer: a [M, K / 5] first, then h [M, K - K / 5].
      int8dit::ConcatGeluQuantizeParams p;
      p.rows = c.m, p.a = b.x, p.a_cols = c.k / 5, p.lda = c.k / 5;
      p.h = b.x + c.m * (c.k / 5), p.h_cols = c.k - c.k / 5, p.ldh = c.k - c.k / 5;
      p.q = b.q, p.ldq = c.k, p.scale = b.scale;
      require_ok(int8dit::concat_gelu_quantize(p, nullptr), c.op);
    } else {
      int8dit::GeluQuantizeParams p;
      p.rows = c.m, p.cols = c.k, p.x = b.x, p.ldx = c.k, p.q = b.q, p.ldq = c.k, p.scale = b.scale;
      require_ok(int8dit::gelu_quantize(p, nullptr), c.op);
    }
  };
  r.us = median_us(launch);

  for (BufferSet& b : bufs) {
    cudaFree(b.x), cudaFree(b.q), cudaFree(b.scale), cudaFree(b.y), cudaFree(b.update), cudaFree(b.x_out), cudaFree(b.mod);
  }
  cudaFree(smooth_vec), cudaFree(shared_mod), cudaFree(rope);
  r.same_size_copy_us = same_size_copy_us(r.bytes);
  return r;
}

}  // namespace bench_quant
