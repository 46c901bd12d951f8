// Reading DLPack arrays (numpy, torch, cupy, jax...) into the plain pointers and strides of the C++ API.
// The API wants rows of contiguous elements with a row stride (a leading dimension), so an array is
// accepted when its last dimension is contiguous; anything else gets a ValueError saying so.
#pragma once

#include <nanobind/ndarray.h>

#include <cstdint>
#include <string>

#include "int8dit/types.h"

namespace int8dit_py {

using Array = nanobind::ndarray<>;

// Where an array's memory lives, as far as int8dit cares.
enum class Where { kHost, kDevice };

struct Matrix {
  void* data = nullptr;
  int64_t rows = 0, cols = 0;
  int64_t ld = 0;  // row stride in elements
  int8dit::DType type = int8dit::DType::kFP32;
  Where where = Where::kHost;
};

struct Vector {
  void* data = nullptr;
  int64_t size = 0;
  int8dit::DType type = int8dit::DType::kFP32;
  Where where = Where::kHost;
};

// `name` is the argument's name, used in error messages.
Matrix as_matrix(const Array& a, const char* name);
Vector as_vector(const Array& a, const char* name);

// Throws ValueError unless `got` is `want`.
void expect_type(int8dit::DType got, int8dit::DType want, const char* name);
// Throws ValueError unless every array lives where the first one does.
void expect_same_place(Where first, Where other, const char* name);

std::string place_name(Where w);

}  // namespace int8dit_py
