// The kernel profiler. See kirzl/core/profiler.hpp.
//
// Note [profiler]: every kernel call goes through one place, KernelStub::operator() of the
// dispatch table (kernels/dispatch_table.h), so that is where a call is timed: the stub knows the
// kernel's name and the device of its tensors. A Profile installs its Recorder in a thread-local
// pointer of its thread; a call with no Profile pays one thread-local load and a branch. Nested
// stubs (a kernel calling another through the table) count once, under the outermost name, so the
// rows add up to the time of the calls and nothing twice.
//
// CPU kernels run inside the call: the host time is their time. CUDA kernels are only launched
// there, so a pair of timing events goes around each call on the stream it launches on (the
// thread's current stream of the tensor's device; cuBLASLt, cuDNN and kirzl's own kernels all
// use it) and the device time is the interval between them. The pairs are kept in launch order
// and added up as soon as they complete (checked with cudaEventQuery after each call, so that
// only the pairs in flight are held, and their events are reused); the summaries wait for the
// rest. A call's interval runs from its start event to its end event on the stream, so while the
// GPU waits for the host it also holds the host work the call does before its launch (a
// library's plan, an allocation); with the GPU kept busy it is the kernels' time. Events are not
// recorded into a CUDA graph being captured: a captured call does not run then, so it counts as
// untimed. The events are queried and waited for in Relaxed capture mode
// (Note [relaxed capture mode]), since they are outside every graph: a capture of this thread on
// another device, or another thread's capture in Global mode, is not invalidated by them. Waiting
// for them reads no deferred index error (Note [deferred index check]): that stays for the user's
// own next synchronisation. An event that cannot be recorded or read does not disturb the call:
// the first such error is kept (and cleared from CUDA's last error, Note [cuda last error]), the
// calls go on untimed, and the summaries throw it until reset().
#include "kirzl/core/profiler.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "core/cuda_backend.h"
#include "core/profiler_hook.h"
#include "kirzl/core/cuda_graph.hpp"
#include "kirzl/core/error.hpp"
#include "kirzl/core/stream.hpp"

namespace kirzl::profiler {

namespace detail {

class Recorder {
 public:
  explicit Recorder(ProfileOptions options) : options_(options), owner_(std::this_thread::get_id()) {}

  KernelToken begin(const char* kernel, Device device) noexcept {
    KernelToken token;
    std::lock_guard<std::mutex> lock(mu_);
    token.kernel = row_of_(kernel, device.type());
    if (device.type() == DeviceType::CUDA && options_.device_time && !error_ && !cuda::is_capturing(device.index())) {
      try {
        cuda::Event start = take_event_(device.index());
        start.record(cuda::Stream::current(device.index()));
        pending_.push_back({token.kernel, device.index(), std::move(start), cuda::Event(true), false});
        token.pending = pending_base_ + static_cast<int64_t>(pending_.size()) - 1;
      } catch (const std::exception& e) {
        note_error_(e);
      }
    }
    token.start = std::chrono::steady_clock::now();
    return token;
  }

  void end(const KernelToken& token, Device device) noexcept {
    const auto stop = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    Row& row = rows_[static_cast<size_t>(token.kernel)];
    const double host_ms = std::chrono::duration<double, std::milli>(stop - token.start).count();
    ++row.calls;
    row.host_ms += host_ms;
    if (device.type() == DeviceType::CPU) {
      row.device_ms += host_ms;
      return;
    }
    if (token.pending < pending_base_ || token.pending < 0) {  // untimed (or forgotten by reset())
      ++row.untimed;
      return;
    }
    Pending& p = pending_[static_cast<size_t>(token.pending - pending_base_)];
    try {
      p.end = take_event_(p.device);
      p.end.record(cuda::Stream::current(device.index()));
      p.ended = true;
    } catch (const std::exception& e) {
      note_error_(e);
      p.failed = true;
    }
    drain_(false);
  }

  void stop() noexcept { stopped_.store(true, std::memory_order_release); }
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  std::thread::id owner() const { return owner_; }

  void reset() {
    std::lock_guard<std::mutex> lock(mu_);
    drain_(true);
    for (Row& r : rows_) r.calls = r.untimed = 0, r.host_ms = r.device_ms = 0;
    error_.reset();  // timing starts afresh
  }

