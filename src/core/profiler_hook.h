// Internal: the profiler's hook in the kernel dispatch table (kernels/dispatch_table.h). See
// Note [profiler] in profiler.cpp.
#pragma once

#include <chrono>
#include <memory>

#include "kirzl/core/device.hpp"

namespace kirzl::profiler::detail {

class Recorder;

// The calling thread's active Profile, or null: the one thread-local load a kernel call pays when
// nothing is profiled.
inline thread_local std::shared_ptr<Recorder> t_recorder;
// Kernel calls in progress on this thread while a Profile records (nested calls count once).
inline thread_local int t_depth = 0;

// What begin_kernel hands to end_kernel: the host start time and, for a timed CUDA call, the
// index of its pending event pair.
struct KernelToken {
  std::chrono::steady_clock::time_point start;
  int kernel = -1;     // index of the kernel's row; -1: not recorded (the recorder has stopped)
  int64_t pending = -1;  // index of the pending CUDA event pair; -1: not timed on the device
};

// Both noexcept: a failure to record a CUDA event is kept by the recorder and reported by the
// Profile's summaries, never thrown into the op.
KernelToken begin_kernel(Recorder& rec, const char* kernel, Device device) noexcept;
void end_kernel(Recorder& rec, const KernelToken& token, Device device) noexcept;
// The recorder of a Profile destroyed on another thread: the calling thread lets go of it.
bool recorder_stopped(const Recorder& rec) noexcept;

// Times one kernel call for the calling thread's Profile; only the outermost of nested calls.
class KernelScope {
 public:
  KernelScope(const char* kernel, Device device) : device_(device) {
    if (t_depth++ != 0) return;
    if (recorder_stopped(*t_recorder)) {
      t_recorder.reset();
      return;
    }
    rec_ = t_recorder.get();
    token_ = begin_kernel(*rec_, kernel, device);
  }
  ~KernelScope() {
    --t_depth;
    if (rec_ != nullptr) end_kernel(*rec_, token_, device_);
  }
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;

 private:
  Device device_;
  Recorder* rec_ = nullptr;
  KernelToken token_;
};

}  // namespace kirzl::profiler::detail
