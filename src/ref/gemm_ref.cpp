#include "int8dit/reference.h"
namespace int8dit::ref {
Status gemm_w8a8(const GemmParams& p) { return Status(StatusCode::kNotImplemented, "todo"); }
float epilogue_value(int32_t acc, float sa, float sb, float bias) { return float(acc) * (sa * sb) + bias; }
}
