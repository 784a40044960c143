// Tensor metadata, autograd accessors and in-place copies (the in-place arithmetic, add_ and
// mul_, is an op: src/ops/tensor_inplace.cpp).
#include "kirzl/tensor.hpp"

#include <atomic>

#include "core/inplace_check.h"
#include "kernels/copy.h"
#include "kirzl/autograd.hpp"

namespace kirzl {

TensorImpl::TensorImpl() = default;
TensorImpl::~TensorImpl() = default;

void Tensor::check_defined_(const char* what) const {
  KIRZL_CHECK(impl_ != nullptr, what, ": called on an undefined tensor");
}

void Tensor::check_dtype_(DType expected, const char* what) const {
  check_defined_(what);
  KIRZL_CHECK(impl_->dtype == expected, what, ": tensor is ", describe(), " but ", dtype_name(expected), " was requested");
}

const Shape& Tensor::shape() const {
  check_defined_("shape");
  return impl_->shape;
}
const Shape& Tensor::strides() const {
  check_defined_("strides");
  return impl_->strides;
}
int64_t Tensor::offset() const {
  check_defined_("offset");
  return impl_->offset;
}
DType Tensor::dtype() const {
  check_defined_("dtype");
  return impl_->dtype;
}
Device Tensor::device() const {
  check_defined_("device");
  return impl_->storage.device();
}
const Storage& Tensor::storage() const {
  check_defined_("storage");
  return impl_->storage;
}

int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  KIRZL_CHECK(d >= -n && d < n, "size: dimension ", d, " is out of range for ", describe(), " (expected ", -n, " .. ", n - 1, ")");
  return impl_->shape[d < 0 ? d + n : d];
}

int64_t Tensor::stride(int64_t d) const {
  int64_t n = dim();
  KIRZL_CHECK(d >= -n && d < n, "stride: dimension ", d, " is out of range for ", describe());
  return impl_->strides[d < 0 ? d + n : d];
}

bool Tensor::is_contiguous() const {
  check_defined_("is_contiguous");
  // A tensor with no elements is contiguous whatever its strides (nothing can be out of order);
  // otherwise empty({2, 0, 3}), whose strides skip the zero-size dimension, would not be.
  if (impl_->shape.numel() == 0) return true;
  int64_t expected = 1;
  for (int64_t d = impl_->shape.size() - 1; d >= 0; --d) {
    if (impl_->shape[d] == 1) continue;
    if (impl_->strides[d] != expected) return false;
    expected *= impl_->shape[d];
  }
  return true;
}

void* Tensor::data_ptr() const {
  check_defined_("data_ptr");
  return static_cast<char*>(impl_->storage.data()) + impl_->offset * static_cast<int64_t>(dtype_size(impl_->dtype));
}

std::string Tensor::describe() const {
  if (!impl_) return "undefined tensor";
  return std::string(dtype_name(impl_->dtype)) + impl_->shape.str() + " on " + device().str();
}

// ---- in place ----

