// Internal: a contiguous tensor seen as rows along one dimension.
//
// Note [dim rows]: a contiguous tensor of shape [outer, len, inner] (dims before `dim` merged into
// outer, dims after it into inner) has outer*inner "rows" of `len` elements each; row r starts at
// (r / inner) * len * inner + r % inner and steps by `inner`. Reducing over the last dim gives
// stride 1; other dims are handled by the same loops with a larger stride, no transposed copy.
#pragma once

#include <cstdint>

#include "kirzl/core/shape.hpp"

namespace kirzl::kernels::cpu {

struct DimRows {
  int64_t outer = 1, len = 1, inner = 1;
  int64_t rows() const { return outer * inner; }
  int64_t base(int64_t r) const { return (r / inner) * len * inner + r % inner; }
  int64_t stride() const { return inner; }
};

inline DimRows dim_rows(const Shape& shape, int64_t dim) {
  DimRows d;
  for (int64_t i = 0; i < shape.size(); ++i) {
    if (i < dim) d.outer *= shape[i];
    else if (i == dim) d.len = shape[i];
    else d.inner *= shape[i];
  }
  return d;
}

}  // namespace kirzl::kernels::cpu
