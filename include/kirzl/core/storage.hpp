// Storage: a reference-counted block of device or host memory shared by a tensor and its views.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "kirzl/core/device.hpp"
#include "kirzl/core/stream.hpp"

namespace kirzl {

/// Returns memory to whoever owns it; called once when the last reference goes away.
using Deleter = std::function<void(void*)>;

/// Reference-counted memory. Copies share the block; the block is freed (through its allocator or
/// deleter) when the last copy is destroyed. Copying is thread-safe; the bytes are not guarded.
class Storage {
 public:
  Storage() = default;
  /// New uninitialised memory: 64-byte aligned on the CPU; for CUDA:n from the caching device
  /// allocator, for use on the calling thread's current stream of that device (Note [cuda caching
  /// allocator]: when the last reference dies the block is reused by that stream at once, so
  /// work queued on other streams must be declared with record_stream).
  static Storage allocate(size_t nbytes, Device device);
  /// New uninitialised page-locked host memory (device CPU) from the caching pinned allocator:
  /// host<->device copies from/to it run at full bandwidth and can be asynchronous. Throws
  /// Error{Unsupported} when kirzl was built without CUDA or no GPU is present.
  static Storage allocate_pinned(size_t nbytes);
  /// Wraps memory kirzl does not own. `deleter` (may be empty) runs when the last reference dies.
  static Storage from_blob(void* data, size_t nbytes, Device device, Deleter deleter = {});

  /// False for a default-constructed Storage (no block); the accessors below then return
  /// nullptr, 0 and the CPU.
  bool defined() const { return impl_ != nullptr; }
  /// Start of the block: a host pointer for the CPU, a device pointer for CUDA (not dereferenceable
  /// on the host). Owned by the Storage: valid while any copy of it lives. nullptr when undefined
  /// (and possibly for 0 bytes on CUDA).
  void* data() const;
  /// Size of the block in bytes, as allocated or wrapped (0 when undefined).
  size_t nbytes() const;
  /// Where the block lives (pinned host memory is Device::cpu()); the CPU when undefined.
  Device device() const;
  /// Number of Storage handles sharing the block (tensors and their views).
  long use_count() const { return impl_.use_count(); }
  /// Identity of the shared block, for "do these alias?" checks.
  const void* id() const { return impl_.get(); }
  /// True for page-locked host memory: from allocate_pinned(), or a from_blob() pointer that CUDA
  /// reports as pinned. Never throws; false without CUDA.
  bool is_pinned() const;
  /// Declares that work queued on `stream` so far uses this memory (a kernel or copy on a stream
  /// other than the one it was allocated on). When the last reference dies, the block is reused
  /// only after that work has completed (an event, never a host wait). Call it after queueing the
  /// work and before dropping the storage. Applies to memory from allocate() on a CUDA device and
  /// from allocate_pinned(); a no-op for other memory (CPU, from_blob). Thread-safe.
  void record_stream(const cuda::Stream& stream) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Copies `nbytes` between any two devices (host<->device, device<->device, host<->host) on the
/// calling thread's current stream(s). Copies that involve the host return with the bytes at
/// `dst`; a copy within one CUDA device is ordered on its current stream like a kernel (later work
/// on that stream sees the bytes); a copy between two CUDA devices returns with the bytes in place.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

}  // namespace kirzl
