// Internal: the CUDA runtime's implementation of the core's Backend (Note [cuda backend] in
// core/cuda_backend.h). Its methods are defined next to the state they use: memory and copies in
// cuda_runtime.cpp, devices in device_api.cpp, streams and events in stream.cpp, graphs in cuda_graph.cpp, the index flags in
// index_error_flag.cpp, fill and cast in kernels/cuda/fill_cast.cu.
#pragma once

#include "core/cuda_backend.h"

namespace kirzl::cuda_rt {

class CudaBackend final : public Backend {
 public:
  int device_count() const noexcept override;

  void* malloc(size_t nbytes, int device) override;
  void free(void* ptr, int device) noexcept override;
  bool record_stream(void* ptr, int device, void* stream, int stream_device) override;
  void* malloc_pinned(size_t nbytes) override;
  void free_pinned(void* ptr) noexcept override;
  bool record_pinned_use(void* ptr, int device, void* stream) override;
  void forget_stream(void* stream, int device) noexcept override;
  bool is_pinned_pointer(const void* ptr) noexcept override;

  void memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) override;
  void memcpy_async(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) override;
  void memcpy_peer(void* dst, int dst_device, const void* src, int src_device, size_t nbytes,
                   bool blocking) override;
  void* current_stream_handle(int device) override;
  void sync_current_stream_unchecked(int device) override;
  void fill(void* dst, DType dtype, size_t count, double value, int device) override;
  void cast(void* dst, DType dst_dtype, const void* src, DType src_dtype, size_t count, int device) override;

  IndexErrorSlot index_error_slot(int device) override;
  void throw_if_index_error(int device) override;

  void set_device(int device) override;
  int current_device() override;
  void synchronize(int device) override;
  cuda::DeviceProperties device_properties(int device) override;
  cuda::MemoryStats memory_stats(int device) override;
  void reset_peak_memory_stats(int device) override;
  void empty_cache() override;
  cuda::MemoryStats host_memory_stats() override;
  void empty_host_cache() override;
  cuda::MemInfo mem_get_info(int device) override;

  void* create_stream(int device, int priority) override;
  void destroy_stream(void* stream, int device) noexcept override;
  void* legacy_default_stream() const noexcept override;
  void* per_thread_default_stream() const noexcept override;
  int stream_priority(void* stream, int device) override;
  void stream_synchronize(void* stream, int device) override;
  bool stream_query(void* stream, int device) override;
  void stream_wait_event(void* stream, int device, void* event) override;
  void* exchange_current_stream(int device, void* stream) override;
  void* create_event(int device, bool timing) override;
  void destroy_event(void* event) noexcept override;
  void record_event(void* event, void* stream, int device) override;
  void event_synchronize(void* event, int device) override;
  bool event_query(void* event) override;
  float event_elapsed_ms(void* start, void* end) override;
  std::optional<float> timing_interval_ms(void* start, void* end, bool wait) override;

  bool stream_capturing(void* stream, int device) override;
  void begin_capture(void* stream, int device, cuda::CaptureMode mode) override;
  GraphHandles end_capture(void* stream, int device) override;
  void abort_capture(void* stream, int device) noexcept override;
  void launch_graph(void* exec, void* stream, int device) override;
  void destroy_graph(GraphHandles graph, void* pool_stream, int device) noexcept override;
};

}  // namespace kirzl::cuda_rt