  std::vector<ProfileRow> rows() const {
    std::lock_guard<std::mutex> lock(mu_);
    const_cast<Recorder*>(this)->drain_(true);
    if (error_) KIRZL_FAIL(ErrorCode::Cuda, "profiler: a timing event failed during the profile: ", *error_);
    std::vector<ProfileRow> out;
    for (const Row& r : rows_)
      if (r.calls > 0) out.push_back({r.kernel, r.device, r.calls, r.host_ms, r.device_ms, r.untimed});
    return out;
  }

 private:
  struct Row {
    const char* kernel;
    DeviceType device;
    int64_t calls = 0;
    double host_ms = 0, device_ms = 0;
    int64_t untimed = 0;
  };
  struct Pending {
    int row;
    int device;
    cuda::Event start, end;
    bool ended;
    bool failed = false;
  };

  int row_of_(const char* kernel, DeviceType device) {
    // Stub names are string literals with static storage: the pointer identifies the stub.
    for (size_t i = 0; i < rows_.size(); ++i)
      if (rows_[i].kernel == kernel && rows_[i].device == device) return static_cast<int>(i);
    rows_.push_back({kernel, device});
    return static_cast<int>(rows_.size()) - 1;
  }

  cuda::Event take_event_(int device) {
    std::vector<cuda::Event>& free = free_[device];
    if (free.empty()) return cuda::Event(true);
    cuda::Event e = std::move(free.back());
    free.pop_back();
    return e;
  }

  void note_error_(const std::exception& e) noexcept {
    try {
      if (!error_) error_ = e.what();
    } catch (...) {
    }
  }

  // Adds up the pairs at the front that have completed (with `wait`, all whose call has
  // returned), and reuses their events. Called after timed CUDA calls and by the summaries; the
  // events it waits for are never inside a capture (a captured call is untimed).
  void drain_(bool wait) noexcept {
    try {
      while (!pending_.empty()) {
        Pending& p = pending_.front();
        if (!p.ended && !p.failed) return;  // its call has not returned yet (a summary read from another thread)
        if (p.ended && !p.failed) {
          // Not Event::synchronize/query: they would read the device's deferred index error (the
          // user's to see at their next synchronisation) or refuse during this thread's capture
          // of another stream; the backend waits in Relaxed capture mode (Note [profiler]).
          const std::optional<float> ms =
              cuda_rt::backend()->timing_interval_ms(p.start.native_handle(), p.end.native_handle(), wait);
          if (!ms) return;
          rows_[static_cast<size_t>(p.row)].device_ms += *ms;
        } else {
          ++rows_[static_cast<size_t>(p.row)].untimed;
        }
        std::vector<cuda::Event>& free = free_[p.device];
        if (p.start.recorded()) free.push_back(std::move(p.start));
        if (p.end.recorded()) free.push_back(std::move(p.end));
        pending_.pop_front();
        ++pending_base_;
      }
    } catch (const std::exception& e) {
      note_error_(e);
      // Nothing more can be timed reliably: count what is left as untimed. A call still in flight
      // (a summary read from another thread) is not counted here: its end() counts it, finding
      // its pair forgotten.
      for (const Pending& p : pending_)
        if (p.ended || p.failed) ++rows_[static_cast<size_t>(p.row)].untimed;
      pending_base_ += static_cast<int64_t>(pending_.size());
      pending_.clear();
    }
  }

