// int8dit: checking mode. A row holding NaN or Inf quantizes to a NaN scale (DESIGN.md), so its
// GEMM output row is NaN; these functions say which rows those were, from the scales.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "int8dit/status.h"

namespace int8dit {

// Indices (ascending) of the rows whose scale is not finite. `scale` is a host array of `rows`.
Status find_nonfinite_rows(const float* scale, int64_t rows, std::vector<int64_t>* out);

// The same for scales in device memory (e.g. quantize_rows' output): copies them to the host on
// `stream` and waits for that stream.
Status find_nonfinite_rows_on_device(const float* scale, int64_t rows, cudaStream_t stream,
                                     std::vector<int64_t>* out);

// "2 of 4608 rows non-finite (NaN/Inf in the input): 17, 4000"; at most `max_listed` indices are
// listed; "all 4608 rows finite" when `rows_found` is empty.
std::string describe_nonfinite_rows(const std::vector<int64_t>& rows_found, int64_t rows, size_t max_listed = 16);

}  // namespace int8dit
