// kirzl::cuda::Graph, compiled in every build: the checks, the capture stream and the ordering of
// replays here, the CUDA calls in the backend (cuda/cuda_graph.cpp, Note [cuda backend]).
#include "kirzl/core/cuda_graph.hpp"

#include <cstdio>
#include <exception>
#include <utility>

#include "core/cuda_backend.h"
#include "kirzl/core/error.hpp"
#include "kirzl/core/stream.hpp"

namespace kirzl::cuda {

// Note [cuda graph capture]
// * Mode. CUDA forbids "potentially unsafe" calls (cudaMalloc, event queries, synchronisation)
//   during a capture: in cudaStreamCaptureModeGlobal from every thread of the process while any
//   global capture runs, in ThreadLocal only from the capturing thread, in Relaxed from nobody
//   (calls that necessarily conflict with the capture, such as querying an event recorded in it,
//   fail in every mode). kirzl's default is ThreadLocal: a data loader, a communicator's executor
//   or another thread's eager training keeps running while one thread captures, and the capturing
//   thread, whose calls kirzl controls, is still checked by CUDA. The allocator's own calls on
//   that thread are safe by construction (Note [cuda graph memory]): it queries no event, frees no
//   segment, and switches to Relaxed only around cudaMalloc, whose memory is meant to live outside
//   the graph.
// * A private capture stream. capture() creates a new stream, makes it wait for the caller's
//   current stream (outside the capture, so no external dependency enters the graph), makes it
//   current and captures it. The stream is non-blocking: while a blocking stream of the context
//   is captured, any use of the legacy default stream (kirzl's default current stream) by another
//   thread would be invalid. Its handle keys the graph's memory pool, so the stream lives as
//   long as the Graph.
// * Failing loudly. An operation that cannot be captured checks first (cuda_rt::
//   check_not_capturing) and throws before it makes the CUDA call that would invalidate the
//   capture; capture() then ends the capture, discards it and rethrows, so the stream, the
//   allocator and the process stay usable. Should CUDA invalidate a capture anyway (a call kirzl
//   does not check), cudaStreamEndCapture reports it and capture() throws Error{Cuda}.
// * Replays. replay() launches on the caller's current stream after the previous replay (an event
//   the next replay's stream waits for), so replays on different streams never overlap in the
//   graph's memory, and the destructor waits for that event before the memory goes back.
struct Graph::Impl {
  GraphOptions options;
  int device = -1;
  Stream capture_stream;  // owning; keys the graph's memory pool
  Event last_replay;      // the previous replay's work; what the destructor waits for
  void* last_replay_stream = nullptr;
  cuda_rt::GraphHandles handles;
  bool captured = false;

  ~Impl() {
    if (!captured) return;
    if (cuda::is_capturing(device)) {
      // Destroyed inside another graph's capture on this thread: the last replay cannot be waited
      // for (a capturing thread may not synchronise), so nothing may go back to the allocator, and
      // the capture stream may not be synchronised either. Both are kept for the process's life.
      std::fprintf(stderr, "kirzl: cuda::Graph destroyed during another capture on cuda:%d: its memory and stream "
                   "are kept until the process ends (its last replay cannot be waited for here)\n", device);
      new Stream(std::move(capture_stream));  // leaked on purpose, as are the event and the graph
      new Event(std::move(last_replay));
      return;
    }
    try {
      last_replay.synchronize();
    } catch (const std::exception& e) {  // e.g. a deferred index error of the last replay
      std::fprintf(stderr, "kirzl: cuda::Graph: waiting for the last replay failed: %s\n", e.what());
    }
    cuda_rt::backend()->destroy_graph(handles, capture_stream.native_handle(), device);
  }
};

Graph::Graph(GraphOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->device = options.device >= 0 ? options.device : cuda_rt::require_any_device("cuda::Graph").current_device();
  cuda_rt::require_device(impl_->device, "cuda::Graph");
}

Graph::~Graph() = default;
Graph::Graph(Graph&& other) noexcept = default;
Graph& Graph::operator=(Graph&& other) noexcept = default;

bool Graph::captured() const { return impl_ && impl_->captured; }

int Graph::device() const { return impl_ ? impl_->device : -1; }

void Graph::capture(const std::function<void()>& step) {
  KIRZL_CHECK(impl_ != nullptr, "cuda::Graph::capture: the Graph is empty (moved from)");
  KIRZL_CHECK(!impl_->captured, "cuda::Graph::capture: this Graph is already captured (on cuda:", impl_->device,
              "); make a new Graph for another capture");
  KIRZL_CHECK(static_cast<bool>(step), "cuda::Graph::capture: the step is empty");
  const int device = impl_->device;
  cuda_rt::Backend& b = cuda_rt::require_device(device, "cuda::Graph::capture");
  Stream caller = Stream::current(device);
  KIRZL_CHECK(!b.stream_capturing(caller.native_handle(), device), "cuda::Graph::capture: the calling thread is already "
              "capturing a CUDA graph on cuda:", device, "; captures cannot nest");
  // The deferred index check is capturable (Note [deferred index check]), but its flag is made at
  // the first check on the device, with cudaHostAlloc, cudaMalloc and a stream synchronisation,
  // none of which a capture allows: made here, outside the capture, should the step hold the
  // device's first check.
  (void)b.index_error_slot(device);
  Stream stream(device);
  stream.wait(caller);
  {
    StreamGuard guard(stream);
    b.begin_capture(stream.native_handle(), device, impl_->options.mode);
    try {
      step();
    } catch (...) {
      b.abort_capture(stream.native_handle(), device);
      throw;
    }
    impl_->handles = b.end_capture(stream.native_handle(), device);
  }
  impl_->capture_stream = std::move(stream);
  impl_->captured = true;
}

void Graph::replay() {
  KIRZL_CHECK(impl_ != nullptr, "cuda::Graph::replay: the Graph is empty (moved from)");
  KIRZL_CHECK(impl_->captured, "cuda::Graph::replay: nothing has been captured yet; call capture(step) first");
  const int device = impl_->device;
  cuda_rt::Backend& b = cuda_rt::require_device(device, "cuda::Graph::replay");
  Stream stream = Stream::current(device);
  KIRZL_CHECK(!b.stream_capturing(stream.native_handle(), device),
              "cuda::Graph::replay: cannot replay a graph inside another CUDA graph capture");
  if (impl_->last_replay.recorded() && impl_->last_replay_stream != stream.native_handle()) stream.wait(impl_->last_replay);
  b.launch_graph(impl_->handles.exec, stream.native_handle(), device);
  impl_->last_replay.record(stream);
  impl_->last_replay_stream = stream.native_handle();
}

bool is_capturing(int device) noexcept {
  try {
    cuda_rt::Backend* b = cuda_rt::backend();
    if (b == nullptr || device < 0 || device >= b->device_count()) return false;
    return b->stream_capturing(b->current_stream_handle(device), device);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace kirzl::cuda

namespace kirzl::cuda_rt {

void check_not_capturing(int device, const char* op, const char* why) {
  if (!cuda::is_capturing(device)) return;
  KIRZL_FAIL(ErrorCode::Unsupported, op, ": cannot run inside CUDA graph capture (the current stream of cuda:", device,
             " is being captured): ", why);
}

}  // namespace kirzl::cuda_rt
