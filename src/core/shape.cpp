#include "kirzl/core/shape.hpp"

#include <algorithm>

#include "kirzl/core/error.hpp"

namespace kirzl {

Shape::Shape(std::span<const int64_t> dims) {
  KIRZL_CHECK(dims.size() <= static_cast<size_t>(kMaxDims), "Shape: ", dims.size(),
              " dimensions given, but tensors have at most ", kMaxDims);
  n_ = static_cast<int64_t>(dims.size());
  for (int64_t i = 0; i < n_; ++i) d_[i] = dims[i];
}

void Shape::push_back(int64_t v) {
  KIRZL_CHECK(n_ < kMaxDims, "Shape: cannot grow ", str(), " beyond ", kMaxDims, " dimensions");
  d_[n_++] = v;
}

void Shape::insert(int64_t pos, int64_t v) {
  KIRZL_CHECK(n_ < kMaxDims, "Shape: cannot grow ", str(), " beyond ", kMaxDims, " dimensions");
  for (int64_t i = n_; i > pos; --i) d_[i] = d_[i - 1];
  d_[pos] = v;
  ++n_;
}

void Shape::erase(int64_t pos) {
  for (int64_t i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
  --n_;
}

void Shape::resize(int64_t n, int64_t fill) {
  KIRZL_CHECK(n >= 0 && n <= kMaxDims, "Shape: cannot resize to ", n, " dimensions (at most ", kMaxDims, ")");
  for (int64_t i = n_; i < n; ++i) d_[i] = fill;
  n_ = n;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int64_t i = 0; i < n_; ++i) n *= d_[i];
  return n;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int64_t i = 0; i < n_; ++i) {
    if (i) s += ", ";
    s += std::to_string(d_[i]);
  }
  return s + "]";
}

bool operator==(const Shape& a, const Shape& b) {
  if (a.n_ != b.n_) return false;
  for (int64_t i = 0; i < a.n_; ++i)
    if (a.d_[i] != b.d_[i]) return false;
  return true;
}

Shape contiguous_strides(const Shape& shape) {
  Shape s;
  s.resize(shape.size());
  int64_t acc = 1;
  for (int64_t i = shape.size() - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i] > 0 ? shape[i] : 1;
  }
  return s;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int64_t n = std::max(a.size(), b.size());
  Shape out;
  out.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    KIRZL_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a.str(), " and ", b.str(),
                " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace kirzl
