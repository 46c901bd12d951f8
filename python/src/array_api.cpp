#include "array_api.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <cstdint>
#include <optional>
#include <string>

#include "arrays.h"
#include "errors.h"
#include "int8dit/gemm.h"
#include "int8dit/quantize.h"
#include "int8dit/reference.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace int8dit_py {
namespace {

using int8dit::DType;

cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

void expect(bool ok, const std::string& msg) {
  if (!ok) throw nb::value_error(msg.c_str());
}

std::string shape(int64_t r, int64_t c) { return "[" + std::to_string(r) + ", " + std::to_string(c) + "]"; }

void quantize_rows(const Array& x, const Array& q, const Array& scale, std::optional<Array> smooth,
                   uintptr_t stream) {
  const Matrix X = as_matrix(x, "x");
  const Matrix Q = as_matrix(q, "q");
  const Vector S = as_vector(scale, "scale");
  expect_type(Q.type, DType::kInt8, "q");
  expect_type(S.type, DType::kFP32, "scale");
  expect_same_place(X.where, Q.where, "q");
  expect_same_place(X.where, S.where, "scale");
  expect(Q.rows == X.rows && Q.cols == X.cols,
         "q has shape " + shape(Q.rows, Q.cols) + " but x has shape " + shape(X.rows, X.cols) + ": they must match");
  expect(S.size == X.rows, "scale has " + std::to_string(S.size) + " elements but x has " + std::to_string(X.rows) +
                               " rows: one scale per row");

  int8dit::QuantizeRowsParams p;
  p.rows = X.rows;
  p.cols = X.cols;
  p.x = X.data;
  p.x_type = X.type;
  p.ldx = X.ld;
  p.q = static_cast<int8_t*>(Q.data);
  p.ldq = Q.ld;
  p.scale = static_cast<float*>(S.data);
  if (smooth) {
    const Vector sm = as_vector(*smooth, "smooth");
    expect_type(sm.type, DType::kFP32, "smooth");
    expect_same_place(X.where, sm.where, "smooth");
    expect(sm.size == X.cols, "smooth has " + std::to_string(sm.size) + " elements but x has " +
                                  std::to_string(X.cols) + " columns: one smoothing divisor per input channel");
    p.smooth = static_cast<const float*>(sm.data);
  }
  int8dit::Status st;
  if (X.where == Where::kHost) {
    nb::gil_scoped_release release;
    st = int8dit::ref::quantize_rows(p);
  } else {
    st = int8dit::quantize_rows(p, as_stream(stream));
  }
  throw_if_error(st, "quantize_rows");
}

// A scale array of length `per_row` is one scale per row; length 1 is one scale for the whole matrix.
const float* scale_pointer(const std::optional<Array>& a, const char* name, int64_t per_row, Where where,
                           int8dit::ScaleMode per_row_mode, int8dit::ScaleMode* mode) {
  if (!a) return nullptr;
  const Vector v = as_vector(*a, name);
  expect_type(v.type, DType::kFP32, name);
  expect_same_place(where, v.where, name);
  if (v.size == per_row) {
    *mode = per_row_mode;
  } else if (v.size == 1) {
    *mode = int8dit::ScaleMode::kPerTensor;
  } else {
    throw nb::value_error((std::string(name) + " has " + std::to_string(v.size) + " elements: give one per " +
                           (per_row_mode == int8dit::ScaleMode::kPerRow ? "row of a (" : "row of b (") +
                           std::to_string(per_row) + ") or a single per-tensor value")
                              .c_str());
  }
  return static_cast<const float*>(v.data);
}

struct GemmCall {
  int8dit::GemmParams p;
  Where where = Where::kHost;
};

GemmCall gemm_params(const Array& a, const Array& b, const Array& d, const std::optional<Array>& scale_a,
                     const std::optional<Array>& scale_b, const std::optional<Array>& bias,
                     const std::optional<Array>& workspace) {
  const Matrix A = as_matrix(a, "a");
  const Matrix B = as_matrix(b, "b");
  const Matrix D = as_matrix(d, "d");
  expect_type(A.type, DType::kInt8, "a");
  expect_type(B.type, DType::kInt8, "b");
  expect_same_place(A.where, B.where, "b");
  expect_same_place(A.where, D.where, "d");
  expect(A.cols == B.cols, "a is " + shape(A.rows, A.cols) + " and b is " + shape(B.rows, B.cols) +
                               ": both hold K columns (b is the weight [N, K], the nn.Linear layout)");
  expect(D.rows == A.rows && D.cols == B.rows, "d is " + shape(D.rows, D.cols) + " but a b^T is " +
                                                   shape(A.rows, B.rows));
  GemmCall c;
  c.where = A.where;
  int8dit::GemmParams& p = c.p;
  p.m = A.rows;
  p.n = B.rows;
  p.k = A.cols;
  p.a = static_cast<const int8_t*>(A.data);
  p.lda = A.ld;
  p.b = static_cast<const int8_t*>(B.data);
  p.ldb = B.ld;
  p.d = D.data;
  p.d_type = D.type;
  p.ldd = D.ld;
  p.scale_a = scale_pointer(scale_a, "scale_a", p.m, A.where, int8dit::ScaleMode::kPerRow, &p.scale_a_mode);
  p.scale_b = scale_pointer(scale_b, "scale_b", p.n, A.where, int8dit::ScaleMode::kPerCol, &p.scale_b_mode);
  if (bias) {
    const Vector v = as_vector(*bias, "bias");
    expect_type(v.type, DType::kFP32, "bias");
    expect_same_place(A.where, v.where, "bias");
    expect(v.size == p.n, "bias has " + std::to_string(v.size) + " elements but the output has N = " +
                              std::to_string(p.n) + " columns");
    p.bias = static_cast<const float*>(v.data);
  }
  if (workspace) {
    const Vector v = as_vector(*workspace, "workspace");
    expect_same_place(A.where, v.where, "workspace");
    p.workspace = v.data;
    p.workspace_bytes = static_cast<size_t>(v.size) * int8dit::size_of(v.type);
  }
  return c;
}

void gemm_w8a8(const Array& a, const Array& b, const Array& d, std::optional<Array> scale_a,
               std::optional<Array> scale_b, std::optional<Array> bias, uintptr_t stream,
               std::optional<std::string> config, std::optional<Array> workspace) {
  GemmCall c = gemm_params(a, b, d, scale_a, scale_b, bias, workspace);
  int8dit::Status st;
  if (c.where == Where::kHost) {
    nb::gil_scoped_release release;
    st = int8dit::ref::gemm_w8a8(c.p);
  } else {
    int8dit::GemmOptions opts;
    if (config) opts.config = config->c_str();
    st = int8dit::gemm_w8a8(c.p, as_stream(stream), &opts);
  }
  throw_if_error(st, "gemm_w8a8");
}

size_t gemm_workspace_size(const Array& a, const Array& b, const Array& d, std::optional<Array> scale_a,
                           std::optional<Array> scale_b, std::optional<Array> bias, std::optional<std::string> config) {
  GemmCall c = gemm_params(a, b, d, scale_a, scale_b, bias, std::nullopt);
  if (c.where == Where::kHost) return 0;  // the reference needs no workspace
  int8dit::GemmOptions opts;
  if (config) opts.config = config->c_str();
  throw_if_error(int8dit::gemm_can_implement(c.p, &opts), "gemm_workspace_size");
  return int8dit::gemm_workspace_size(c.p, &opts);
}

}  // namespace

