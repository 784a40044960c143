// Internal: pinned host buffers through which the MPI backend moves CUDA tensors
// (Note [mpi cuda staging] in mpi_communicator.cpp). Implemented in comm/host_staging.cpp over the
// core's CUDA runtime calls; without CUDA no CUDA tensor can exist, and every call but abandon()
// throws Error{Unsupported}.
#pragma once

#include <cstddef>

#include "kirzl/tensor.hpp"

namespace kirzl::comm::detail {

/// One growing pinned (page-locked) host buffer, reused by every collective of a communicator.
/// Used by one thread at a time (the communicator's executor).
class HostStaging {
 public:
  HostStaging() = default;
  ~HostStaging();
  HostStaging(const HostStaging&) = delete;
  HostStaging& operator=(const HostStaging&) = delete;

  /// At least `bytes` of pinned host memory (contents undefined); grows, never shrinks.
  void* reserve(size_t bytes);
  /// Copies contiguous CUDA tensor `src` to `dst` (host): an async copy on the calling thread's
  /// current stream of src's device, then a wait for that stream.
  static void to_host(void* dst, const Tensor& src);
  /// Copies host `src` into contiguous CUDA tensor `dst`, likewise.
  static void to_device(Tensor& dst, const void* src);
  /// Blocks until the work queued on the calling thread's current stream of `device` has finished.
  static void sync_current_stream(int device);
  /// Replaces the CUDA ones of `out` and `in` by host tensors in this buffer ([out | in]), copying
  /// `in`, and `out` too when `reads_out` (an in-place collective). Returns whether any was CUDA.
  bool stage(Tensor& out, Tensor& in, bool reads_out);
  /// Gives the buffer up without freeing it (MPI may still write into it after a timeout).
  void abandon();

 private:
  void* ptr_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace kirzl::comm::detail
