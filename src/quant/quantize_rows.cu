// Placeholder until the quantization kernels land (issue 4): never returns wrong numbers.
#include "int8dit/quantize.h"

namespace int8dit {

Status quantize_rows(const QuantizeRowsParams& p, cudaStream_t) {
  Status st = validate(p);
  if (!st.ok() || p.rows == 0) return st;
  return Status(StatusCode::kNotImplemented, "quantize_rows: not implemented on this GPU yet");
}

Status quantize_weights(const QuantizeRowsParams& p, cudaStream_t stream) { return quantize_rows(p, stream); }

}  // namespace int8dit