void register_array_api(nb::module_& m) {
  m.def("quantize_rows", &quantize_rows, "x"_a, "q"_a, "scale"_a, "smooth"_a = nb::none(), "stream"_a = 0,
        "Quantize the rows of x [rows, cols] (bf16/fp16, fp32 on the host) into q (int8, same shape) and "
        "scale (fp32, one per row); smooth (fp32, one per column) divides x first (SmoothQuant). Host arrays "
        "run the CPU reference, device arrays the GPU kernel on `stream` (a cudaStream_t as an int).");
  m.def("gemm_w8a8", &gemm_w8a8, "a"_a, "b"_a, "d"_a, "scale_a"_a = nb::none(), "scale_b"_a = nb::none(),
        "bias"_a = nb::none(), "stream"_a = 0, "config"_a = nb::none(), "workspace"_a = nb::none(),
        "d = (a b^T) * (scale_a[m] * scale_b[n]) + bias[n] with a int8 [M, K], b int8 [N, K] (the nn.Linear "
        "layout), d bf16/fp16/fp32 [M, N]; an int32 d receives the raw accumulator (no scales or bias). "
        "scale arrays hold one value per row (per token / per output channel) or a single value.");
  m.def("gemm_workspace_size", &gemm_workspace_size, "a"_a, "b"_a, "d"_a, "scale_a"_a = nb::none(),
        "scale_b"_a = nb::none(), "bias"_a = nb::none(), "config"_a = nb::none(),
        "Bytes of workspace gemm_w8a8 needs for these arrays on the current GPU (0 on the host).");
}

}  // namespace int8dit_py
