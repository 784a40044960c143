// Views: new shape/strides/offset over the same storage, recorded by autograd.
#include <numeric>

#include "kernels/reduce.h"
#include "kirzl/autograd.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl {

namespace {

/// expand's gradient: g summed over the dims that expand broadcast, back to `shape`. Backward
/// formulas record nothing, so the reduction kernel is called directly (core does not use ops).
Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - shape.size();
  std::vector<bool> reduce(static_cast<size_t>(g.dim()), false);
  Shape kept;
  kept.resize(g.dim());
  int64_t n = 0;
  for (int64_t d = 0; d < g.dim(); ++d) {
    reduce[d] = d < lead || (shape[d - lead] == 1 && g.size(d) != 1);
    if (!reduce[d]) kept[n++] = g.size(d);
  }
  kept.resize(n);
  Tensor out = empty(kept, {.dtype = g.dtype(), .device = g.device()});
  kernels::sum(out, g, reduce);
  return out.reshape(shape);
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* op, const Tensor& t) {
  KIRZL_CHECK(d >= -ndim && d < ndim, op, ": dimension ", d, " is out of range for ", t.describe(), " (expected ",
              -ndim, " .. ", ndim - 1, ")");
  return d < 0 ? d + ndim : d;
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

Shape infer_shape(const Shape& requested, int64_t numel, const char* op, const Tensor& t) {
  Shape s = requested;
  int64_t infer = -1, known = 1;
  for (int64_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      KIRZL_CHECK(infer < 0, op, ": only one dimension can be -1, got ", requested.str());
      infer = i;
    } else {
      KIRZL_CHECK(s[i] >= 0, op, ": invalid extent ", s[i], " in ", requested.str());
      known *= s[i];
    }
  }
  if (infer >= 0) {
    KIRZL_CHECK(known != 0 && numel % known == 0, op, ": cannot reshape ", t.describe(), " (", numel,
                " elements) to ", requested.str());
    s[infer] = numel / known;
  }
  KIRZL_CHECK(s.numel() == numel, op, ": cannot reshape ", t.describe(), " (", numel, " elements) to ", requested.str(),
              " (", s.numel(), " elements)");
  return s;
}

// Strides for viewing `t` as `shape` without a copy, or false when the layout does not allow it.
bool view_strides(const Tensor& t, const Shape& shape, Shape& out) {
  if (t.is_contiguous()) {
    out = contiguous_strides(shape);
    return true;
  }
  // General case: match groups of old dims (which must be mutually contiguous) to groups of new dims.
  const Shape& os = t.shape();
  const Shape& ost = t.strides();
  out.resize(shape.size());
  int64_t oi = 0, ni = 0;
  const int64_t on = os.size(), nn = shape.size();
  while (oi < on || ni < nn) {
    // Skip size-1 dims on either side.
    if (oi < on && os[oi] == 1) { ++oi; continue; }
    if (ni < nn && shape[ni] == 1) { out[ni] = 1; ++ni; continue; }
    if (oi >= on || ni >= nn) return false;
    int64_t ochunk = os[oi], nchunk = shape[ni];
    int64_t ostart = oi, nstart = ni;
    while (ochunk != nchunk) {
      if (ochunk < nchunk) {
        ++oi;
        if (oi >= on) return false;
        ochunk *= os[oi];
      } else {
        ++ni;
        if (ni >= nn) return false;
        nchunk *= shape[ni];
      }
    }
    // Old dims ostart..oi must be contiguous among themselves (ignoring size-1 dims).
    for (int64_t d = ostart; d < oi; ++d) {
      int64_t next = d + 1;
      while (next <= oi && os[next] == 1) ++next;
      if (next > oi) break;
      if (os[d] != 1 && ost[d] != ost[next] * os[next]) return false;
    }
    int64_t stride = ost[oi];
    for (int64_t d = ni; d >= nstart; --d) {
      out[d] = stride;
      stride *= shape[d];
    }
    ++oi;
    ++ni;
  }
  return true;
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  check_defined_("view");
  Shape shape = infer_shape(requested, numel(), "view", *this);
  Shape strides;
  KIRZL_CHECK(view_strides(*this, shape, strides), "view: cannot view ", describe(), " with strides ",
              this->strides().str(), " as ", shape.str(), " without a copy (use reshape())");
  Tensor out = make_view(*this, shape, strides, offset());
  Shape in_shape = this->shape();
  autograd::record("view", out, {*this}, [in_shape](const autograd::GradContext& c) {
    return std::vector<Tensor>{c.grad().reshape(in_shape)};
  });
  return out;
}

