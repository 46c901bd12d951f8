// check_device_pointer (cuda_check.h): is a pointer memory the current device can use?
//
// Every GPU entry point checks its pointers, so that a host pointer or one on another device gets an
// error that says so instead of an illegal-address fault that ends the CUDA context. The check is one
// driver query a pointer, ~0.15-0.2 us on the H200's host, and a GEMM call makes up to seven: 1.5 us
// of host time where issue 3 asks for 5 us a call, launch included (bench/results/h200/gemm.md). So
// each thread remembers the allocations it has found good (KnownRanges, keyed by the allocation's
// address range, which the same query reports), and a pointer into one of them is judged from memory.
//
// NOTE: what memory cannot see is an allocation freed since it was remembered. A pointer into it
// passes the check as it passed before (where the driver would now call it unknown, or name the
// device that reused its addresses), so the check does not catch use after free, which no query at
// call time can catch reliably anyway (PyTorch's caching allocator never frees). A pointer the memory
// would reject is always asked about again before the call fails, so a reused address range never
// turns a good pointer into an error.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "core/cuda_check.h"
#include "core/driver_api.h"
#include "core/known_ranges.h"

namespace int8dit::detail {
namespace {

thread_local KnownRanges known_ranges;

// One driver call (cuPointerGetAttributes, five attributes) instead of cudaPointerGetAttributes, which
// asks the driver for every attribute it reports (H200 host: six checks 0.81-1.02 us against 1.24
// through the runtime; bench/results/h200/README.md). *range_size is 0 where the driver knows no
// allocation there. False where the driver query is missing or fails, so the caller asks the runtime.
bool place_from_driver(const void* ptr, PointerPlace* out, uintptr_t* range_begin, size_t* range_size) {
  const auto query = driver_api().pointer_get_attributes;
  if (!query) return false;
  unsigned int memory_type = 0;
  unsigned int is_managed = 0;  // zero-initialised: nonzero whether the driver writes one byte or four
  int device = -1;
  CUdeviceptr begin = 0;
  size_t size = 0;
  CUpointer_attribute attrs[5] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_IS_MANAGED,
                                  CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
                                  CU_POINTER_ATTRIBUTE_RANGE_SIZE};
  void* data[5] = {&memory_type, &is_managed, &device, &begin, &size};
  if (query(5, attrs, data, reinterpret_cast<CUdeviceptr>(ptr)) != CUDA_SUCCESS) return false;
  if (is_managed != 0) {
    out->kind = PointerPlace::kManaged;
  } else if (memory_type == CU_MEMORYTYPE_DEVICE) {
    out->kind = PointerPlace::kDevice;
    out->device = device;
  } else {
    out->kind = PointerPlace::kHost;  // pinned, registered, or memory CUDA does not know
  }
  *range_begin = static_cast<uintptr_t>(begin);
  *range_size = size;
  return true;
}

Status place_from_runtime(const void* ptr, const char* name, PointerPlace* out) {
  cudaPointerAttributes attr{};
  cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return Status(StatusCode::kInvalidArgument,
                  std::string(name) + " is not a pointer CUDA knows (" + cudaGetErrorString(err) +
                      "): pass device memory from cudaMalloc or a CUDA tensor");
  }
  out->kind = attr.type == cudaMemoryTypeDevice    ? PointerPlace::kDevice
              : attr.type == cudaMemoryTypeManaged ? PointerPlace::kManaged
                                                   : PointerPlace::kHost;
  out->device = attr.device;
  return Status::Ok();
}

// The current device, asked for once per batch of checks and only where a pointer needs it: the
// runtime's cudaGetDevice is ~0.1 us on the H200's host, as much as the rest of a remembered check.
class CurrentDevice {
 public:
  int get() {
    if (device_ < 0 && cudaGetDevice(&device_) != cudaSuccess) {
      cudaGetLastError();
      device_ = 0;
    }
    return device_;
  }

 private:
  int device_ = -1;
};

Status judge(const PointerPlace& place, const char* name, CurrentDevice& current) {
  if (place.kind == PointerPlace::kHost) {
    return Status(StatusCode::kInvalidArgument,
                  std::string(name) + " points to host memory: the GPU entry points take device memory "
                                      "(copy it with cudaMemcpy, or call int8dit::ref:: for the CPU)");
  }
  if (place.kind == PointerPlace::kDevice && place.device != current.get()) {
    return Status(StatusCode::kInvalidArgument,
                  std::string(name) + " lives on device " + std::to_string(place.device) + " but the current device is " +
                      std::to_string(current.get()) + ": call cudaSetDevice first");
  }
  return Status::Ok();
}

Status check_one(KnownRanges& known, CurrentDevice& current, const void* ptr, const char* name) {
  const auto address = reinterpret_cast<uintptr_t>(ptr);
  PointerPlace place;
  if (known.find(address, &place)) {
    if (judge(place, name, current).ok()) return Status::Ok();
    known.forget(address);  // freed and reused since, or the current device changed: ask again
  }
  uintptr_t range_begin = 0;
  size_t range_size = 0;
  if (!place_from_driver(ptr, &place, &range_begin, &range_size)) {
    INT8DIT_RETURN_IF_ERROR(place_from_runtime(ptr, name, &place));
  }
  Status st = judge(place, name, current);
  if (st.ok()) known.add(range_begin, range_size, place);
  return st;
}

}  // namespace

Status check_device_pointers(std::initializer_list<std::pair<const void*, const char*>> pointers) {
  KnownRanges& known = known_ranges;  // one thread-local lookup for the batch (a call in a shared library)
  CurrentDevice current;
  for (const auto& [ptr, name] : pointers) {
    if (ptr) INT8DIT_RETURN_IF_ERROR(check_one(known, current, ptr, name));
  }
  return Status::Ok();
}

Status check_device_pointer(const void* ptr, const char* name) {
  if (!ptr) return Status(StatusCode::kInvalidArgument, std::string(name) + " is null: pass device memory");
  return check_device_pointers({{ptr, name}});
}

}  // namespace int8dit::detail
