// Storage: a reference-counted block of device or host memory shared by a tensor and its views.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "kirzl/core/device.hpp"

namespace kirzl {

/// Returns memory to whoever owns it; called once when the last reference goes away.
using Deleter = std::function<void(void*)>;

/// Reference-counted memory. Copies share the block; the block is freed (through its allocator or
/// deleter) when the last copy is destroyed. Copying is thread-safe; the bytes are not guarded.
class Storage {
 public:
  Storage() = default;
  /// New uninitialised memory: 64-byte aligned on the CPU; from the CUDA allocator for CUDA:n.
  static Storage allocate(size_t nbytes, Device device);
  /// Wraps memory kirzl does not own. `deleter` (may be empty) runs when the last reference dies.
  static Storage from_blob(void* data, size_t nbytes, Device device, Deleter deleter = {});

  bool defined() const { return impl_ != nullptr; }
  void* data() const;
  size_t nbytes() const;
  Device device() const;
  /// Number of Storage handles sharing the block (tensors and their views).
  long use_count() const { return impl_.use_count(); }
  /// Identity of the shared block, for "do these alias?" checks.
  const void* id() const { return impl_.get(); }

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Copies `nbytes` between any two devices (host<->device, device<->device, host<->host).
/// Synchronous: on return the bytes are at `dst`.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

}  // namespace kirzl