Tensor Tensor::reshape(const Shape& requested) const {
  check_defined_("reshape");
  Shape shape = infer_shape(requested, numel(), "reshape", *this);
  Shape strides;
  if (view_strides(*this, shape, strides)) return view(shape);
  return contiguous().view(shape);
}

Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  check_defined_("slice");
  int64_t d = wrap_dim(dim, this->dim(), "slice", *this);
  KIRZL_CHECK(step >= 1, "slice: step must be >= 1, got ", step);
  int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] = strides()[d] * step;
  Tensor out = make_view(*this, s, st, offset() + start * strides()[d]);
  Shape in_shape = shape();
  DType dt = dtype();
  Device dev = device();
  autograd::record("slice", out, {*this}, [in_shape, dt, dev, d, start, end, step](const autograd::GradContext& c) {
    Tensor g = zeros(in_shape, {.dtype = dt, .device = dev});
    g.slice(d, start, end, step).copy_(c.grad());
    return std::vector<Tensor>{g};
  });
  return out;
}

Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  check_defined_("narrow");
  int64_t d = wrap_dim(dim, this->dim(), "narrow", *this);
  int64_t n = shape()[d];
  if (start < 0) start += n;
  KIRZL_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: range [", start, ", ", start + length,
              ") is out of bounds for dimension ", d, " of ", describe());
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t dim, int64_t index) const {
  check_defined_("select");
  int64_t d = wrap_dim(dim, this->dim(), "select", *this);
  int64_t n = shape()[d];
  KIRZL_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dimension ", d, " of ",
              describe(), " (expected ", -n, " .. ", n - 1, ")");
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  check_defined_("transpose");
  int64_t a = wrap_dim(dim0, dim(), "transpose", *this), b = wrap_dim(dim1, dim(), "transpose", *this);
  Shape s = shape(), st = strides();
  std::swap(s[a], s[b]);
  std::swap(st[a], st[b]);
  Tensor out = make_view(*this, s, st, offset());
  autograd::record("transpose", out, {*this}, [a, b](const autograd::GradContext& c) {
    return std::vector<Tensor>{c.grad().transpose(a, b)};
  });
  return out;
}

Tensor Tensor::t() const {
  KIRZL_CHECK(dim() == 2, "t: expected a 2-D tensor, got ", describe());
  return transpose(0, 1);
}

Tensor Tensor::permute(const Shape& dims) const {
  check_defined_("permute");
  KIRZL_CHECK(dims.size() == dim(), "permute: got ", dims.size(), " dimensions ", dims.str(), " for ", describe());
  Shape s, st, inverse;
  inverse.resize(dim(), -1);
  for (int64_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute", *this);
    KIRZL_CHECK(inverse[d] == -1, "permute: dimension ", d, " appears twice in ", dims.str());
    inverse[d] = i;
    s.push_back(shape()[d]);
    st.push_back(strides()[d]);
  }
  Tensor out = make_view(*this, s, st, offset());
  autograd::record("permute", out, {*this}, [inverse](const autograd::GradContext& c) {
    return std::vector<Tensor>{c.grad().permute(inverse)};
  });
  return out;
}

Tensor Tensor::expand(const Shape& target) const {
  check_defined_("expand");
  KIRZL_CHECK(target.size() >= dim(), "expand: target ", target.str(), " has fewer dimensions than ", describe());
  Shape s = target, st;
  st.resize(target.size(), 0);
  int64_t lead = target.size() - dim();
  for (int64_t i = 0; i < target.size(); ++i) {
    if (i < lead) {
      KIRZL_CHECK(target[i] >= 0, "expand: new leading dimension ", i, " needs an explicit size, got ", target[i]);
      continue;
    }
    int64_t own = shape()[i - lead];
    if (target[i] == -1 || target[i] == own) {
      s[i] = own;
      st[i] = strides()[i - lead];
    } else {
      KIRZL_CHECK(own == 1, "expand: cannot expand ", describe(), " to ", target.str(), " (dimension ", i,
                  " has extent ", own, ", expected 1 or ", target[i], ")");
      s[i] = target[i];
    }
  }
  Tensor out = make_view(*this, s, st, offset());
  Shape in_shape = shape();
  autograd::record("expand", out, {*this}, [in_shape](const autograd::GradContext& c) {
    return std::vector<Tensor>{sum_to_shape(c.grad(), in_shape)};
  });
  return out;
}

Tensor Tensor::squeeze() const {
  check_defined_("squeeze");
  Shape s;
  for (int64_t v : shape())
    if (v != 1) s.push_back(v);
  return reshape(s);
}

Tensor Tensor::squeeze(int64_t dim) const {
  check_defined_("squeeze");
  int64_t d = wrap_dim(dim, this->dim(), "squeeze", *this);
  if (shape()[d] != 1) return *this;
  Shape s = shape(), st = strides();
  s.erase(d);
  st.erase(d);
  Tensor out = make_view(*this, s, st, offset());
  Shape in_shape = shape();
  autograd::record("squeeze", out, {*this}, [in_shape](const autograd::GradContext& c) {
    return std::vector<Tensor>{c.grad().reshape(in_shape)};
  });
  return out;
}

Tensor Tensor::unsqueeze(int64_t dim) const {
  check_defined_("unsqueeze");
  int64_t d = wrap_dim(dim, this->dim() + 1, "unsqueeze", *this);
  Shape s = shape(), st = strides();
  int64_t stride = d < this->dim() ? strides()[d] * shape()[d] : 1;
  s.insert(d, 1);
  st.insert(d, stride);
  Tensor out = make_view(*this, s, st, offset());
  autograd::record("unsqueeze", out, {*this}, [d](const autograd::GradContext& c) {
    return std::vector<Tensor>{c.grad().squeeze(d)};
  });
  return out;
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  check_defined_("flatten");
  if (dim() == 0) return reshape({1});
  int64_t a = wrap_dim(start_dim, dim(), "flatten", *this), b = wrap_dim(end_dim, dim(), "flatten", *this);
  KIRZL_CHECK(a <= b, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim, " for ", describe());
  Shape s;
  for (int64_t i = 0; i < a; ++i) s.push_back(shape()[i]);
  int64_t prod = 1;
  for (int64_t i = a; i <= b; ++i) prod *= shape()[i];
  s.push_back(prod);
  for (int64_t i = b + 1; i < dim(); ++i) s.push_back(shape()[i]);
  return reshape(s);
}

}  // namespace kirzl
