#include "ops/op_utils.h"

namespace kirzl::ops {

void check_defined(const char* op, const Tensor& t, const char* name) {
  KIRZL_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
}

void check_floating(const char* op, const Tensor& t, const char* name) {
  check_defined(op, t, name);
  KIRZL_CHECK(is_floating(t.dtype()), op, ": ", name, " must have a floating dtype (f32, f64, bf16, f16), got ", t.describe());
}

void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first) {
      first = t;
      continue;
    }
    KIRZL_CHECK(t->device() == first->device(), op, ": expected all tensors on one device, got ", first->describe(),
                " and ", t->describe());
  }
}

int64_t wrap_dim(const char* op, int64_t dim, int64_t ndim, const Tensor& t) {
  int64_t n = ndim == 0 ? 1 : ndim;  // a 0-d tensor accepts dim 0 / -1, as in PyTorch
  KIRZL_CHECK(dim >= -n && dim < n, op, ": dimension ", dim, " is out of range for ", t.describe(), " (expected ",
              -n, " .. ", n - 1, ")");
  return dim < 0 ? dim + n : dim;
}

std::string describe_all(std::initializer_list<std::pair<const char*, const Tensor*>> named) {
  std::string s;
  for (auto& [name, t] : named) {
    if (!s.empty()) s += ", ";
    s += std::string(name) + " " + (t ? t->describe() : "none");
  }
  return s;
}

}  // namespace kirzl::ops
