// Internal: the kernel dispatch table. Each kernel is a stub, declared once in its op's kernel
// header with its function-pointer type; every backend registers its implementation in its own
// file; calling the stub runs the implementation for the device of its tensor arguments.
//
//   // kernels/layer_norm.h
//   KIRZL_DECLARE_KERNEL(layer_norm_forward, void (*)(Tensor& y, ..., double eps));
//   // kernels/cpu/layer_norm.cpp (and likewise kernels/cuda/layer_norm.cu)
//   void register_layer_norm_kernels() {
//     KIRZL_REGISTER_KERNEL(layer_norm_forward, DeviceType::CPU, &layer_norm_forward);
//   }
//   // an op
//   kernels::layer_norm_forward(y, mean, rstd, x, weight, bias, n, eps);
//
// Note [kernel registration]: kirzl is a static library by default, and a linker drops an object
// file of a static library that nothing references, static initialisers and all, so kernels that
// registered themselves from a static initialiser would silently vanish from programs linked
// against libkirzl.a (the fuzz tree and the install-consumer test are such programs). Registration
// is therefore explicit: each backend file defines a register_<file>_kernels() function, each
// backend's register_kernels.cpp (kernels/cpu/, kernels/cuda/) calls its files' functions, and
// ensure_kernels_registered() calls the backends' ones, exactly once (a function-local static),
// the first time any stub is looked up. Those calls reference every kernel file, so the linker
// keeps them all. Which backends exist is decided by CMake alone (it compiles kernels/cuda/ or
// not) plus one #if in dispatch_table.cpp. A stub holds one atomic function pointer per device
// type: written while the table is filled, read-only after, so lookups from any thread are safe
// without a lock. A missing registration is reported in one place (KernelStub::kernel): an
// Error{Unsupported} naming the kernel, the device and why (the build lacks the backend, or the
// library a kernel needs, such as cuDNN).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <utility>
#include <vector>

#include "core/profiler_hook.h"
#include "kirzl/core/device.hpp"
#include "kirzl/core/error.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::kernels {

/// Fills every stub of this build's backends, once; later calls return at once. Thread-safe.
void ensure_kernels_registered();

/// The names of the stubs that have at least one kernel in this build, in registration order,
/// each once (fills the table first). For tests that must cover every kernel (the profiler's
/// families).
std::vector<const char*> registered_kernel_names();

namespace dispatch_detail {

inline constexpr size_t kDeviceTypes = 2;  // DeviceType::CPU, DeviceType::CUDA

/// Throws the Error{Unsupported} of a stub with no kernel for `device`. See Note [kernel registration].
[[noreturn]] void throw_no_kernel(const char* kernel, DeviceType device, const char* requirement);
/// Throws the Error{Internal} of a second registration for the same stub and device type.
[[noreturn]] void throw_double_registration(const char* kernel, DeviceType device);
/// Throws the Error{Internal} of a stub called without a defined tensor to pick the device from.
[[noreturn]] void throw_no_tensor_argument(const char* kernel);
/// Adds a stub's name to registered_kernel_names() (once per name); called while the table is filled.
void note_registered(const char* kernel);

// The defined tensor an argument offers for picking the device, or nullptr. Overloads for other
// argument types holding tensors (e.g. OptimLists) sit next to those types and are found by ADL.
template <typename T>
const Tensor* tensor_in(const T&) {
  return nullptr;
}
inline const Tensor* tensor_in(const Tensor& t) { return t.defined() ? &t : nullptr; }
inline const Tensor* tensor_in(const std::vector<Tensor>& ts) {
  for (const Tensor& t : ts)
    if (t.defined()) return &t;
  return nullptr;
}

}  // namespace dispatch_detail

template <typename Fn>
class KernelStub;

/// One kernel's dispatch table: its implementation per device type. Constant-initialised, so a
/// stub can be used from any static initialiser; filled once (Note [kernel registration]).
template <typename R, typename... Args>
class KernelStub<R (*)(Args...)> {
 public:
  using Fn = R (*)(Args...);

