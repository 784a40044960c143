// kirzl::cuda::Stream / Event / StreamGuard over the CUDA runtime, and the per-thread current
// stream that every kirzl kernel launches on (cuda_rt::current_stream).
#include "kirzl/core/stream.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <array>

#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "core/cuda/device_guard.h"
#include "core/cuda_runtime.h"

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
  if (err == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
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

namespace cuda {

Stream::Stream(int device, int priority) {
  cuda_rt::require_device(device, "cuda::Stream");
  cuda_rt::DeviceGuard guard(device);
  int least = 0, greatest = 0;
  KIRZL_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  // CUDA: "greatest" priority is the numerically lowest value.
  int p = std::clamp(priority, greatest, least);
  cudaStream_t s = nullptr;
  KIRZL_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, p));
  device_ = device;
  handle_ = s;
  owned_ = true;
}

void Stream::reset_() noexcept {
  if (owned_ && handle_) {
    // Wait for the queued work first: blocks freed on this stream went back to its free list at
    // once (Note [cuda caching allocator]), and a later stream may get the same handle value.
    cuda_rt::DeviceGuard guard(device_, std::nothrow);
    KIRZL_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)));
    // Blocks that recorded this stream (Storage::record_stream) and are freed later must not
    // record an event on the destroyed handle: its uses are complete now.
    cuda_rt::forget_stream(handle_, device_);
    KIRZL_CUDA_CHECK_NOTHROW(cudaStreamDestroy(static_cast<cudaStream_t>(handle_)));
  }
  handle_ = nullptr;
  owned_ = false;
  device_ = -1;
}

Stream Stream::current(int device) {
  cuda_rt::require_device(device, "cuda::Stream::current");
  return Stream(device, cuda_rt::current_stream(device), false);
}

Stream Stream::legacy_default(int device) {
  cuda_rt::require_device(device, "cuda::Stream::legacy_default");
  return Stream(device, cudaStreamLegacy, false);
}

Stream Stream::per_thread_default(int device) {
  cuda_rt::require_device(device, "cuda::Stream::per_thread_default");
  return Stream(device, cudaStreamPerThread, false);
}

Stream Stream::from_native(int device, void* cuda_stream) {
  cuda_rt::require_device(device, "cuda::Stream::from_native");
  // The null stream (0) is the legacy default stream unless compiled with per-thread default
  // streams; store it as cudaStreamLegacy so that defined() stays true.
  return Stream(device, cuda_stream ? cuda_stream : cudaStreamLegacy, false);
}

bool Stream::is_legacy_default() const { return handle_ == static_cast<void*>(cudaStreamLegacy); }

bool Stream::is_per_thread_default() const { return handle_ == static_cast<void*>(cudaStreamPerThread); }

int Stream::priority() const {
  check_defined_("priority");
  cuda_rt::DeviceGuard guard(device_);
  int p = 0;
  KIRZL_CUDA_CHECK(cudaStreamGetPriority(static_cast<cudaStream_t>(handle_), &p));
  return p;
}

void Stream::synchronize() const {
  check_defined_("synchronize");
  cuda_rt::DeviceGuard guard(device_);  // cudaStreamLegacy means the current device's stream
  KIRZL_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)));
  cuda_rt::throw_if_index_error(device_);  // Note [deferred index check]
}

bool Stream::query() const {
  check_defined_("query");
  cuda_rt::DeviceGuard guard(device_);
  return ready(cudaStreamQuery(static_cast<cudaStream_t>(handle_)), "cudaStreamQuery");
}

void Stream::wait(const Event& event) const {
  check_defined_("wait");
  if (!event.recorded()) return;
  cuda_rt::DeviceGuard guard(device_);
  KIRZL_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(handle_), static_cast<cudaEvent_t>(event.native_handle()), 0));
}

void Stream::wait(const Stream& other) const {
  check_defined_("wait");
  KIRZL_CHECK(other.defined(), "cuda::Stream::wait: the Stream to wait for is empty (default-constructed or moved from)");
  if (other == *this) return;  // a stream is always ordered after its own earlier work
  // The event may be destroyed at once: cudaStreamWaitEvent waits for the work the event captured
  // when it was called, and CUDA releases the event after that work completes.
  Event e;
  e.record(other);
  wait(e);
}

StreamGuard::StreamGuard(const Stream& stream) : device_(stream.device()) {
  cudaStream_t& slot = current_slot(device_);
  previous_ = slot;
  slot = static_cast<cudaStream_t>(stream.native_handle());
}

StreamGuard::~StreamGuard() { current_slot(device_) = static_cast<cudaStream_t>(previous_); }

void Event::reset_() noexcept {
  if (handle_) {
    // CUDA releases the event's resources once pending work that recorded it has completed.
    KIRZL_CUDA_CHECK_NOTHROW(cudaEventDestroy(static_cast<cudaEvent_t>(handle_)));
  }
  handle_ = nullptr;
  recorded_ = false;
  device_ = -1;
}

void Event::record(const Stream& stream) {
  KIRZL_CHECK(stream.defined(), "cuda::Event::record: the Stream is empty");
  int device = stream.device();
  cuda_rt::DeviceGuard guard(device);
  if (!handle_) {
    cudaEvent_t e = nullptr;
    KIRZL_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing_ ? cudaEventDefault : cudaEventDisableTiming));
    handle_ = e;
    device_ = device;
  }
  KIRZL_CHECK(device == device_, "cuda::Event::record: the event belongs to cuda:", device_,
              " but the stream is on cuda:", device, " (use one Event per device)");
  KIRZL_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle_), static_cast<cudaStream_t>(stream.native_handle())));
  recorded_ = true;
}

void Event::synchronize() const {
  if (!recorded_) return;
  KIRZL_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_)));
  cuda_rt::throw_if_index_error(device_);  // Note [deferred index check]
}

bool Event::query() const {
  if (!recorded_) return true;
  return ready(cudaEventQuery(static_cast<cudaEvent_t>(handle_)), "cudaEventQuery");
}

float Event::elapsed_ms(const Event& start, const Event& end) {
  cuda_rt::require_any_device("cuda::Event::elapsed_ms");
  KIRZL_CHECK(start.timing_ && end.timing_,
              "cuda::Event::elapsed_ms: both events must be created with enable_timing = true (start: ",
              start.timing_ ? "timing" : "no timing", ", end: ", end.timing_ ? "timing" : "no timing", ")");
  KIRZL_CHECK(start.recorded_ && end.recorded_, "cuda::Event::elapsed_ms: both events must be recorded first (start: ",
              start.recorded_ ? "recorded" : "not recorded", ", end: ", end.recorded_ ? "recorded" : "not recorded", ")");
  KIRZL_CHECK(start.device_ == end.device_, "cuda::Event::elapsed_ms: events on different devices (cuda:", start.device_,
              " and cuda:", end.device_, ")");
  float ms = 0;
  KIRZL_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.handle_), static_cast<cudaEvent_t>(end.handle_)));
  return ms;
}

}  // namespace cuda
}  // namespace kirzl
