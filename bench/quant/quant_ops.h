// The benchmarked operations: each int8dit quantization entry point on a DiT activation shape,
// with its own rotating buffers, and the bytes it must move at least (the bandwidth accounting).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bench_quant {

struct OpCase {
  std::string op;  // quantize_rows, quantize_rows+smooth, layernorm_modulate_quantize(+y), rmsnorm_quantize, gelu_quantize
  int64_t m = 0, k = 0;
};

struct OpResult {
  double us = 0;     // median time of one call
  double bytes = 0;  // bytes read + bytes written by one call
  double same_size_copy_us = 0;  // a device-to-device copy of the same bytes, timed the same way
};

// Every op on the DiT shapes of issue 4 (Flux/SD3/PixArt, 4096-4608 tokens).
std::vector<OpCase> dit_cases();

// Times one case; exits with a message if the op returns an error.
OpResult run_op_case(const OpCase& c);

}  // namespace bench_quant
