// Shape: a small fixed-capacity list of extents (or strides), up to kMaxDims, with no heap use.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace kirzl {

/// Most dimensions a tensor can have.
inline constexpr int kMaxDims = 8;

/// Extents or strides of a tensor. Value type; constructing one with more than kMaxDims entries
/// throws Error{InvalidArgument}.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : Shape(std::span<const int64_t>(dims.begin(), dims.size())) {}
  explicit Shape(std::span<const int64_t> dims);
  Shape(const std::vector<int64_t>& dims) : Shape(std::span<const int64_t>(dims)) {}  // NOLINT

  int64_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t& operator[](int64_t i) { return d_[i]; }
  int64_t operator[](int64_t i) const { return d_[i]; }
  int64_t* begin() { return d_.data(); }
  int64_t* end() { return d_.data() + n_; }
  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  const int64_t* data() const { return d_.data(); }
  int64_t back() const { return d_[n_ - 1]; }
  void push_back(int64_t v);
  void insert(int64_t pos, int64_t v);
  void erase(int64_t pos);
  void resize(int64_t n, int64_t fill = 0);
  std::vector<int64_t> vec() const { return {begin(), end()}; }

  /// Product of the extents (1 for a scalar's empty shape).
  int64_t numel() const;
  /// "[2, 3, 4]".
  std::string str() const;

  friend bool operator==(const Shape& a, const Shape& b);

 private:
  std::array<int64_t, kMaxDims> d_{};
  int64_t n_ = 0;
};

/// Row-major (C-contiguous) strides for a shape.
Shape contiguous_strides(const Shape& shape);

/// Broadcast shape of a and b (numpy rules); throws Error{InvalidArgument} naming both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

}  // namespace kirzl
