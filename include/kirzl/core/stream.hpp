// kirzl::cuda::Stream and kirzl::cuda::Event: CUDA streams and events behind opaque handles
// (this header does not include cuda_runtime.h). In a build without CUDA, or on a machine without
// a GPU, every call that needs a device throws Error{Unsupported} naming the call.
#pragma once

#include <cstdint>

namespace kirzl::cuda {

class Event;

/// A CUDA stream: an ordered queue of device work on one device.
///
/// An owning Stream (made by the constructor) waits for its queued work and destroys its CUDA
/// stream when it dies (memory freed on it may be handed out again at once, so the work must be
/// done). A non-owning Stream (Stream::current, Stream::legacy_default,
/// Stream::from_native) only refers to a stream that lives elsewhere. Movable, not copyable.
/// A default-constructed or moved-from Stream is empty: defined() is false and the other
/// methods throw Error{InvalidArgument}.
///
/// Thread safety: the methods may be called from several threads at once (CUDA streams are
/// thread-safe); moving or destroying a Stream while another thread uses it is not.
class Stream {
 public:
  Stream() = default;
  /// Creates a new stream on `device` that does not synchronise with the legacy default stream
  /// (cudaStreamNonBlocking). `priority`: lower numbers run first; it is clamped to the device's
  /// range (CUDA: 0 is the default, -5 .. 0 on current GPUs).
  explicit Stream(int device, int priority = 0);
  ~Stream();
  /// Takes over `other`'s stream (and its ownership); `other` is left empty.
  Stream(Stream&& other) noexcept;
  /// Releases this Stream first (an owning one waits for its queued work and destroys its CUDA
  /// stream), then takes over `other`'s stream, leaving `other` empty. Self-move does nothing.
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  /// The calling thread's current stream on `device` (non-owning): the stream every kirzl kernel,
  /// library call and asynchronous copy on that device is issued on. It is the legacy default
  /// stream unless a StreamGuard is active on this thread.
  static Stream current(int device);
  /// The legacy default stream of `device` (cudaStreamLegacy; non-owning).
  static Stream legacy_default(int device);
  /// The per-thread default stream of `device` (cudaStreamPerThread; non-owning). It names the
  /// default stream of whichever host thread issues work on it, not of the thread that made this
  /// Stream; it orders against the legacy default stream but not against other streams.
  static Stream per_thread_default(int device);
  /// Wraps a cudaStream_t created elsewhere (passed as void*; e.g. PyTorch's current stream) on
  /// `device`, without taking ownership. The caller keeps the stream alive while it is in use.
  /// nullptr (CUDA's null stream) is taken as the legacy default stream.
  static Stream from_native(int device, void* cuda_stream);

  /// False for an empty Stream (default-constructed or moved-from); never throws.
  bool defined() const { return handle_ != nullptr; }
  /// The CUDA device index the stream belongs to. Throws Error{InvalidArgument} when empty.
  int device() const;
  /// The scheduling priority (cudaStreamGetPriority).
  int priority() const;
  /// The cudaStream_t, as void*, for interop. Not owned by the caller.
  void* native_handle() const { return handle_; }
  /// True for a Stream made by the constructor, which destroys its CUDA stream when it dies;
  /// false for the non-owning ones (current, legacy_default, per_thread_default, from_native) and
  /// for an empty Stream.
  bool owns() const { return owned_; }
  /// True when this is the legacy default stream (Stream::legacy_default, or from_native with
  /// nullptr or cudaStreamLegacy). False for an empty Stream; never throws.
  bool is_legacy_default() const;
  /// True when this is the per-thread default stream (Stream::per_thread_default, or from_native
  /// with cudaStreamPerThread). False for an empty Stream; never throws.
  bool is_per_thread_default() const;

