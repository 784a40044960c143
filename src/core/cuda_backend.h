// Internal: the seam between the core and its CUDA runtime. Every CUDA entry point of the core
// (core/cuda_runtime.h, kirzl/core/cuda.hpp, kirzl/core/stream.hpp) is defined once, in code
// compiled in every build, and reaches the CUDA runtime through the Backend below. Its methods do
// the CUDA work of the entry point of the same name; the entry points have checked what they can
// without CUDA first (an empty Stream, a device index against device_count()), so each check and
// each message is written once. Stream and event handles are cudaStream_t and cudaEvent_t as
// void*, so this header, like the public ones, includes no CUDA header.
//
// Note [cuda backend]: a build with CUDA compiles src/core/cuda/, whose CudaBackend implements
// Backend with the CUDA runtime; a build without CUDA does not, and has no Backend at all. The
// entry points ask for it through require_backend(what), the one place that throws the
// Error{Unsupported} "<what>: kirzl was built without CUDA ..." (as the dispatch table does for
// kernels, Note [kernel registration]); the few that have an answer without CUDA (device_count()
// is 0, nothing is pinned, freeing nothing does nothing) use backend() and its nullptr instead.
// Which backend exists is decided by CMake (it compiles src/core/cuda/ or not) plus one #if in
// core/cuda_api.cpp, the one place that names the CUDA backend. No file of the core stands in for
// CUDA when it is missing.
#pragma once

#include <cstddef>
#include <optional>

#include "core/cuda_runtime.h"
#include "kirzl/core/cuda.hpp"
#include "kirzl/core/cuda_graph.hpp"

namespace kirzl::cuda_rt {

/// A captured graph: cudaGraph_t and cudaGraphExec_t as void*.
struct GraphHandles {
  void* graph = nullptr;
  void* exec = nullptr;
};

/// The CUDA runtime behind the core's CUDA entry points. Stateless (the state it manages, such as
/// the allocators and the current streams, lives in src/core/cuda/); thread-safe as they are.
class Backend {
 public:
  virtual ~Backend() = default;

  /// CUDA devices this process can use (0 without a driver or a GPU). Never throws.
  virtual int device_count() const noexcept = 0;

  // ---- memory (core/cuda_runtime.h); device indices are checked by the entry points ----
  virtual void* malloc(size_t nbytes, int device) = 0;
  virtual void free(void* ptr, int device) noexcept = 0;
  virtual bool record_stream(void* ptr, int device, void* stream, int stream_device) = 0;
  virtual void* malloc_pinned(size_t nbytes) = 0;
  virtual void free_pinned(void* ptr) noexcept = 0;
  virtual bool record_pinned_use(void* ptr, int device, void* stream) = 0;
  virtual void forget_stream(void* stream, int device) noexcept = 0;
  virtual bool is_pinned_pointer(const void* ptr) noexcept = 0;

  // ---- copies, the current stream, fill and cast (core/cuda_runtime.h) ----
  virtual void memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) = 0;
  virtual void memcpy_async(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) = 0;
  virtual void memcpy_peer(void* dst, int dst_device, const void* src, int src_device, size_t nbytes,
                           bool blocking) = 0;
  virtual void* current_stream_handle(int device) = 0;
  virtual void sync_current_stream_unchecked(int device) = 0;
  /// Checks `device` itself after an empty fill returned (cuda_rt::fill).
  virtual void fill(void* dst, DType dtype, size_t count, double value, int device) = 0;
  /// Checks `device` itself after an empty cast returned (cuda_rt::cast).
  virtual void cast(void* dst, DType dst_dtype, const void* src, DType src_dtype, size_t count, int device) = 0;

  // ---- the deferred index check (Note [deferred index check]) ----
  virtual IndexErrorSlot index_error_slot(int device) = 0;
  virtual void throw_if_index_error(int device) = 0;

