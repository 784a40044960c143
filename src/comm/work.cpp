// comm::Work: waiting on the shared state of an asynchronous collective.
#include "comm/work_state.h"
#include "kirzl/core/error.hpp"

namespace kirzl::comm {

void Work::wait(std::chrono::milliseconds timeout) const {
  if (!state_) return;
  if (timeout.count() == 0 && state_->stream_wait) {  // Note [nccl work]: stream-ordered, host never blocks
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->done && state_->error) std::rethrow_exception(state_->error);
    }
    state_->stream_wait();
    return;
  }
  synchronize_for(timeout);
}

void Work::synchronize() const {
  if (state_) synchronize_for(std::chrono::milliseconds{0});
}

void Work::synchronize_for(std::chrono::milliseconds timeout) const {
  // A bounded wait must not run the collective itself (that could outlast `timeout`).
  if (timeout.count() == 0 && state_->help) state_->help(*state_);
  std::unique_lock<std::mutex> lock(state_->mu);
  if (timeout.count() > 0) {
    if (!state_->cv.wait_for(lock, timeout, [&] { return state_->done; }))
      KIRZL_FAIL(ErrorCode::Timeout, "Work::wait: ", state_->desc.str(), " did not complete within ", timeout.count(),
                 " ms (the collective keeps running; wait again or let its own timeout fail it)");
  } else {
    // The backend bounds every collective by its own timeout, so this cannot wait forever.
    state_->cv.wait(lock, [&] { return state_->done; });
  }
  if (state_->error) std::rethrow_exception(state_->error);
}

bool Work::is_completed() const {
  if (!state_) return true;
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->done;
}

bool Work::succeeded() const {
  if (!state_) return true;
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->done && !state_->error;
}

}  // namespace kirzl::comm
