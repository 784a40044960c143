// Internal: the CUDA runtime calls the core needs. Defined in every build (core/cuda_api.cpp):
// with CUDA they run the CUDA backend of src/core/cuda/, without it the ones that need CUDA throw
// Error{Unsupported} naming the call (Note [cuda backend] in core/cuda_backend.h).
// Every copy runs on the calling thread's current stream of the device involved
// (cuda_rt::current_stream, Note [current stream]).
#pragma once

#include <cstddef>

#include "core/index_error.h"
#include "kirzl/core/dtype.hpp"

namespace kirzl::cuda_rt {

class Backend;

/// Throws Error{Unsupported} naming `what` unless kirzl was built with CUDA and a CUDA device
/// exists, and Error{InvalidArgument} unless CUDA device `index` is one of them. Returns the
/// backend (core/cuda_backend.h).
Backend& require_device(int index, const char* what);
/// Throws Error{Unsupported} naming `what` unless kirzl was built with CUDA and at least one CUDA
/// device exists. Returns the backend.
Backend& require_any_device(const char* what);

/// Device memory from the caching allocator of `device`, for use on its current stream
/// (Note [cuda caching allocator]).
void* malloc(size_t nbytes, int device);
/// Never throws (runs in destructors); a failure is reported once to stderr.
void free(void* ptr, int device) noexcept;
/// The block at `ptr` (from malloc on `device`) is also used by `stream` (a cudaStream_t of
/// `stream_device`): its reuse waits for the work queued there up to the free. Returns false if
/// `ptr` is not such a block.
bool record_stream(void* ptr, int device, void* stream, int stream_device);

/// Page-locked host memory from the caching pinned allocator; `what` names the caller in errors.
void* malloc_pinned(size_t nbytes, const char* what);
void free_pinned(void* ptr) noexcept;
/// The pinned block at `ptr` is used by `stream` (a cudaStream_t) of `device`, typically by an
/// asynchronous copy: it is reused only after that work completes. False if not such a block.
bool record_pinned_use(void* ptr, int device, void* stream);
// Called by cuda::Stream's destructor once the stream's work has completed: the device and pinned
// allocators drop their record_stream uses of it (CachingAllocator::forget_stream), so freeing a
// block later never records an event on the destroyed handle.
void forget_stream(void* stream, int device) noexcept;
/// True when `ptr` is page-locked host memory (ours, or registered / allocated elsewhere).
/// Never throws; false without CUDA or without a GPU.
bool is_pinned_pointer(const void* ptr) noexcept;

enum class CopyKind { HostToDevice, DeviceToHost, DeviceToDevice };
/// Copy on the current stream of `device` (for DeviceToDevice both pointers are on `device`).
/// Copies that touch host memory return with the bytes in place; DeviceToDevice is ordered on the
/// stream like a kernel and returns at once.
void memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device);
/// Like memcpy but never waits: the caller synchronises the stream before touching host memory
/// involved (truly asynchronous only when the host side is pinned).
void memcpy_async(void* dst, const void* src, size_t nbytes, CopyKind kind, int device);
/// Copies between two devices on the source device's current stream, ordered after the work
/// queued so far on both devices' current streams, with later work on the destination's current
/// stream ordered after it. `blocking`: return only when the bytes are in place.
void memcpy_peer(void* dst, int dst_device, const void* src, int src_device, size_t nbytes, bool blocking);
/// The current stream of `device` as void* (cudaStream_t).
void* current_stream_handle(int device);
/// Blocks until the work queued so far on the calling thread's current stream of `device` has
/// finished, without the index-error check of a synchronising point (Note [deferred index check]):
/// for threads that are not the user's, such as a communicator's executor, so that a bad index
/// is still reported to the user.
void sync_current_stream_unchecked(int device);

/// Throws Error{Unsupported} "<op>: cannot run inside CUDA graph capture ...: <why>" when the
/// calling thread's current stream of `device` is being captured (Note [cuda graph capture]).
/// Called by operations that cannot be captured, before their first CUDA call. Does nothing
/// without CUDA or without that device.
void check_not_capturing(int device, const char* op, const char* why);

/// Sets `count` contiguous elements of `dtype` at `dst` to `value`.
void fill(void* dst, DType dtype, size_t count, double value, int device);
/// Converts `count` contiguous elements between dtypes on one device.
void cast(void* dst, DType dst_dtype, const void* src, DType src_dtype, size_t count, int device);

/// Where the index check kernels of `device` publish a bad index (Note [deferred index check]):
/// the record as the device addresses it (mapped host memory) and the claim word (device memory,
/// 0 while no record is published), for publish_index_error. Created at the first call.
struct IndexErrorSlot {
  index_error::IndexErrorRecord* record = nullptr;
  int* claim = nullptr;
};
IndexErrorSlot index_error_slot(int device);
/// The check-at-sync hook of `device`: throws Error{InvalidArgument} for a bad index published
/// there since the last call (and clears it). Called by every synchronising point of the runtime,
/// after it waited. Costs one host memory read when there is nothing to report; does nothing
/// before the first index check on `device` (and without CUDA).
void throw_if_index_error(int device);

}  // namespace kirzl::cuda_rt
