#include "arrays.h"

#include <string>

namespace nb = nanobind;

namespace int8dit_py {
namespace {

using int8dit::DType;
using nb::dlpack::dtype_code;

DType dtype_of(const Array& a, const char* name) {
  const nb::dlpack::dtype t = a.dtype();
  if (t.lanes == 1) {
    const auto code = static_cast<dtype_code>(t.code);
    if (code == dtype_code::Bfloat && t.bits == 16) return DType::kBF16;
    if (code == dtype_code::Float && t.bits == 16) return DType::kFP16;
    if (code == dtype_code::Float && t.bits == 32) return DType::kFP32;
    if (code == dtype_code::Int && t.bits == 32) return DType::kInt32;
    if (code == dtype_code::Int && t.bits == 8) return DType::kInt8;
  }
  throw nb::value_error((std::string(name) + ": element type (DLPack code " + std::to_string(t.code) + ", " +
                         std::to_string(t.bits) + " bits) is not one int8dit reads: use bfloat16, float16, "
                         "float32, int32 or int8")
                            .c_str());
}

Where where_of(const Array& a, const char* name) {
  switch (a.device_type()) {
    case nb::device::cpu::value:
    case nb::device::cuda_host::value: return Where::kHost;
    case nb::device::cuda::value:
    case nb::device::cuda_managed::value: return Where::kDevice;
    default:
      throw nb::value_error((std::string(name) + ": arrays must live in host memory or on a CUDA device (DLPack "
                             "device type " + std::to_string(a.device_type()) + ")")
                                .c_str());
  }
}

}  // namespace

std::string place_name(Where w) { return w == Where::kHost ? "host memory" : "a CUDA device"; }

Matrix as_matrix(const Array& a, const char* name) {
  if (a.ndim() != 2)
    throw nb::value_error((std::string(name) + " must be a 2-D array [rows, cols], got " + std::to_string(a.ndim()) +
                           " dimensions: reshape it to 2-D")
                              .c_str());
  Matrix m;
  m.rows = static_cast<int64_t>(a.shape(0));
  m.cols = static_cast<int64_t>(a.shape(1));
  m.type = dtype_of(a, name);
  m.where = where_of(a, name);
  m.data = a.data();
  // An empty array, a single row or a single column has no meaningful stride: only real rows matter.
  if (m.rows == 0) {
    m.ld = m.cols;
    return m;
  }
  if (m.cols > 1 && a.stride(1) != 1)
    throw nb::value_error((std::string(name) + ": the last dimension must be contiguous (stride 1, got " +
                           std::to_string(a.stride(1)) + "): pass a C-contiguous copy")
                              .c_str());
  m.ld = m.rows > 1 ? a.stride(0) : m.cols;
  if (m.ld < m.cols)
    throw nb::value_error((std::string(name) + ": row stride " + std::to_string(m.ld) + " is smaller than the row (" +
                           std::to_string(m.cols) + " elements): rows overlap; pass a C-contiguous copy")
                              .c_str());
  return m;
}

Vector as_vector(const Array& a, const char* name) {
  if (a.ndim() != 1)
    throw nb::value_error((std::string(name) + " must be a 1-D array, got " + std::to_string(a.ndim()) +
                           " dimensions")
                              .c_str());
  Vector v;
  v.size = static_cast<int64_t>(a.shape(0));
  v.type = dtype_of(a, name);
  v.where = where_of(a, name);
  v.data = a.data();
  if (v.size > 1 && a.stride(0) != 1)
    throw nb::value_error((std::string(name) + " must be contiguous (stride 1, got " + std::to_string(a.stride(0)) +
                           "): pass a contiguous copy")
                              .c_str());
  return v;
}

void expect_type(DType got, DType want, const char* name) {
  if (got != want)
    throw nb::value_error((std::string(name) + " must hold " + int8dit::to_string(want) + ", got " +
                           int8dit::to_string(got))
                              .c_str());
}

void expect_same_place(Where first, Where other, const char* name) {
  if (first != other)
    throw nb::value_error((std::string(name) + " lives in " + place_name(other) + " but the first array lives in " +
                           place_name(first) + ": put every array in the same place")
                              .c_str());
}

}  // namespace int8dit_py
