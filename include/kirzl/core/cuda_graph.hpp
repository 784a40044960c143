// kirzl::cuda::Graph: capture the device work of a step (e.g. a whole training step) once as a
// CUDA graph and replay it with one launch. No CUDA header is included. In a build without CUDA,
// or on a machine without a GPU, a Graph cannot be made: the constructor throws Error{Unsupported}
// naming the call.
#pragma once

#include <functional>
#include <memory>

namespace kirzl::cuda {

/// How a capture treats CUDA calls that are unsafe while a stream is captured (cudaMalloc, event
/// queries, synchronisation: cudaStreamCaptureMode). See Note [cuda graph capture].
enum class CaptureMode {
  /// Unsafe calls from any thread fail while this capture runs (cudaStreamCaptureModeGlobal).
  /// kirzl's caching allocator then makes none on other threads: their frees of blocks used on
  /// several streams complete after the capture (Note [cuda graph memory]).
  Global,
  /// Unsafe calls from the capturing thread fail; other threads are not affected
  /// (cudaStreamCaptureModeThreadLocal). The default.
  ThreadLocal,
  /// Unsafe calls are not checked by CUDA (cudaStreamCaptureModeRelaxed); kirzl's own checks
  /// (Note [cuda graph capture]) still apply.
  Relaxed,
};

/// How a Graph captures.
struct GraphOptions {
  /// The CUDA device whose work is captured and replayed; -1: the calling thread's current device
  /// when the Graph is made.
  int device = -1;
  /// See CaptureMode. ThreadLocal lets other threads (data loader, communication threads) keep
  /// working while the capture runs.
  CaptureMode mode = CaptureMode::ThreadLocal;
};

/// A captured CUDA graph and the device memory it replays into.
///
/// Usage (as torch.cuda.graph): run a few steps eagerly first, on the thread that will capture
/// (warm-up: optimizer state, that thread's cuDNN handle and plans, cuBLASLt heuristics and the
/// allocator's cache are then in place), then
///
///     cuda::Graph g;
///     g.capture([&] { loss = train_step(static_x, static_y); });
///     for (...) { static_x.copy_(next_x); static_y.copy_(next_y); g.replay(); read(loss); }
///
/// * Static inputs: the graph reads the addresses its step read at capture. Tensors that live
///   across replays (model parameters, optimizer state, the input tensors above) are its inputs;
///   copy new data into them before replay(), never rebind them.
/// * Outputs: tensors allocated during the capture (e.g. the loss) stay valid after it; each
///   replay overwrites them in place.
/// * The capture runs the host part of `step` once and records its device work without running
///   it: capture() itself computes nothing, replay() does. Only the work on this Graph's device
///   is recorded; work `step` puts on another device runs once, at capture.
/// * Memory: blocks allocated during the capture come from a pool private to this Graph, and
///   blocks the step freed are kept away from other work until the Graph is destroyed (Note [cuda
///   graph memory]); replays allocate nothing. The pool's segments stay reserved while the Graph
///   lives: cuda::empty_cache() returns them only after it is destroyed.
/// * Inside `step`, operations that cannot be captured throw Error{Unsupported} naming the
///   operation (host synchronisation such as Tensor::item(), Stream/Event and device synchronize,
///   the eager index check of KIRZL_SYNC_INDEX_CHECKS; every copy between host and device memory,
///   blocking or not, e.g. Tensor::to(cpu); dropout with p > 0; optimizers other than AdamW/Adam
///   with capturable = true, their first step, a parameter's first update, and their set_lr();
///   collectives). The failed capture is ended and discarded, the stream and the process stay
///   usable, and the Graph stays uncaptured (capture may be called again).
///
/// Movable, not copyable. Not thread-safe: one thread captures or replays a Graph at a time.
class Graph {
 public:
  /// A Graph with nothing captured yet, for `options.device`. Throws Error{Unsupported} without
  /// CUDA or without a GPU, and Error{InvalidArgument} for a device index out of range.
  explicit Graph(GraphOptions options = {});
  /// Waits for the last replay to complete, destroys the graph and hands its memory back to the
  /// caching allocator (whole free segments return to the driver at the next cuda::empty_cache()).
  /// Tensors allocated during the capture stay valid (ordinary tensors from then on). Destroyed
  /// inside another capture on the same thread (where it cannot wait), it keeps its memory and
  /// stream until the process ends, and says so on stderr.
  ~Graph();
  /// Takes over `other`'s graph and memory; `other` is left empty (captured() false; capture()
  /// and replay() on it throw).
  Graph(Graph&& other) noexcept;
  /// Destroys this Graph's graph as the destructor does, then takes over `other`'s.
  Graph& operator=(Graph&& other) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  /// Calls `step` once with a private capture stream as the calling thread's current stream of
  /// the device (StreamGuard), ordered after the work queued so far on the caller's current
  /// stream, records the device work it issues, and instantiates the graph. Work `step` issues on
  /// other streams is captured only when those streams wait for the capture stream (an Event
  /// recorded on it) and are waited for again before `step` returns (CUDA's fork/join rule).
  /// Throws Error{InvalidArgument} when this Graph is already captured or empty, or when the
  /// calling thread is already capturing; an exception from `step` (or from CUDA when the capture
  /// is invalid) ends the capture, discards it and propagates.
  void capture(const std::function<void()>& step);
  /// Launches the captured work on the calling thread's current stream of the device (host does
  /// not wait), ordered after the previous replay of this Graph on any stream. Throws
  /// Error{InvalidArgument} before capture() and inside another capture.
  void replay();
  /// True once capture() has succeeded.
  bool captured() const;
  /// The device the Graph captures on (-1 for an empty, moved-from Graph).
  int device() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when the calling thread's current stream of `device` is being captured into a CUDA graph
/// (cudaStreamIsCapturing). False without CUDA or without that device; never throws.
bool is_capturing(int device) noexcept;

}  // namespace kirzl::cuda
