// kirzl::profiler::Profile: where the time of a training step goes, kernel by kernel and by
// kernel family (GEMM, attention, layer norm, ...), on the CPU and on CUDA devices.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kirzl/core/device.hpp"

namespace kirzl::profiler {

namespace detail {
class Recorder;
}

/// What a Profile measures: `profiler::Profile prof({.device_time = false})`.
struct ProfileOptions {
  /// CUDA kernels: time each call on the device, with a pair of CUDA timing events recorded on
  /// the op's stream (the calling thread's current stream of the tensor's device) around it.
  /// false: time CUDA calls on the host only (what launching them costs). CPU kernels are always
  /// timed on the host, where they run.
  bool device_time = true;
};

/// One row of a Profile's breakdown: the calls of one kernel (or of one kernel family) on one
/// device type.
struct ProfileRow {
  /// The kernel's name (its dispatch-table stub: "layer_norm_forward", "gemm", ...) or the family
  /// (kernel_family()).
  std::string name;
  /// Where the calls ran.
  DeviceType device = DeviceType::CPU;
  /// Calls recorded.
  int64_t calls = 0;
  /// Milliseconds the calling thread spent inside the calls: the whole work for a CPU kernel,
  /// the launch (and any host-side work) for a CUDA kernel.
  double host_ms = 0;
  /// Milliseconds the calls ran on the device: equal to host_ms for CPU kernels; for CUDA kernels
  /// the sum of the timed calls' event intervals (0 when device_time was off).
  double device_ms = 0;
  /// Calls whose device time is not in device_ms: CUDA calls made while device_time was off,
  /// during a CUDA graph capture (a captured call does not run then), or after a timing event
  /// could not be recorded.
  int64_t untimed_calls = 0;
};

/// Records every kernel the creating thread runs through kirzl's dispatch table while it is
/// active, and breaks the time down by kernel and by family:
///
///   profiler::Profile prof;            // starts recording on this thread
///   for (int i = 0; i < 10; ++i) train_step();
///   prof.stop();
///   std::printf("%s", prof.table().c_str());
///   for (const auto& f : prof.by_family()) ...;  // f.name == "gemm", f.device_ms, ...
///
/// See Note [profiler] in src/core/profiler.cpp. What it counts:
///  - every call of a kernel stub (one op's kernel on one device); a kernel that calls other
///    kernels counts once, under its own name (the outermost call), so nothing is counted twice;
///  - only the creating thread's calls: a DataLoader's workers and a communicator's thread are
///    not recorded, and neither are collectives (NCCL, MPI) or copies that do not go through a
///    kernel stub. Compare the sum with the step's wall time to see what is left out.
/// On CUDA, the timing events add a few microseconds of host time per call and may leave small
/// gaps between kernels: measure throughput without a Profile, and the breakdown with one.
/// Results wait for the recorded events (by_kernel, by_family, table synchronize with them).
/// CUDA graphs: calls this thread makes while it captures on their device are counted, untimed.
/// The Profile queries and waits for its events in CUDA's relaxed capture mode, so they disturb
/// neither a capture of this thread on another device nor another thread's capture (in any
/// CaptureMode). Reading the results waits for the device but reports no pending bad-index error
/// (Note [deferred index check]): that is still raised at your own next synchronisation.
///
/// One Profile at a time per thread (a second one throws Error{InvalidArgument}). Not copyable
/// or movable. Stop it on the thread that created it; destroying it on another thread stops the
/// recording at the creating thread's next kernel call. The summaries may be read from any
/// thread.
class Profile {
 public:
  /// Starts recording the calling thread's kernel calls.
  explicit Profile(ProfileOptions options = {});
  /// Stops recording (stop()).
  ~Profile();
  Profile(const Profile&) = delete;
  Profile& operator=(const Profile&) = delete;

  /// Stops recording; calls made afterwards are not counted. Idempotent. The recorded calls stay.
  void stop() noexcept;
  /// True from construction until stop().
  bool recording() const;
  /// Forgets every call recorded so far (waiting for their events first) and a timing error kept
  /// from them; recording goes on if it was on.
  void reset();

  /// One row per (kernel, device type), by device_ms, largest first. Waits for the recorded CUDA
  /// events. Throws Error{Cuda} when a CUDA event could not be recorded or read since the Profile
  /// began or was last reset() (the call itself was not affected).
  std::vector<ProfileRow> by_kernel() const;
  /// The same calls summed by kernel_family() of their kernel, largest first.
  std::vector<ProfileRow> by_family() const;
  /// The sum of device_ms over all rows.
  double total_device_ms() const;
  /// A text table of by_family() then by_kernel() (the `max_kernels` largest kernels), with each
  /// row's share of total_device_ms(), for printing at the end of a run.
  std::string table(size_t max_kernels = 20) const;

 private:
  std::shared_ptr<detail::Recorder> rec_;
};

/// The family a kernel belongs to in a breakdown, from its stub name: "gemm", "attention",
/// "layer_norm", "gelu", "classifier" (cross-entropy and the fused classifier), "optimizer",
/// "embedding", "elementwise", "softmax", "reduction", "conv", "pool", "batch_norm", "copy",
/// "checks" (index checks), or "other" for a name it does not know. Every kernel kirzl declares
/// has a family other than "other" (tested).
std::string_view kernel_family(std::string_view kernel);

}  // namespace kirzl::profiler
