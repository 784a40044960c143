// kirzl::cuda::Stream / Event in a build without CUDA: nothing can be created, so every Stream is
// empty and each call that would need a device says that CUDA is missing.
#include "core/without_cuda.h"
#include "kirzl/core/error.hpp"
#include "kirzl/core/stream.hpp"

namespace kirzl::cuda {
namespace {
[[noreturn]] void unavailable(const char* what) {
  KIRZL_FAIL(ErrorCode::Unsupported, what, ": ", detail::kBuiltWithoutCuda);
}
}  // namespace

Stream::Stream(int, int) { unavailable("cuda::Stream"); }
void Stream::reset_() noexcept {}
Stream Stream::current(int) { unavailable("cuda::Stream::current"); }
Stream Stream::legacy_default(int) { unavailable("cuda::Stream::legacy_default"); }
Stream Stream::per_thread_default(int) { unavailable("cuda::Stream::per_thread_default"); }
Stream Stream::from_native(int, void*) { unavailable("cuda::Stream::from_native"); }
// No Stream can be made without CUDA: every Stream is empty.
bool Stream::is_legacy_default() const { return false; }
bool Stream::is_per_thread_default() const { return false; }
int Stream::priority() const { unavailable("cuda::Stream::priority"); }
void Stream::synchronize() const { unavailable("cuda::Stream::synchronize"); }
bool Stream::query() const { unavailable("cuda::Stream::query"); }
void Stream::wait(const Event&) const { unavailable("cuda::Stream::wait"); }
void Stream::wait(const Stream&) const { unavailable("cuda::Stream::wait"); }
StreamGuard::StreamGuard(const Stream&) : device_(-1), previous_(nullptr) { unavailable("cuda::StreamGuard"); }
StreamGuard::~StreamGuard() = default;

void Event::reset_() noexcept {}
void Event::record(const Stream&) { unavailable("cuda::Event::record"); }
// An Event can be constructed without CUDA but never recorded: it counts as completed.
void Event::synchronize() const {}
bool Event::query() const { return true; }
float Event::elapsed_ms(const Event&, const Event&) { unavailable("cuda::Event::elapsed_ms"); }

}  // namespace kirzl::cuda