  /// Blocks the calling thread until all work queued on this stream so far has completed.
  void synchronize() const;
  /// True when all work queued on this stream so far has completed; never blocks.
  bool query() const;
  /// Work queued on this stream after this call waits until `event` has completed (device-side
  /// wait; the host does not block). An event never recorded imposes no wait.
  void wait(const Event& event) const;
  /// Work queued on this stream after this call waits until all work queued on `other` so far has
  /// completed: records a temporary event on `other` and waits on it on the device (the host does
  /// not block; `other` may be on another device). No-op when `other` is this stream. Neither
  /// stream is modified otherwise; `other` need not outlive the call. Used, e.g., to hand data
  /// written on kirzl's current stream to a consumer's stream (DLPack __dlpack__(stream=...)).
  void wait(const Stream& other) const;

  /// The same CUDA stream on the same device (ownership does not matter: Stream::current(d) equals
  /// the owning Stream a StreamGuard made current). Two empty Streams are equal.
  friend bool operator==(const Stream& a, const Stream& b) { return a.handle_ == b.handle_ && a.device_ == b.device_; }

 private:
  Stream(int device, void* handle, bool owned) : device_(device), handle_(handle), owned_(owned) {}
  void check_defined_(const char* what) const;
  void reset_() noexcept;

  int device_ = -1;
  void* handle_ = nullptr;
  bool owned_ = false;
};

/// Makes `stream` the calling thread's current stream on stream.device() for the guard's scope,
/// and restores the previous current stream of that device when the scope ends. The stream must
/// outlive the guard. Guards nest; they are per thread, so other threads are not affected. Not
/// copyable or movable.
class StreamGuard {
 public:
  /// Makes `stream` current on its device for this thread. Throws Error{InvalidArgument} for an
  /// empty Stream (Error{Unsupported} in a build without CUDA, where every Stream is empty).
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  int device_;
  void* previous_;
};

/// A CUDA event: a marker in a stream that the host or other streams can wait for.
///
/// The CUDA event is created lazily on the first record(), on the recorded stream's device; an
/// Event may only be recorded on streams of that device afterwards. Events are created with
/// cudaEventDisableTiming (cheaper) unless `enable_timing` is true. An Event never recorded counts
/// as completed. Movable, not copyable; destroying it releases the CUDA event (CUDA lets pending
/// work finish first). Thread safety as for Stream.
class Event {
 public:
  /// An unrecorded event (no CUDA call is made until record(), so this works without CUDA too).
  /// `enable_timing`: whether elapsed_ms() may be used with it.
  explicit Event(bool enable_timing = false) : timing_(enable_timing) {}
  ~Event();
  /// Takes over `other`'s CUDA event and recorded state; `other` is left unrecorded (it keeps its
  /// timing flag).
  Event(Event&& other) noexcept;
  /// Releases this Event's CUDA event first, then takes over `other`'s as the move constructor
  /// does. Self-move does nothing.
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Captures the work queued on `stream` so far; query/synchronize/wait then refer to it.
  /// Recording again moves the marker. Throws Error{InvalidArgument} for a stream of another
  /// device than the one the event was first recorded on.
  void record(const Stream& stream);
  /// Blocks the calling thread until the recorded work has completed (no-op if never recorded).
  void synchronize() const;
  /// True when the recorded work has completed (or nothing was recorded); never blocks.
  bool query() const;
  /// True once record() has been called (false for a new or moved-from Event).
  bool recorded() const { return recorded_; }
  /// The `enable_timing` the event was made with: whether elapsed_ms() accepts it.
  bool timing() const { return timing_; }
  /// Device of the CUDA event, or -1 before the first record().
  int device() const { return device_; }
  /// The cudaEvent_t as void* (nullptr before the first record()), for interop. Not owned by the
  /// caller.
  void* native_handle() const { return handle_; }

  /// Milliseconds between two completed timing events (both made with enable_timing, both
  /// recorded, `end` after `start`). Throws Error{InvalidArgument} otherwise, and Error{Cuda} when
  /// `end` has not completed yet (call end.synchronize() first).
  static float elapsed_ms(const Event& start, const Event& end);

 private:
  void reset_() noexcept;

  bool timing_ = false;
  bool recorded_ = false;
  int device_ = -1;
  void* handle_ = nullptr;
};

}  // namespace kirzl::cuda
