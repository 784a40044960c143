// kirzl::Tensor: an n-dimensional strided view of typed memory on a device, with autograd state.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "kirzl/core/device.hpp"
#include "kirzl/core/dtype.hpp"
#include "kirzl/core/error.hpp"
#include "kirzl/core/generator.hpp"
#include "kirzl/core/shape.hpp"
#include "kirzl/core/storage.hpp"

namespace kirzl {

namespace autograd {
class Node;
struct AutogradMeta;
}  // namespace autograd

class Tensor;

/// How to create a tensor: `kirzl::zeros({2, 3}, {.dtype = DType::f64, .requires_grad = true})`.
struct TensorOptions {
  DType dtype = DType::f32;  ///< element type
  Device device = Device::cpu();  ///< where the elements live
  bool requires_grad = false;  ///< make a leaf that autograd tracks (floating dtypes only)
};

/// Called with a gradient flowing into a tensor during backward; return a defined tensor to
/// replace the gradient, or an undefined Tensor() to keep it.
using GradHook = std::function<Tensor(const Tensor& grad)>;
/// Called on a leaf after its `.grad` has been accumulated in a backward pass.
using PostAccumulateGradHook = std::function<void(Tensor& leaf)>;

/// Internal state behind a Tensor handle. Users do not touch it.
struct TensorImpl {
  Storage storage;  ///< the shared, reference-counted memory
  Shape shape;  ///< extent of each dim
  Shape strides;  ///< step of each dim, in elements
  int64_t offset = 0;  ///< of element [0, ..., 0] in the storage, in elements
  DType dtype = DType::f32;  ///< element type
  std::unique_ptr<autograd::AutogradMeta> autograd;  ///< null until the tensor takes part in autograd
  TensorImpl();
  ~TensorImpl();
};

/// A tensor is a cheap, reference-counted handle: copying a Tensor makes a second handle to the
/// same data and autograd state (like a Python reference), never a copy of the elements. Views
/// (reshape of a contiguous tensor, slice, transpose, ...) share storage with their base: writes
/// through one are seen through the other. Use clone() for an independent copy.
///
/// Thread safety: distinct tensors may be used from distinct threads; one tensor must not be
/// mutated from two threads at once.
class Tensor {
 public:
  /// An undefined tensor (no storage); most operations on it throw.
  Tensor() = default;
  /// A handle to `impl` (internal: factories and ops make tensors).
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata ----
  /// False for Tensor(): no storage.
  bool defined() const { return impl_ != nullptr; }
  /// Extent of each dim.
  const Shape& shape() const;
  /// Step of each dim, in elements (a view may have any strides).
  const Shape& strides() const;
  /// Position of element [0, ..., 0] in the storage, in elements.
  int64_t offset() const;
  /// Number of dims (0 for a scalar).
  int64_t dim() const { return shape().size(); }
  /// Extent of dimension `d`; negative d counts from the end.
  int64_t size(int64_t d) const;
  /// Step of dim `d` in elements; negative d counts from the end.
  int64_t stride(int64_t d) const;
  /// Number of elements (1 for a scalar, 0 if any extent is 0).
  int64_t numel() const { return shape().numel(); }
  /// Element type.
  DType dtype() const;
  /// Where the elements live (CPU or cuda:n).
  Device device() const;
  /// Bytes per element.
  size_t element_size() const { return dtype_size(dtype()); }
  /// Bytes of the elements (numel() * element_size()).
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(); }
  /// True when the elements are dense in row-major order (strides of a fresh tensor).
  bool is_contiguous() const;
  /// The memory this tensor (and its views) refer to.
  const Storage& storage() const;
  /// Address of element [0, ..., 0] (storage data + offset).
  void* data_ptr() const;
  /// Typed pointer to element [0, ..., 0]; throws unless T matches dtype().
  template <typename T> T* data() const {
    check_dtype_(dtype_of<T>, "data<T>()");
    return static_cast<T*>(data_ptr());
  }
  /// "f32[2, 3] on cpu" — used in error messages.
  std::string describe() const;
  /// The state behind this handle (internal).
  TensorImpl* impl() const { return impl_.get(); }
  /// Number of handles to this tensor object (not counting views, which are other objects).
  long use_count() const { return impl_.use_count(); }
  /// True when both handles refer to the same tensor object (not merely equal values).
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

