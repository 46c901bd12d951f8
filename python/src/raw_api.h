// Pointer-level entry points for int8dit.torch: the caller (a torch custom op) has already checked
// devices, types and shapes and passes data pointers as integers. This keeps a linear layer to one
// cheap Python -> C++ call (no DLPack capsules per tensor), and it launches nothing but the kernels,
// so it is safe under CUDA graph capture. The C++ API still validates sizes, strides and alignment.
#pragma once

#include <nanobind/nanobind.h>

namespace int8dit_py {

void register_raw_api(nanobind::module_& m);

}  // namespace int8dit_py
