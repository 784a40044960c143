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
  /// `Shape{2, 3}`: the listed extents, outermost first. More than kMaxDims: Error{InvalidArgument}.
  Shape(std::initializer_list<int64_t> dims) : Shape(std::span<const int64_t>(dims.begin(), dims.size())) {}
  /// A copy of `dims`. The values are not checked (a Shape holds strides too, which may be 0);
  /// more than kMaxDims entries: Error{InvalidArgument}.
  explicit Shape(std::span<const int64_t> dims);
  /// A copy of `dims` (implicit, so that a std::vector can be passed where a Shape is expected).
  /// More than kMaxDims entries: Error{InvalidArgument}.
  Shape(const std::vector<int64_t>& dims) : Shape(std::span<const int64_t>(dims)) {}  // NOLINT

  /// Number of dimensions (0 for a scalar), not the number of elements (that is numel()).
  int64_t size() const { return n_; }
  /// True for the shape of a scalar (no dimensions).
  bool empty() const { return n_ == 0; }
  /// Dimension `i`, writable; `i` must be in [0, size()) and is not checked (no negative indices).
  int64_t& operator[](int64_t i) { return d_[i]; }
  /// Dimension `i`; `i` must be in [0, size()) and is not checked (no negative indices).
  int64_t operator[](int64_t i) const { return d_[i]; }
  /// Pointer to the first dimension, for range-for and algorithms; invalidated by nothing but the
  /// Shape's destruction (the storage is inline), though insert/erase shift the values.
  int64_t* begin() { return d_.data(); }
  /// One past the last dimension (begin() + size()).
  int64_t* end() { return d_.data() + n_; }
  /// Pointer to the first dimension (read-only).
  const int64_t* begin() const { return d_.data(); }
  /// One past the last dimension (read-only).
  const int64_t* end() const { return d_.data() + n_; }
  /// The size() dimensions as a contiguous array, outermost first; valid while the Shape lives.
  const int64_t* data() const { return d_.data(); }
  /// The last (innermost) dimension; the shape must not be empty (not checked).
  int64_t back() const { return d_[n_ - 1]; }
  /// Appends dimension `v`; Error{InvalidArgument} when the shape has kMaxDims already.
  void push_back(int64_t v);
  /// Inserts `v` before dimension `pos` (`pos` == size() appends); `pos` must be in [0, size()] and
  /// is not checked. Error{InvalidArgument} when the shape has kMaxDims already.
  void insert(int64_t pos, int64_t v);
  /// Removes dimension `pos`; `pos` must be in [0, size()) and is not checked.
  void erase(int64_t pos);
  /// Keeps the first `n` dimensions, or appends dimensions of value `fill` up to `n`.
  /// Error{InvalidArgument} unless 0 <= n <= kMaxDims.
  void resize(int64_t n, int64_t fill = 0);
  /// The dimensions as a std::vector (a copy), e.g. for printing or for APIs that take vectors.
  std::vector<int64_t> vec() const { return {begin(), end()}; }

  /// Product of the extents (1 for a scalar's empty shape).
  int64_t numel() const;
  /// "[2, 3, 4]".
  std::string str() const;

  /// Same number of dimensions and the same value in each.
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