  /// `name` names the kernel in errors. `requirement`, when not null, says what a build needs
  /// for a CUDA kernel of this stub beyond CUDA itself (e.g. "kirzl was built without cuDNN ...").
  constexpr explicit KernelStub(const char* name, const char* requirement = nullptr)
      : name_(name), requirement_(requirement) {}
  KernelStub(const KernelStub&) = delete;
  KernelStub& operator=(const KernelStub&) = delete;

  const char* name() const { return name_; }

  /// Registers `fn` as the kernel for `device`; Error{Internal} when one is registered already.
  void register_kernel(DeviceType device, Fn fn) {
    Fn expected = nullptr;
    if (!fns_[index(device)].compare_exchange_strong(expected, fn, std::memory_order_release))
      dispatch_detail::throw_double_registration(name_, device);
    dispatch_detail::note_registered(name_);
  }

  /// Whether a kernel for `device` is registered (after the table has been filled).
  bool has_kernel(DeviceType device) const { return lookup(device) != nullptr; }

  /// The kernel for `device`; Error{Unsupported} naming the kernel, the device and why when none
  /// is registered.
  Fn kernel(DeviceType device) const {
    Fn fn = lookup(device);
    if (fn == nullptr) dispatch_detail::throw_no_kernel(name_, device, requirement_);
    return fn;
  }

  /// Runs the kernel for the device of the first defined tensor among `args`.
  R operator()(Args... args) const {
    const Tensor* first = nullptr;
    ((first = first != nullptr ? first : tensor_in(args)), ...);
    if (first == nullptr) dispatch_detail::throw_no_tensor_argument(name_);
    const Device device = first->device();
    Fn fn = kernel(device.type());
    if (profiler::detail::t_recorder == nullptr) [[likely]]
      return fn(std::forward<Args>(args)...);
    profiler::detail::KernelScope timed(name_, device);  // Note [profiler]
    return fn(std::forward<Args>(args)...);
  }

 private:
  static size_t index(DeviceType device) { return static_cast<size_t>(device); }

  Fn lookup(DeviceType device) const {
    Fn fn = fns_[index(device)].load(std::memory_order_acquire);
    if (fn != nullptr) return fn;
    ensure_kernels_registered();
    return fns_[index(device)].load(std::memory_order_acquire);
  }

  // Brought into scope for the unqualified (ADL-enabled) calls in operator().
  template <typename T>
  static const Tensor* tensor_in(const T& arg) {
    using dispatch_detail::tensor_in;
    return tensor_in(arg);
  }

  const char* name_;
  const char* requirement_;
  std::array<std::atomic<Fn>, dispatch_detail::kDeviceTypes> fns_{};
};

}  // namespace kirzl::kernels

/// Declares (and defines: one inline variable) the stub `name` of function-pointer type `fn_type`
/// in namespace kirzl::kernels. Use at namespace scope there, in the op's kernel header.
/// (Variadic so that a type with commas, such as std::pair<Tensor, Tensor> (*)(...), needs no parentheses.)
#define KIRZL_DECLARE_KERNEL(name, ...) inline constinit ::kirzl::kernels::KernelStub<__VA_ARGS__> name{#name}

/// Like KIRZL_DECLARE_KERNEL, for a kernel whose CUDA implementation needs more than CUDA;
/// `requirement` is the reason an Unsupported error gives when that implementation is missing.
#define KIRZL_DECLARE_KERNEL_REQUIRING(name, requirement, ...) \
  inline constinit ::kirzl::kernels::KernelStub<__VA_ARGS__> name{#name, requirement}

/// Registers `fn` as stub `name`'s kernel for DeviceType `device`. Use inside a backend's
/// register_*_kernels() function (Note [kernel registration]).
#define KIRZL_REGISTER_KERNEL(name, device, fn) ::kirzl::kernels::name.register_kernel((device), (fn))
