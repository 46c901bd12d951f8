// RowArgs from the public params of any quantization op (they share the field names).
#pragma once

#include "quant/row_kernels.cuh"

namespace int8dit::quant {

// The input and the int8 output: every op's params have these (QuantizeRowsParams only these).
template <typename T, typename P>
RowArgs<T> row_args_in_out(const P& p) {
  RowArgs<T> a;
  a.rows = p.rows;
  a.cols = p.cols;
  a.x = static_cast<const T*>(p.x);
  a.ldx = p.ldx;
  a.smooth = p.smooth;
  a.q = p.q;
  a.ldq = p.ldq;
  a.scale = p.scale;
  return a;
}

// The fused ops' params, which also carry the optional y output.
template <typename T, typename P>
RowArgs<T> row_args(const P& p) {
  RowArgs<T> a = row_args_in_out<T>(p);
  a.y = static_cast<T*>(p.y);
  a.ldy = p.ldy;
  return a;
}

}  // namespace int8dit::quant
