// The CUDA runtime side of kirzl::cuda::Stream / Event / StreamGuard (CudaBackend methods; the
// classes themselves are in core/stream.cpp, Note [cuda backend]), and the per-thread current
// stream that every kirzl kernel launches on (cuda_rt::current_stream).
#include <cuda_runtime.h>

#include <algorithm>
#include <array>

#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "core/cuda/device_guard.h"
#include "core/cuda/relaxed_capture_mode.h"

namespace kirzl {
namespace {

// One slot per device; nullptr means the legacy default stream. Thread-local: a StreamGuard
// affects only the thread that made it (Note [current stream]).
constexpr int kMaxDevices = 64;
thread_local std::array<cudaStream_t, kMaxDevices> t_current_streams{};

cudaStream_t& current_slot(int device) {
  KIRZL_CHECK(device >= 0 && device < kMaxDevices, "cuda: device index ", device, " out of range");
  return t_current_streams[static_cast<size_t>(device)];
}

// cudaSuccess -> true, cudaErrorNotReady -> false, anything else throws.
bool ready(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return true;
  (void)cudaGetLastError();  // Note [cuda last error]; NotReady is not a failure, and not left behind either
  if (err == cudaErrorNotReady) return false;
  KIRZL_FAIL(ErrorCode::Cuda, what, " failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")");
}

}  // namespace

// Note [current stream]: kirzl keeps its own per-thread, per-device current stream instead of
// relying on CUDA's per-thread default stream (a compile flag that would change the semantics of
// every translation unit). The default is cudaStreamLegacy, which orders against every blocking
// stream and against synchronous cudaMemcpy, so code that never touches streams behaves as if
// everything ran in one queue.
cudaStream_t cuda_rt::current_stream(int device) {
  cudaStream_t s = current_slot(device);
  return s ? s : cudaStreamLegacy;
}

namespace cuda_rt {

void* CudaBackend::create_stream(int device, int priority) {
  DeviceGuard guard(device);
  int least = 0, greatest = 0;
  KIRZL_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  // CUDA: "greatest" priority is the numerically lowest value.
  int p = std::clamp(priority, greatest, least);
  cudaStream_t s = nullptr;
  KIRZL_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, p));
  return s;
}

void CudaBackend::destroy_stream(void* stream, int device) noexcept {
  // Wait for the queued work first: blocks freed on this stream went back to its free list at
  // once (Note [cuda caching allocator]), and a later stream may get the same handle value.
  DeviceGuard guard(device, std::nothrow);
  KIRZL_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  // Blocks that recorded this stream (Storage::record_stream) and are freed later must not
  // record an event on the destroyed handle: its uses are complete now.
  forget_stream(stream, device);
  KIRZL_CUDA_CHECK_NOTHROW(cudaStreamDestroy(static_cast<cudaStream_t>(stream)));
}

void* CudaBackend::legacy_default_stream() const noexcept { return cudaStreamLegacy; }

void* CudaBackend::per_thread_default_stream() const noexcept { return cudaStreamPerThread; }

int CudaBackend::stream_priority(void* stream, int device) {
  DeviceGuard guard(device);
  int p = 0;
  KIRZL_CUDA_CHECK(cudaStreamGetPriority(static_cast<cudaStream_t>(stream), &p));
  return p;
}

void CudaBackend::stream_synchronize(void* stream, int device) {
  check_not_capturing(device, "cuda::Stream::synchronize", "the host cannot wait for work that is being captured");
  DeviceGuard guard(device);  // cudaStreamLegacy means the current device's stream
  KIRZL_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  throw_if_index_error(device);  // Note [deferred index check]
}

bool CudaBackend::stream_query(void* stream, int device) {
  check_not_capturing(device, "cuda::Stream::query", "work that is being captured has no completion to query");
  DeviceGuard guard(device);
  return ready(cudaStreamQuery(static_cast<cudaStream_t>(stream)), "cudaStreamQuery");
}

void CudaBackend::stream_wait_event(void* stream, int device, void* event) {
  DeviceGuard guard(device);
  KIRZL_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0));
}

void* CudaBackend::exchange_current_stream(int device, void* stream) {
  cudaStream_t& slot = current_slot(device);
  void* previous = slot;
  slot = static_cast<cudaStream_t>(stream);
  return previous;
}

void* CudaBackend::create_event(int device, bool timing) {
  DeviceGuard guard(device);
  cudaEvent_t e = nullptr;
  KIRZL_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return e;
}

void CudaBackend::destroy_event(void* event) noexcept {
  // CUDA releases the event's resources once pending work that recorded it has completed.
  KIRZL_CUDA_CHECK_NOTHROW(cudaEventDestroy(static_cast<cudaEvent_t>(event)));
}

void CudaBackend::record_event(void* event, void* stream, int device) {
  DeviceGuard guard(device);
  KIRZL_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)));
}

void CudaBackend::event_synchronize(void* event, int device) {
  check_not_capturing(device, "cuda::Event::synchronize", "the host cannot wait for work that is being captured");
  KIRZL_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
  throw_if_index_error(device);  // Note [deferred index check]
}

bool CudaBackend::event_query(void* event) {
  return ready(cudaEventQuery(static_cast<cudaEvent_t>(event)), "cudaEventQuery");
}

float CudaBackend::event_elapsed_ms(void* start, void* end) {
  float ms = 0;
  KIRZL_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
  return ms;
}

std::optional<float> CudaBackend::timing_interval_ms(void* start, void* end, bool wait) {
  RelaxedCaptureMode relaxed;  // Note [relaxed capture mode]
  auto* e = static_cast<cudaEvent_t>(end);
  if (wait) KIRZL_CUDA_CHECK(cudaEventSynchronize(e));
  else if (!ready(cudaEventQuery(e), "cudaEventQuery")) return std::nullopt;
  return event_elapsed_ms(start, end);
}

}  // namespace cuda_rt
}  // namespace kirzl
