// kirzl::cuda::Stream, StreamGuard and Event, compiled in every build: the checks and the state
// here, the CUDA calls in the backend (cuda/stream.cpp). Without CUDA no Stream can be made, so
// every Stream is empty, an Event is never recorded (it counts as completed), and each call that
// would need a device throws Error{Unsupported} naming it (Note [cuda backend] in
// core/cuda_backend.h).
#include "kirzl/core/stream.hpp"

#include <utility>

#include "core/cuda_backend.h"
#include "kirzl/core/error.hpp"

namespace kirzl::cuda {

using cuda_rt::Backend;
using cuda_rt::require_backend;
using cuda_rt::require_device;

Stream::Stream(int device, int priority) {
  Backend& b = require_device(device, "cuda::Stream");
  handle_ = b.create_stream(device, priority);
  device_ = device;
  owned_ = true;
}

Stream::~Stream() { reset_(); }

Stream::Stream(Stream&& other) noexcept
    : device_(std::exchange(other.device_, -1)),
      handle_(std::exchange(other.handle_, nullptr)),
      owned_(std::exchange(other.owned_, false)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    reset_();
    device_ = std::exchange(other.device_, -1);
    handle_ = std::exchange(other.handle_, nullptr);
    owned_ = std::exchange(other.owned_, false);
  }
  return *this;
}

void Stream::reset_() noexcept {
  // Only a backend makes owned handles.
  if (owned_ && handle_) cuda_rt::backend()->destroy_stream(handle_, device_);
  handle_ = nullptr;
  owned_ = false;
  device_ = -1;
}

Stream Stream::current(int device) {
  Backend& b = require_device(device, "cuda::Stream::current");
  return Stream(device, b.current_stream_handle(device), false);
}

Stream Stream::legacy_default(int device) {
  return Stream(device, require_device(device, "cuda::Stream::legacy_default").legacy_default_stream(), false);
}

Stream Stream::per_thread_default(int device) {
  return Stream(device, require_device(device, "cuda::Stream::per_thread_default").per_thread_default_stream(), false);
}

Stream Stream::from_native(int device, void* cuda_stream) {
  Backend& b = require_device(device, "cuda::Stream::from_native");
  // The null stream (0) is the legacy default stream unless compiled with per-thread default
  // streams; store it as cudaStreamLegacy so that defined() stays true.
  return Stream(device, cuda_stream ? cuda_stream : b.legacy_default_stream(), false);
}

// Without a backend every Stream is empty: neither.
bool Stream::is_legacy_default() const {
  const Backend* b = cuda_rt::backend();
  return b != nullptr && handle_ == b->legacy_default_stream();
}

bool Stream::is_per_thread_default() const {
  const Backend* b = cuda_rt::backend();
  return b != nullptr && handle_ == b->per_thread_default_stream();
}

int Stream::priority() const {
  Backend& b = require_backend("cuda::Stream::priority");
  check_defined_("priority");
  return b.stream_priority(handle_, device_);
}

void Stream::synchronize() const {
  Backend& b = require_backend("cuda::Stream::synchronize");
  check_defined_("synchronize");
  b.stream_synchronize(handle_, device_);
}

bool Stream::query() const {
  Backend& b = require_backend("cuda::Stream::query");
  check_defined_("query");
  return b.stream_query(handle_, device_);
}

void Stream::wait(const Event& event) const {
  Backend& b = require_backend("cuda::Stream::wait");
  check_defined_("wait");
  if (!event.recorded()) return;
  b.stream_wait_event(handle_, device_, event.native_handle());
}

void Stream::wait(const Stream& other) const {
  require_backend("cuda::Stream::wait");
  check_defined_("wait");
  KIRZL_CHECK(other.defined(), "cuda::Stream::wait: the Stream to wait for is empty (default-constructed or moved from)");
  if (other == *this) return;  // a stream is always ordered after its own earlier work
  // The event may be destroyed at once: cudaStreamWaitEvent waits for the work the event captured
  // when it was called, and CUDA releases the event after that work completes.
  Event e;
  e.record(other);
  wait(e);
}

void Stream::check_defined_(const char* what) const {
  KIRZL_CHECK(handle_ != nullptr, "cuda::Stream::", what, ": the Stream is empty (default-constructed or moved from)");
}

int Stream::device() const {
  check_defined_("device");
  return device_;
}

StreamGuard::StreamGuard(const Stream& stream) : device_(-1), previous_(nullptr) {
  Backend& b = require_backend("cuda::StreamGuard");
  device_ = stream.device();
  previous_ = b.exchange_current_stream(device_, stream.native_handle());
}

StreamGuard::~StreamGuard() { cuda_rt::backend()->exchange_current_stream(device_, previous_); }

Event::~Event() { reset_(); }

void Event::reset_() noexcept {
  if (handle_) cuda_rt::backend()->destroy_event(handle_);  // only a backend makes handles
  handle_ = nullptr;
  recorded_ = false;
  device_ = -1;
}

void Event::record(const Stream& stream) {
  Backend& b = require_backend("cuda::Event::record");
  KIRZL_CHECK(stream.defined(), "cuda::Event::record: the Stream is empty");
  int device = stream.device();
  if (!handle_) {
    handle_ = b.create_event(device, timing_);
    device_ = device;
  }
  KIRZL_CHECK(device == device_, "cuda::Event::record: the event belongs to cuda:", device_,
              " but the stream is on cuda:", device, " (use one Event per device)");
  b.record_event(handle_, stream.native_handle(), device);
  recorded_ = true;
}

// An Event never recorded (every Event without CUDA) counts as completed.
void Event::synchronize() const {
  if (!recorded_) return;
  cuda_rt::backend()->event_synchronize(handle_, device_);
}

bool Event::query() const {
  if (!recorded_) return true;
  cuda_rt::check_not_capturing(device_, "cuda::Event::query", "work that is being captured has no completion to query");
  return cuda_rt::backend()->event_query(handle_);
}

float Event::elapsed_ms(const Event& start, const Event& end) {
  Backend& b = cuda_rt::require_any_device("cuda::Event::elapsed_ms");
  KIRZL_CHECK(start.timing_ && end.timing_,
              "cuda::Event::elapsed_ms: both events must be created with enable_timing = true (start: ",
              start.timing_ ? "timing" : "no timing", ", end: ", end.timing_ ? "timing" : "no timing", ")");
  KIRZL_CHECK(start.recorded_ && end.recorded_, "cuda::Event::elapsed_ms: both events must be recorded first (start: ",
              start.recorded_ ? "recorded" : "not recorded", ", end: ", end.recorded_ ? "recorded" : "not recorded", ")");
  KIRZL_CHECK(start.device_ == end.device_, "cuda::Event::elapsed_ms: events on different devices (cuda:", start.device_,
              " and cuda:", end.device_, ")");
  return b.event_elapsed_ms(start.handle_, end.handle_);
}

Event::Event(Event&& other) noexcept
    : timing_(other.timing_),
      recorded_(std::exchange(other.recorded_, false)),
      device_(std::exchange(other.device_, -1)),
      handle_(std::exchange(other.handle_, nullptr)) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    reset_();
    timing_ = other.timing_;
    recorded_ = std::exchange(other.recorded_, false);
    device_ = std::exchange(other.device_, -1);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

}  // namespace kirzl::cuda
