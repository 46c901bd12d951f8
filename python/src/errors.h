// Turning an int8dit::Status into the Python exception a caller expects, with the C++ message.
//   kInvalidArgument -> ValueError
//   kNotImplemented  -> int8dit.KernelNotImplementedError (a NotImplementedError)
//   kNotSupported    -> int8dit.NotSupportedError (a RuntimeError)
//   kCudaError       -> int8dit.CudaError (a RuntimeError)
//   kInternal        -> RuntimeError
#pragma once

#include <nanobind/nanobind.h>

#include "int8dit/status.h"

namespace int8dit_py {

// Registers the exception types on the module.
void register_errors(nanobind::module_& m);

// Throws the matching exception when `st` is not ok; `what` prefixes the message ("gemm_w8a8: ...").
void throw_if_error(const int8dit::Status& st, const char* what);

}  // namespace int8dit_py