  // ---- views: share storage, record autograd ----
  /// Same elements in a new shape; one extent may be -1. Needs a viewable stride layout.
  Tensor view(const Shape& shape) const;
  /// view() when the layout allows it, else a contiguous copy.
  Tensor reshape(const Shape& shape) const;
  /// Elements start, start+step, ... < end along `dim` (negative start/end count from the end;
  /// both are clamped to the extent, as in Python slicing). step >= 1.
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  /// `length` elements from `start` along `dim`; throws when out of range.
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  /// Index `index` of `dim`, removing that dimension.
  Tensor select(int64_t dim, int64_t index) const;
  /// A view with dims dim0 and dim1 swapped.
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  /// Transpose of a 2-D tensor.
  Tensor t() const;
  /// A view with the dims reordered: dim i of the result is dim dims[i] of this.
  Tensor permute(const Shape& dims) const;
  /// Broadcasts size-1 dimensions (and new leading ones) to `shape` with stride 0; -1 keeps a size.
  Tensor expand(const Shape& shape) const;
  /// A view without the dims of extent 1.
  Tensor squeeze() const;
  /// A view without dim `dim` if its extent is 1 (else the same shape).
  Tensor squeeze(int64_t dim) const;
  /// A view with a new dim of extent 1 at `dim`.
  Tensor unsqueeze(int64_t dim) const;
  /// Dims start_dim..end_dim merged into one (a view when the strides allow, else a copy).
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // ---- copies and conversions ----
  /// This tensor when already contiguous, else a contiguous copy (differentiable).
  Tensor contiguous() const;
  /// A contiguous copy with its own storage (differentiable).
  Tensor clone() const;
  /// Converted copy (or this tensor when the dtype already matches). Differentiable between
  /// floating dtypes.
  Tensor to(DType dtype) const;
  /// Copy on another device (or this tensor when already there). Differentiable. The copy runs on
  /// the current stream (cuda::Stream::current) of the CUDA device involved; a non-contiguous
  /// source is made contiguous on its own device first.
  /// `non_blocking = false`: returns with the data in place. `non_blocking = true`: a copy from
  /// pinned host memory to a device, and a copy from a device to the host (the result is then
  /// pinned), are queued and the call returns at once; the caller must synchronise that stream
  /// (e.g. cuda::Stream::current(d).synchronize() or an Event) before reading the host result or
  /// writing the pinned source. Device work queued later on the stream is ordered after the copy.
  /// Copies from pageable host memory ignore the flag.
  Tensor to(Device device, bool non_blocking = false) const;
  /// A copy of this CPU tensor in page-locked (pinned) host memory, or this tensor when it is
  /// already pinned. Pinned memory makes host<->device copies faster and allows non_blocking ones.
  /// Throws Error{Unsupported} when kirzl was built without CUDA or no GPU is present, and
  /// Error{InvalidArgument} for a CUDA tensor. Not recorded by autograd.
  Tensor pin_memory() const;
  /// True when the tensor's memory is page-locked host memory (see pin_memory). Never throws.
  bool is_pinned() const;
  /// The single element as double; throws unless numel() == 1.
  double item() const;
  /// The single element converted to T.
  template <typename T> T item() const { return static_cast<T>(item()); }
  /// All elements, converted to T, in row-major order (copies to the CPU if needed).
  template <typename T> std::vector<T> to_vector() const;

  // ---- in place (not recorded by autograd; throw on a leaf that requires grad while grad mode is on) ----
  /// Sets every element to 0.
  Tensor& zero_();
  /// Sets every element to `value` (converted to the dtype).
  Tensor& fill_(double value);
  /// Copies `src` (broadcast to this shape, any dtype/device) into this tensor.
  Tensor& copy_(const Tensor& src);
  /// this += alpha * other (other broadcast to this shape).
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  /// this *= value.
  Tensor& mul_(double value);
  /// Makes this tensor object refer to `src`'s data (storage, shape, strides, dtype, device),
  /// keeping its own autograd identity (requires_grad, hooks). Every handle to this tensor sees the
  /// change: Module::to() uses it so that parameters held elsewhere stay valid. A defined .grad is
  /// converted to the new dtype/device. Throws on a non-leaf.
  void set_data(const Tensor& src);

