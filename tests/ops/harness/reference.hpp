// Building blocks of the op table's float64 references: plain loops over contiguous values, with
// their own index arithmetic (broadcasting, reductions, rows along a dim), so that a reference
// shares no code with kirzl's kernels. Only tensor creation and read-back come from kirzl.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include <kirzl/kirzl.hpp>

namespace kirzl::testing::ref {

inline int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t e : s) n *= e;
  return n;
}

/// The values of `t` in row-major order, as doubles.
inline std::vector<double> values(const Tensor& t) {
  return t.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
}

/// The values of a view of a float64 CPU tensor, walked through its own shape, strides and offset
/// (not through kirzl's copy kernels: the reference of the copy rows).
inline std::vector<double> strided_values(const Tensor& view) {
  const double* base = static_cast<const double*>(view.storage().data());
  std::vector<double> v;
  for (int64_t i = 0; i < numel_of(view.shape()); ++i) {
    int64_t rem = i, off = view.offset();
    for (int64_t d = view.dim() - 1; d >= 0; --d) {
      off += (rem % view.size(d)) * view.stride(d);
      rem /= view.size(d);
    }
    v.push_back(base[off]);
  }
  return v;
}

/// A float64 CPU tensor of `shape` holding `v`.
inline Tensor make(const Shape& shape, const std::vector<double>& v) { return from_vector<double>(v, shape); }

/// Row-major coordinates of flat index `i` in `shape`.
inline std::vector<int64_t> coords(int64_t i, const Shape& shape) {
  std::vector<int64_t> c(static_cast<size_t>(shape.size()));
  for (int64_t d = shape.size() - 1; d >= 0; --d) {
    c[d] = shape[d] == 0 ? 0 : i % shape[d];
    if (shape[d] != 0) i /= shape[d];
  }
  return c;
}

/// Flat index in `shape` of the coordinates `c` of a shape that `shape` broadcasts to (the
/// trailing dims align; extent-1 dims repeat).
inline int64_t broadcast_index(const std::vector<int64_t>& c, const Shape& shape) {
  int64_t idx = 0;
  const int64_t lead = int64_t(c.size()) - shape.size();
  for (int64_t d = 0; d < shape.size(); ++d) idx = idx * shape[d] + (shape[d] == 1 ? 0 : c[lead + d]);
  return idx;
}

/// numpy broadcasting of any number of shapes (written here, not kirzl::broadcast_shapes).
inline Shape broadcast(const std::vector<Shape>& shapes) {
  int64_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  std::vector<int64_t> out(static_cast<size_t>(rank), 1);
  for (const Shape& s : shapes)
    for (int64_t d = 0; d < s.size(); ++d)
      if (s[d] != 1) out[rank - s.size() + d] = s[d];
  return Shape(out);
}

/// f(x) elementwise.
inline Tensor map(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> v = values(x);
  for (double& e : v) e = f(e);
  return make(x.shape(), v);
}

/// f(a, b, ...) elementwise over the broadcast shape of the inputs.
inline Tensor zip(const std::vector<Tensor>& in, const std::function<double(const std::vector<double>&)>& f) {
  std::vector<Shape> shapes;
  std::vector<std::vector<double>> vals;
  for (const Tensor& t : in) shapes.push_back(t.shape()), vals.push_back(values(t));
  const Shape out = broadcast(shapes);
  std::vector<double> r(numel_of(out)), args(in.size());
  for (int64_t i = 0; i < int64_t(r.size()); ++i) {
    const std::vector<int64_t> c = coords(i, out);
    for (size_t k = 0; k < in.size(); ++k) args[k] = vals[k][broadcast_index(c, shapes[k])];
    r[i] = f(args);
  }
  return make(out, r);
}
inline Tensor zip(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  return zip({a, b}, [&](const std::vector<double>& v) { return f(v[0], v[1]); });
}

/// Reduces the values of x over `dims` (all when empty; negative counts from the end): f gets
/// the values of one output element in row-major order.
inline Tensor reduce(const Tensor& x, std::vector<int64_t> dims, bool keepdim,
                     const std::function<double(const std::vector<double>&)>& f) {
  const int64_t rank = x.shape().size();
  std::vector<bool> reduced(static_cast<size_t>(rank), dims.empty());
  for (int64_t d : dims) reduced[d < 0 ? d + rank : d] = true;
  Shape kept, out;
  for (int64_t d = 0; d < rank; ++d) {
    kept.push_back(reduced[d] ? 1 : x.shape()[d]);
    if (!reduced[d]) out.push_back(x.shape()[d]);
    else if (keepdim) out.push_back(1);
  }
  std::vector<std::vector<double>> groups(numel_of(kept));
  const std::vector<double> v = values(x);
  for (int64_t i = 0; i < int64_t(v.size()); ++i) groups[broadcast_index(coords(i, x.shape()), kept)].push_back(v[i]);
  std::vector<double> r;
  for (const auto& g : groups) r.push_back(f(g));
  return make(out, r);
}

/// Applies f to every line of x along `dim` (f maps the line's values to as many new values).
inline Tensor along(const Tensor& x, int64_t dim, const std::function<std::vector<double>(const std::vector<double>&)>& f) {
  const int64_t rank = x.shape().size();
  if (dim < 0) dim += rank;
  const Shape& s = x.shape();
  int64_t inner = 1;
  for (int64_t d = dim + 1; d < rank; ++d) inner *= s[d];
  const int64_t n = s[dim], outer = numel_of(s) / std::max<int64_t>(n * inner, 1);
  std::vector<double> v = values(x), line(n);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t j = 0; j < n; ++j) line[j] = v[(o * n + j) * inner + i];
      const std::vector<double> r = f(line);
      for (int64_t j = 0; j < n; ++j) v[(o * n + j) * inner + i] = r[j];
    }
  return make(s, v);
}

}  // namespace kirzl::testing::ref
