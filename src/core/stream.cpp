// The device-independent parts of kirzl::cuda::Stream and Event (moves, accessors). The CUDA calls
// are in cuda/stream.cpp; a build without CUDA uses no_cuda/stream_unavailable.cpp.
#include "kirzl/core/stream.hpp"

#include <utility>

#include "kirzl/core/error.hpp"

namespace kirzl::cuda {

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

void Stream::check_defined_(const char* what) const {
  KIRZL_CHECK(handle_ != nullptr, "cuda::Stream::", what, ": the Stream is empty (default-constructed or moved from)");
}

int Stream::device() const {
  check_defined_("device");
  return device_;
}

Event::~Event() { reset_(); }

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
