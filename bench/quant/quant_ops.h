// The benchmarked operations: each int8dit quantization entry point on a DiT activation shape,
// with its own rotating buffers, and the bytes it must move at least (the bandwidth accounting).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bench_quant {

struct OpCase {
  std::string op;  // quantize_rows, quantize_rows+smooth, layernorm_modulate_quantize(+y), rmsnorm_quantize,
                  // gelu_quantize, concat_gelu_quantize (K / 5 columns as they are, then GELU of the rest),
                  // swiglu_quantize (silu(gate) * up from two [M, K] inputs), concat_swiglu_quantize
                  // (K / 4 columns as they are, then silu(gate) * up of the rest),
                  // layernorm_modulate_quantize+residual (the gated residual update first, y written);
                  // gated_add (the residual update that ends a block: no quantization, never in the summary);
                  // qk_norm_rope (attention's per-head RMSNorm + rotary embedding, k = heads x 128: no
                  // quantization, never in the summary); join_heads (qk_norm_rope without norm or rotation
                  // into SD3's [1, heads, m, 64] layout, k = heads x 64: never in the summary)
  int64_t m = 0, k = 0;
  // adaLN modulation vectors (LayerNorm ops only): rows m / batches share one batch element's shift and
  // scale, as a batch of images (or classifier-free guidance's two) runs in a DiT. batches = m: a row
  // per token (Wan 2.2 TI2V's per-token timesteps), whose tables rotate with the inputs.
  int64_t batches = 1;
  bool per_token() const { return m > 1 && batches == m; }

  // "OP@MxK", with "/BATCHES" where batches > 1: what --only selects and the tables print.
  std::string label() const;
  // Issue 4's speed target covers the quantization kernels at M x K >= 4096 x 3072 with the modulation
  // it specifies (a row per batch element); smaller cases, per-token tables, and gated_add and
  // qk_norm_rope, are timed but not in the summary.
  bool counts_for_target() const {
    return op != "gated_add" && op != "qk_norm_rope" && op != "join_heads" && !per_token() &&
           m * k >= int64_t{4096} * 3072;
  }
};

struct OpResult {
  double us = 0;     // median time of one call
  double bytes = 0;  // bytes read + bytes written by one call
  double same_size_copy_us = 0;  // a device-to-device copy of the same bytes, timed the same way
};

// Every op on the DiT shapes of issue 4 (Flux/SD3/PixArt, 4096-4608 tokens, one batch element), then
// LayerNorm + modulation as SD3 (classifier-free guidance: 2 batch elements) and DiT-XL/2 (8 images)
// run it, each beside the same shape with one batch element; and Flux's single-stream proj_out input,
// the concatenation [attention | GELU(proj_mlp)] (concat_gelu_quantize).
std::vector<OpCase> dit_cases();

// Times one case; exits with a message if the op returns an error.
OpResult run_op_case(const OpCase& c);

}  // namespace bench_quant