  // ---- autograd ----
  /// True when autograd tracks this tensor (a leaf marked with requires_grad_(), or an op result that depends on one).
  bool requires_grad() const;
  /// Marks a leaf as needing a gradient. Throws on a non-leaf or a non-floating tensor.
  Tensor& requires_grad_(bool enabled = true);
  /// The accumulated gradient of a leaf (undefined before the first backward).
  Tensor grad() const;
  /// Replaces the gradient (e.g. with a view into a bucket); shape, dtype and device must match.
  void set_grad(const Tensor& grad);
  /// A leaf: created by the user, not by an op that recorded a graph.
  bool is_leaf() const;
  /// The node that produced this tensor, or nullptr for leaves.
  std::shared_ptr<autograd::Node> grad_fn() const;
  /// Which output of grad_fn() this tensor is.
  uint32_t output_nr() const;
  /// Runs backward from this tensor. Without `gradient` the tensor must hold one element.
  /// The graph is freed afterwards unless retain_graph is true.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  /// Same data, no autograd history, requires_grad false.
  Tensor detach() const;
  /// Registers a hook on the gradient that flows into this tensor; returns its handle.
  uint64_t register_hook(GradHook hook) const;
  /// Registers a hook run after this leaf's .grad is accumulated (the data-parallel reducer's
  /// trigger); returns its handle. Throws on a non-leaf.
  uint64_t register_post_accumulate_grad_hook(PostAccumulateGradHook hook) const;
  /// Removes a hook registered on this tensor; returns false if the handle was not found.
  bool remove_hook(uint64_t handle) const;

  /// The numpy-like printout used by operator<<.
  std::string str() const;

  // Internal helpers.
  /// The autograd state, or null when none was made (internal).
  autograd::AutogradMeta* autograd_meta() const;
  /// The autograd state, made on first use (internal).
  autograd::AutogradMeta& ensure_autograd_meta() const;

 private:
  void check_defined_(const char* what) const;
  void check_dtype_(DType expected, const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- factories ----
/// Uninitialised memory.
Tensor empty(const Shape& shape, const TensorOptions& options = {});
Tensor zeros(const Shape& shape, const TensorOptions& options = {});
Tensor ones(const Shape& shape, const TensorOptions& options = {});
Tensor full(const Shape& shape, double value, const TensorOptions& options = {});
Tensor zeros_like(const Tensor& t, bool requires_grad = false);
Tensor ones_like(const Tensor& t, bool requires_grad = false);
Tensor empty_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
/// [start, end) with `step`; dtype i64 unless options say otherwise.
Tensor arange(double start, double end, double step = 1.0, const TensorOptions& options = {.dtype = DType::i64});
Tensor arange(int64_t end, const TensorOptions& options = {.dtype = DType::i64});
/// Uniform in [low, high).
Tensor rand(const Shape& shape, const TensorOptions& options = {}, Generator* gen = nullptr);
Tensor uniform(const Shape& shape, double low, double high, const TensorOptions& options = {}, Generator* gen = nullptr);
/// Normal(mean, std).
Tensor randn(const Shape& shape, const TensorOptions& options = {}, Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean, double std, const TensorOptions& options = {}, Generator* gen = nullptr);
/// Uniform integers in [low, high); dtype i64 unless options say otherwise.
Tensor randint(int64_t low, int64_t high, const Shape& shape, const TensorOptions& options = {.dtype = DType::i64},
               Generator* gen = nullptr);
/// A permutation of 0..n-1 (i64).
Tensor randperm(int64_t n, Generator* gen = nullptr);
/// Copies `values` into a new tensor of `shape` (default: 1-D). The dtype is T's unless
/// options.dtype differs, in which case values are converted.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, const TensorOptions& options);
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  return from_vector(values, shape, TensorOptions{.dtype = dtype_of<T>});
}
template <typename T>
Tensor from_vector(const std::vector<T>& values) {
  return from_vector(values, Shape{static_cast<int64_t>(values.size())});
}
/// Wraps existing memory without copying. kirzl never frees it unless `deleter` is given (called
/// when the last view dies). Default strides: contiguous. The caller keeps the memory alive and
/// must not free it while any view exists.
Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device = Device::cpu(), Deleter deleter = {});
Tensor from_blob(void* data, const Shape& shape, const Shape& strides, DType dtype, Device device = Device::cpu(),
                 Deleter deleter = {});
/// A 0-d tensor holding `value`.
Tensor scalar_tensor(double value, const TensorOptions& options = {});

/// Options describing `t` (dtype, device; requires_grad false).
inline TensorOptions options_of(const Tensor& t) { return {.dtype = t.dtype(), .device = t.device()}; }

}  // namespace kirzl
