#include "int8dit/reference.h"
namespace int8dit::ref {
Status quantize_rows(const QuantizeRowsParams& p) { return Status(StatusCode::kNotImplemented, "todo"); }
}
