// The array-level API: quantize_rows and gemm_w8a8 on any DLPack arrays. Host arrays run the CPU
// reference (int8dit::ref), device arrays the GPU kernels on the given CUDA stream.
#pragma once

#include <nanobind/nanobind.h>

namespace int8dit_py {

void register_array_api(nanobind::module_& m);

}  // namespace int8dit_py