namespace detail {
void check_inplace(const Tensor& t, const char* op) {
  KIRZL_CHECK(t.defined(), op, ": called on an undefined tensor");
  KIRZL_CHECK(!(grad_enabled() && t.requires_grad() && t.is_leaf()), op, ": cannot modify ", t.describe(),
              " in place: it is a leaf that requires grad (wrap the update in kirzl::NoGradGuard)");
  KIRZL_CHECK(!(grad_enabled() && t.requires_grad()), op, ": in-place update of ", t.describe(),
              ", which is part of a recorded graph, is not supported (use the out-of-place op)");
}
}  // namespace detail

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::fill_(double value) {
  detail::check_inplace(*this, "fill_");
  kernels::fill(*this, value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  detail::check_inplace(*this, "copy_");
  KIRZL_CHECK(src.defined(), "copy_: source is undefined");
  broadcast_shapes(shape(), src.shape(), "copy_");
  KIRZL_CHECK(broadcast_shapes(shape(), src.shape(), "copy_") == shape(), "copy_: cannot broadcast source ",
              src.describe(), " to destination ", describe());
  Tensor s = src.device() == device() ? src : src.contiguous().to(device());
  kernels::copy(*this, s);
  return *this;
}

void Tensor::set_data(const Tensor& src) {
  check_defined_("set_data");
  KIRZL_CHECK(src.defined(), "set_data: source is undefined");
  KIRZL_CHECK(is_leaf(), "set_data: ", describe(), " is not a leaf");
  KIRZL_CHECK(!requires_grad() || is_floating(src.dtype()), "set_data: ", describe(),
              " requires grad, so its data must stay floating (got ", src.describe(), ")");
  Tensor old_grad = grad();
  impl_->storage = src.impl_->storage;
  impl_->shape = src.impl_->shape;
  impl_->strides = src.impl_->strides;
  impl_->offset = src.impl_->offset;
  impl_->dtype = src.impl_->dtype;
  if (old_grad.defined()) {
    NoGradGuard g;
    Tensor ng = old_grad.to(src.dtype());
    if (ng.device() != src.device()) ng = ng.to(src.device());
    impl_->autograd->grad = ng.shape() == shape() ? ng : Tensor();
  }
}

// ---- autograd accessors ----

autograd::AutogradMeta* Tensor::autograd_meta() const { return impl_ ? impl_->autograd.get() : nullptr; }

autograd::AutogradMeta& Tensor::ensure_autograd_meta() const {
  check_defined_("autograd");
  if (!impl_->autograd) impl_->autograd = std::make_unique<autograd::AutogradMeta>();
  return *impl_->autograd;
}

bool Tensor::requires_grad() const {
  auto* m = autograd_meta();
  return m && m->requires_grad;
}

Tensor& Tensor::requires_grad_(bool enabled) {
  check_defined_("requires_grad_");
  KIRZL_CHECK(is_leaf(), "requires_grad_: only leaves can change requires_grad (", describe(),
              " was produced by '", grad_fn()->name(), "'; use detach() first)");
  KIRZL_CHECK(!enabled || is_floating(dtype()), "requires_grad_: only floating tensors can require grad, got ", describe());
  ensure_autograd_meta().requires_grad = enabled;
  return *this;
}

Tensor Tensor::grad() const {
  auto* m = autograd_meta();
  return m ? m->grad : Tensor();
}

void Tensor::set_grad(const Tensor& g) {
  check_defined_("set_grad");
  if (g.defined()) {
    const char* what = g.device() != device() ? " is on another device than the tensor "
                       : g.dtype() != dtype()   ? " has another dtype than the tensor "
                                                : " has another shape than the tensor ";
    KIRZL_CHECK(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(), "set_grad: gradient ",
                g.describe(), what, describe(), " (it must match the tensor's shape, dtype and device; it does not "
                "match)");
  }
  ensure_autograd_meta().grad = g;
}

bool Tensor::is_leaf() const {
  auto* m = autograd_meta();
  return !m || !m->grad_fn;
}

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  auto* m = autograd_meta();
  return m ? m->grad_fn : nullptr;
}

uint32_t Tensor::output_nr() const {
  auto* m = autograd_meta();
  return m ? m->output_nr : 0;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  check_defined_("backward");
  autograd::backward({*this}, {gradient}, retain_graph);
}

Tensor Tensor::detach() const {
  check_defined_("detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

namespace {
std::atomic<uint64_t> next_hook_handle{1};
}

uint64_t Tensor::register_hook(GradHook hook) const {
  check_defined_("register_hook");
  KIRZL_CHECK(requires_grad(), "register_hook: ", describe(), " does not require grad, so no gradient will reach the hook");
  uint64_t h = next_hook_handle++;
  if (is_leaf()) {
    // Kept on the tensor: a leaf's accumulator node is created per graph and may not outlive it.
    ensure_autograd_meta().leaf_grad_hooks.emplace_back(h, std::move(hook));
    return h;
  }
  auto edge = autograd::gradient_edge(*this);
  edge.fn->pre_hooks(edge.input_nr).emplace_back(h, std::move(hook));
  return h;
}

uint64_t Tensor::register_post_accumulate_grad_hook(PostAccumulateGradHook hook) const {
  check_defined_("register_post_accumulate_grad_hook");
  KIRZL_CHECK(is_leaf(), "register_post_accumulate_grad_hook: ", describe(), " is not a leaf (produced by '",
              grad_fn()->name(), "'); only leaves accumulate .grad");
  KIRZL_CHECK(requires_grad(), "register_post_accumulate_grad_hook: ", describe(), " does not require grad");
  uint64_t h = next_hook_handle++;
  ensure_autograd_meta().post_accumulate_hooks.emplace_back(h, std::move(hook));
  return h;
}

bool Tensor::remove_hook(uint64_t handle) const {
  auto* m = autograd_meta();
  if (!m) return false;
  auto& post = m->post_accumulate_hooks;
  for (auto it = post.begin(); it != post.end(); ++it)
    if (it->first == handle) {
      post.erase(it);
      return true;
    }
  for (auto* hooks : {&m->leaf_grad_hooks}) {
    for (auto it = hooks->begin(); it != hooks->end(); ++it)
      if (it->first == handle) {
        hooks->erase(it);
        return true;
      }
  }
  if (!requires_grad() || is_leaf()) return false;
  auto edge = autograd::gradient_edge(*this);
  auto& pre = edge.fn->pre_hooks(edge.input_nr);
  for (auto it = pre.begin(); it != pre.end(); ++it)
    if (it->first == handle) {
      pre.erase(it);
      return true;
    }
  return false;
}

}  // namespace kirzl
