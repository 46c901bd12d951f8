// Checking mode: which rows have a non-finite scale (their input held NaN or Inf).
#include <cmath>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "int8dit/check.h"

namespace int8dit {

Status find_nonfinite_rows(const float* scale, int64_t rows, std::vector<int64_t>* out) {
  if (!out) return Status(StatusCode::kInvalidArgument, "find_nonfinite_rows: out is null");
  if (rows < 0) return Status(StatusCode::kInvalidArgument, "rows = " + std::to_string(rows) + ": must be >= 0");
  out->clear();
  if (rows == 0) return Status::Ok();
  if (!scale) return Status(StatusCode::kInvalidArgument, "find_nonfinite_rows: scale is null");
  for (int64_t r = 0; r < rows; ++r)
    if (!std::isfinite(scale[r])) out->push_back(r);
  return Status::Ok();
}

Status find_nonfinite_rows_on_device(const float* scale, int64_t rows, cudaStream_t stream,
                                     std::vector<int64_t>* out) {
  if (!out) return Status(StatusCode::kInvalidArgument, "find_nonfinite_rows_on_device: out is null");
  if (rows < 0) return Status(StatusCode::kInvalidArgument, "rows = " + std::to_string(rows) + ": must be >= 0");
  out->clear();
  if (rows == 0) return Status::Ok();
  INT8DIT_RETURN_IF_ERROR(detail::check_device_pointer(scale, "scale"));
  std::vector<float> host(static_cast<size_t>(rows));
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(
      cudaMemcpyAsync(host.data(), scale, host.size() * sizeof(float), cudaMemcpyDeviceToHost, stream),
      "cudaMemcpyAsync (scales to host)"));
  INT8DIT_RETURN_IF_ERROR(detail::cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
  return find_nonfinite_rows(host.data(), rows, out);
}

std::string describe_nonfinite_rows(const std::vector<int64_t>& rows_found, int64_t rows, size_t max_listed) {
  if (rows_found.empty()) return "all " + std::to_string(rows) + " rows finite";
  std::string s = std::to_string(rows_found.size()) + " of " + std::to_string(rows) +
                  " rows non-finite (NaN/Inf in the input):";
  for (size_t i = 0; i < rows_found.size() && i < max_listed; ++i)
    s += (i ? ", " : " ") + std::to_string(rows_found[i]);
  if (rows_found.size() > max_listed) s += ", ... (" + std::to_string(rows_found.size() - max_listed) + " more)";
  return s;
}

}  // namespace int8dit