  const ProfileOptions options_;
  const std::thread::id owner_;
  std::atomic<bool> stopped_{false};
  mutable std::mutex mu_;
  std::vector<Row> rows_;
  std::deque<Pending> pending_;
  int64_t pending_base_ = 0;  // the sequence number of pending_.front()
  std::map<int, std::vector<cuda::Event>> free_;
  std::optional<std::string> error_;
};

KernelToken begin_kernel(Recorder& rec, const char* kernel, Device device) noexcept { return rec.begin(kernel, device); }
void end_kernel(Recorder& rec, const KernelToken& token, Device device) noexcept { rec.end(token, device); }
bool recorder_stopped(const Recorder& rec) noexcept { return rec.stopped(); }

}  // namespace detail

Profile::Profile(ProfileOptions options) {
  if (detail::t_recorder != nullptr && !detail::recorder_stopped(*detail::t_recorder))
    KIRZL_FAIL(ErrorCode::InvalidArgument,
               "profiler::Profile: another Profile is recording on this thread already (one at a time per thread)");
  rec_ = std::make_shared<detail::Recorder>(options);
  detail::t_recorder = rec_;
}

Profile::~Profile() { stop(); }

void Profile::stop() noexcept {
  if (!rec_) return;
  rec_->stop();
  // On the creating thread the hook lets go at once; elsewhere at that thread's next kernel call.
  if (std::this_thread::get_id() == rec_->owner() && detail::t_recorder == rec_) detail::t_recorder.reset();
}

bool Profile::recording() const { return !rec_->stopped(); }

void Profile::reset() { rec_->reset(); }

namespace {

bool by_time(const ProfileRow& a, const ProfileRow& b) {
  if (a.device_ms != b.device_ms) return a.device_ms > b.device_ms;
  if (a.host_ms != b.host_ms) return a.host_ms > b.host_ms;
  return a.name < b.name;
}

}  // namespace

std::vector<ProfileRow> Profile::by_kernel() const {
  std::vector<ProfileRow> rows = rec_->rows();
  std::sort(rows.begin(), rows.end(), by_time);
  return rows;
}

std::vector<ProfileRow> Profile::by_family() const {
  std::map<std::pair<std::string, DeviceType>, ProfileRow> sums;
  for (const ProfileRow& r : rec_->rows()) {
    ProfileRow& f = sums[{std::string(kernel_family(r.name)), r.device}];
    f.name = kernel_family(r.name);
    f.device = r.device;
    f.calls += r.calls;
    f.host_ms += r.host_ms;
    f.device_ms += r.device_ms;
    f.untimed_calls += r.untimed_calls;
  }
  std::vector<ProfileRow> rows;
  for (auto& [key, row] : sums) rows.push_back(std::move(row));
  std::sort(rows.begin(), rows.end(), by_time);
  return rows;
}

double Profile::total_device_ms() const {
  double total = 0;
  for (const ProfileRow& r : rec_->rows()) total += r.device_ms;
  return total;
}

std::string Profile::table(size_t max_kernels) const {
  const std::vector<ProfileRow> families = by_family(), kernels = by_kernel();
  double total = 0;
  for (const ProfileRow& r : kernels) total += r.device_ms;
  std::string out;
  auto section = [&](const char* title, const std::vector<ProfileRow>& rows, size_t limit) {
    char line[256];
    std::snprintf(line, sizeof line, "%-32s %-6s %9s %12s %12s %7s\n", title, "device", "calls", "device ms", "host ms",
                  "share");
    out += line;
    for (size_t i = 0; i < rows.size() && i < limit; ++i) {
      const ProfileRow& r = rows[i];
      std::snprintf(line, sizeof line, "%-32s %-6s %9lld %12.3f %12.3f %6.1f%%%s\n", r.name.c_str(),
                    r.device == DeviceType::CPU ? "cpu" : "cuda", static_cast<long long>(r.calls), r.device_ms,
                    r.host_ms, total > 0 ? 100.0 * r.device_ms / total : 0.0,
                    r.untimed_calls > 0 ? " (some calls untimed)" : "");
      out += line;
    }
    if (rows.size() > limit) out += "  ... " + std::to_string(rows.size() - limit) + " more\n";
  };
  section("family", families, families.size());
  out += "\n";
  section("kernel", kernels, max_kernels);
  char line[96];
  std::snprintf(line, sizeof line, "total device time: %.3f ms\n", total);
  out += line;
  return out;
}

std::string_view kernel_family(std::string_view k) {
  auto starts = [&](std::string_view p) { return k.substr(0, p.size()) == p; };
  auto has = [&](std::string_view p) { return k.find(p) != std::string_view::npos; };
  // GEMMs first: their fused epilogues (gemm_bias_gelu, gemm_dgelu_bgrad) are GEMM time.
  if (starts("gemm")) return "gemm";
  if (starts("multi_tensor_")) return "optimizer";
  if (has("attention")) return "attention";
  if (has("layer_norm")) return "layer_norm";
  if (has("batch_norm")) return "batch_norm";
  if (has("gelu")) return "gelu";
  if (has("cross_entropy") || has("classifier")) return "classifier";
  if (has("embedding")) return "embedding";
  if (has("softmax")) return "softmax";
  if (has("conv2d")) return "conv";
  if (has("pool2d")) return "pool";
  if (starts("check_indices")) return "checks";
  if (k == "unary" || k == "unary_backward" || k == "binary" || k == "where" || k == "dropout_apply")
    return "elementwise";
  if (k == "copy" || k == "fill") return "copy";
  if (k == "sum" || k == "extremum") return "reduction";
  return "other";
}

}  // namespace kirzl::profiler
