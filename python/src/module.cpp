// int8dit._C: the C++ core for Python, through DLPack arrays (numpy, torch, cupy, jax...).
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include "array_api.h"
#include "errors.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "int8dit/types.h"
#include "raw_api.h"

namespace nb = nanobind;

namespace {

// The current CUDA device as a dict, or a NotSupportedError saying why there is none.
nb::dict device_info() {
  int8dit::DeviceInfo info;
  int8dit_py::throw_if_error(int8dit::current_device(&info), "device_info");
  nb::dict d;
  d["index"] = info.index;
  d["name"] = info.name;
  d["compute_capability"] = info.cc;
  d["sm_count"] = info.sm_count;
  d["memory_bytes"] = info.memory_bytes;
  d["l2_bytes"] = info.l2_bytes;
  d["clock_khz"] = info.clock_khz;
  d["kernel_family"] = std::string(int8dit::to_string(info.family));
  d["family_built"] = info.family_built;
  return d;
}

}  // namespace

NB_MODULE(_C, m) {
  m.doc() = "int8dit C++ core: W8A8 GEMM and per-row int8 quantization (GPU kernels, CPU reference)";
  int8dit_py::register_errors(m);

  nb::enum_<int8dit::DType>(m, "DType")
      .value("bf16", int8dit::DType::kBF16)
      .value("fp16", int8dit::DType::kFP16)
      .value("fp32", int8dit::DType::kFP32)
      .value("int32", int8dit::DType::kInt32)
      .value("int8", int8dit::DType::kInt8);

  m.def("version", &int8dit::version, "the int8dit library version");
  m.def("built_architectures", &int8dit::built_architectures, "CUDA architectures compiled in, e.g. '90a'");
  m.def("device_info", &device_info, "the current CUDA device, or NotSupportedError saying why there is none");
  m.def(
      "config_names", [] { return int8dit::gemm_config_names(nullptr); },
      "GEMM configurations built for the current GPU's kernel family, comma-separated ('' without a GPU)");

  int8dit_py::register_array_api(m);
  int8dit_py::register_raw_api(m);
}
