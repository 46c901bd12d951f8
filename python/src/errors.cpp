#include "errors.h"

#include <stdexcept>
#include <string>

namespace nb = nanobind;

namespace int8dit_py {
namespace {

// C++ exception types that nanobind translates to the Python types registered below.
struct KernelNotImplemented : std::runtime_error { using std::runtime_error::runtime_error; };
struct NotSupported : std::runtime_error { using std::runtime_error::runtime_error; };
struct CudaFailure : std::runtime_error { using std::runtime_error::runtime_error; };

}  // namespace

void register_errors(nb::module_& m) {
  nb::exception<KernelNotImplemented>(m, "KernelNotImplementedError", PyExc_NotImplementedError);
  nb::exception<NotSupported>(m, "NotSupportedError", PyExc_RuntimeError);
  nb::exception<CudaFailure>(m, "CudaError", PyExc_RuntimeError);
}

void throw_if_error(const int8dit::Status& st, const char* what) {
  using int8dit::StatusCode;
  if (st.ok()) return;
  // (the fused ops' own checks already name the op: "gated_add: ..."; say it once)
  const std::string prefix = std::string(what) + ": ";
  const std::string msg = st.message().rfind(prefix, 0) == 0 ? st.message() : prefix + st.message();
  switch (st.code()) {
    case StatusCode::kInvalidArgument: throw nb::value_error(msg.c_str());
    case StatusCode::kNotImplemented: throw KernelNotImplemented(msg);
    case StatusCode::kNotSupported: throw NotSupported(msg);
    case StatusCode::kCudaError: throw CudaFailure(msg);
    default: throw std::runtime_error(std::string("internal error in int8dit (please report): ") + msg);
  }
}

}  // namespace int8dit_py
