// RowArgs from the public params of any quantization op (they share the field names).
#pragma once

#include "quant/row_kernels.cuh"

namespace int8dit::quant {

template <typename T, typename P>
RowArgs<T> row_args(const P& p) {
  RowArgs<T> a;
  a.rows = p.rows;
  a.cols = p.cols;
  a.x = static_cast<const T*>(p.x);
  a.ldx = p.ldx;
  a.smooth = p.smooth;
  a.q = p.q;
  a.ldq = p.ldq;
  a.scale = p.scale;
  a.y = static_cast<T*>(p.y);
  a.ldy = p.ldy;
  return a;
}

}  // namespace int8dit::quant