  // ---- devices (kirzl/core/cuda.hpp) ----
  virtual void set_device(int device) = 0;
  virtual int current_device() = 0;
  virtual void synchronize(int device) = 0;
  virtual cuda::DeviceProperties device_properties(int device) = 0;
  virtual cuda::MemoryStats memory_stats(int device) = 0;
  virtual void reset_peak_memory_stats(int device) = 0;
  virtual void empty_cache() = 0;
  virtual cuda::MemoryStats host_memory_stats() = 0;
  virtual void empty_host_cache() = 0;
  virtual cuda::MemInfo mem_get_info(int device) = 0;

  // ---- streams and events (kirzl/core/stream.hpp) ----
  /// A new non-blocking stream on `device` with `priority` clamped to the device's range.
  virtual void* create_stream(int device, int priority) = 0;
  /// Waits for the stream's work, makes the allocators forget it, and destroys it.
  virtual void destroy_stream(void* stream, int device) noexcept = 0;
  /// The handles of the legacy and the per-thread default streams (cudaStreamLegacy, ...PerThread).
  virtual void* legacy_default_stream() const noexcept = 0;
  virtual void* per_thread_default_stream() const noexcept = 0;
  virtual int stream_priority(void* stream, int device) = 0;
  /// cudaStreamSynchronize, then the deferred index check of `device`.
  virtual void stream_synchronize(void* stream, int device) = 0;
  virtual bool stream_query(void* stream, int device) = 0;
  virtual void stream_wait_event(void* stream, int device, void* event) = 0;
  /// Makes `stream` the calling thread's current stream on `device`; returns the previous one.
  virtual void* exchange_current_stream(int device, void* stream) = 0;
  virtual void* create_event(int device, bool timing) = 0;
  virtual void destroy_event(void* event) noexcept = 0;
  virtual void record_event(void* event, void* stream, int device) = 0;
  /// cudaEventSynchronize, then the deferred index check of `device`.
  virtual void event_synchronize(void* event, int device) = 0;
  virtual bool event_query(void* event) = 0;
  virtual float event_elapsed_ms(void* start, void* end) = 0;
  /// For the profiler (Note [profiler]): the milliseconds from timing event `start` to `end`
  /// (recorded in that order on one stream), once `end` has completed; with `wait` it waits for
  /// that (cudaEventSynchronize), without it returns nullopt while `end` has not (cudaEventQuery).
  /// Unlike event_synchronize it reads no deferred index error (that error stays for the user's
  /// own next synchronisation), and it runs in Relaxed capture mode (Note [relaxed capture mode]):
  /// the events are outside every graph, so waiting for them invalidates no capture of this
  /// thread or another.
  virtual std::optional<float> timing_interval_ms(void* start, void* end, bool wait) = 0;

  // ---- CUDA graphs (kirzl/core/cuda_graph.hpp, Note [cuda graph capture]) ----
  /// Whether `stream` of `device` is being captured (cudaStreamIsCapturing).
  virtual bool stream_capturing(void* stream, int device) = 0;
  /// Starts capturing `stream` in `mode`, with `stream` as the private allocator pool of the
  /// calling thread (Note [cuda graph memory]).
  virtual void begin_capture(void* stream, int device, cuda::CaptureMode mode) = 0;
  /// Ends the capture of `stream` and instantiates the graph. When CUDA reports the capture
  /// invalid, or instantiation fails, the graph is discarded, the pool released, and it throws.
  virtual GraphHandles end_capture(void* stream, int device) = 0;
  /// Ends a capture whose step failed, discards what it captured and releases the pool.
  virtual void abort_capture(void* stream, int device) noexcept = 0;
  /// cudaGraphLaunch of `exec` on `stream`.
  virtual void launch_graph(void* exec, void* stream, int device) = 0;
  /// Destroys the graph (its launches have completed) and releases the pool of `pool_stream`.
  virtual void destroy_graph(GraphHandles graph, void* pool_stream, int device) noexcept = 0;
};

/// This build's CUDA backend, or nullptr when kirzl was built without CUDA. Never throws.
Backend* backend() noexcept;
/// This build's CUDA backend; without CUDA, Error{Unsupported} "<what>: kirzl was built without
/// CUDA ..." (Note [cuda backend]).
Backend& require_backend(const char* what);

}  // namespace kirzl::cuda_rt
