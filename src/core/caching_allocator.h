// Internal: the device-independent caching allocator behind CUDA device memory and pinned host
// memory. It talks to the memory it manages only through AllocatorBackend, so its logic is
// tested on the CPU with a fake backend (tests/core/test_caching_allocator.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kirzl/core/cuda.hpp"

namespace kirzl::alloc {

/// A stream as the allocator sees it: an opaque handle (cudaStream_t) and its device. The
/// allocator only compares them and passes them back to the backend.
struct StreamRef {
  uintptr_t handle = 0;
  int device = 0;
  friend bool operator==(const StreamRef&, const StreamRef&) = default;
  friend auto operator<=>(const StreamRef&, const StreamRef&) = default;
};

/// The raw memory and event calls the allocator needs. Called with the allocator's lock held.
class AllocatorBackend {
 public:
  using Event = void*;
  virtual ~AllocatorBackend() = default;
  /// A new segment of `nbytes`, or nullptr when the memory is exhausted (any other failure throws).
  virtual void* allocate(size_t nbytes) = 0;
  /// Returns a segment from allocate(). May block until the device is idle (cudaFree does).
  virtual void release(void* ptr, size_t nbytes) noexcept = 0;
  /// An event that can be recorded on `stream`.
  virtual Event create_event(StreamRef stream) = 0;
  /// Marks the work queued on `stream` so far.
  virtual void record_event(Event event, StreamRef stream) = 0;
  /// True when the recorded work has completed; never blocks.
  virtual bool query_event(Event event) = 0;
  /// Blocks until the recorded work has completed (used only on the out-of-memory path).
  virtual void synchronize_event(Event event) = 0;
  virtual void destroy_event(Event event) noexcept = 0;
  /// Free and total bytes of the memory this backend draws from, for error messages.
  virtual cuda::MemInfo mem_info() = 0;
  /// "cuda:0", "pinned host memory": names the memory in error messages.
  virtual std::string name() const = 0;
};

/// Size classes; the defaults are those of Note [cuda caching allocator].
struct CachingAllocatorConfig {
  size_t min_block = 512;                  ///< every request is rounded up to a multiple of this
  size_t small_limit = size_t{1} << 20;    ///< requests up to this size use the small pool
  size_t small_segment = size_t{2} << 20;  ///< small-pool segments
  size_t min_large_alloc = size_t{10} << 20;  ///< large requests below this share a large_segment
  size_t large_segment = size_t{20} << 20;
  size_t large_round = size_t{2} << 20;    ///< larger requests get a segment rounded to this
  /// Debugging (compute-sanitizer): every block is its own segment of the rounded size, returned
  /// to the backend as soon as it is free, so out-of-bounds accesses and uses after free reach
  /// memory the tools know is unallocated. Slow; set with KIRZL_CUDA_NO_CACHE=1.
  bool no_cache = false;
};

// Note [cuda caching allocator]
// cudaMalloc/cudaFree cost tens of microseconds and cudaFree synchronises the device, so a
// training step that allocated its activations from the driver would be dominated by it. The
// allocator keeps freed memory and serves later requests from it:
//
// * Size classes. A request is rounded up to a multiple of 512 bytes. Requests up to 1 MiB are
//   carved from 2 MiB segments (the small pool); larger ones from segments of 20 MiB (requests
//   below 10 MiB) or of the request rounded up to 2 MiB (the large pool). A free block is found
//   best-fit (smallest free block of the same stream that fits). When the fitting block is larger
//   than needed it is split, provided the rest is worth keeping (>= 512 bytes in the small pool,
//   > 1 MiB in the large pool), so the waste of a block is bounded by 1 MiB; freed neighbours of
//   one segment are merged again, so a segment that is entirely free is one block.
// * Stream-ordered reuse. A block belongs to the stream it was allocated on (the caller's current
//   stream). Freed, it goes straight back to that stream's free list: work the stream runs later
//   is ordered after every use of the block on that stream, so reusing it at once is safe even
//   though kernels using it may still be queued. Other streams never see it. If the block was
//   also used on other streams (Storage::record_stream), freeing it records an event on each of
//   them, and the block returns to the free list only when all those events have completed; the
//   allocator checks them with a non-blocking query at each allocation and never waits for them,
//   except when memory is exhausted.
// * Out of memory. When the backend cannot allocate a segment, the allocator waits for all pending
//   events, returns every entirely free segment to the backend, and retries once; if that fails
//   it throws Error{Cuda} "out of memory" with the request, its own allocated and reserved bytes
//   and the device's free and total memory.
// * No driver calls in the steady state: once a training loop has run one step, every request
//   of the next step finds a cached block (memory_stats().device_mallocs stops growing).
// * One mutex per allocator (per device); the backend is called with it held.
// Note [cuda graph memory]
// A CUDA graph replays its kernels into the addresses they had at capture, so the memory a
// captured step touches must stay out of everyone else's hands while the graph lives. kirzl's
// cuda::Graph (src/core/cuda/cuda_graph.cpp) brackets its capture with begin_capture/end_capture and
// calls release_pool when it dies; in between the allocator keeps these rules:
//
// * A private pool per graph. The capture runs on a private stream the Graph creates and makes
//   current; the capture's pool is that stream's free list. Blocks are keyed by stream (Note [cuda
//   caching allocator]) and no other code ever allocates on that stream, so a stream key is
//   enough for privacy: no separate pool id is needed. Blocks the capturing thread allocates on
//   another stream during capture (a side stream forked inside the captured step) are taken from
//   the pool as well, under a key the pool keeps for that stream (a private StreamRef no real
//   stream has), so that, as in eager work, blocks are reused only on the stream they were
//   allocated on (next rule). A segment holds blocks of one key only, so graph and eager blocks
//   never share a segment.
// * Reuse within the capture only where the graph orders it. A pool block freed by the capturing
//   thread with no other-stream use returns at once to the list of the stream it was allocated
//   on: later work of that stream is ordered after its earlier uses by the graph's edges, as
//   eager work is by the stream. Another stream of the capture never gets it: the graph runs
//   forked streams' work concurrently, so a block freed after the capture stream used it and
//   handed to a side stream would be written while the capture stream's work may still read it.
//   A pool block that was also used on another stream (record_stream) is not reused during the
//   capture (recording an event for it would add a node to the graph, and the event could not be
//   queried later); it is held as below.
// * Memory from before the capture. A block allocated outside the pool and freed by the capturing
//   thread during the capture may still be read or written by the graph at every replay, so it is
//   held, neither reused nor counted as allocated, until the graph dies (release_pool), and then
//   freed as an ordinary free (with events for its other-stream uses). Frees from other threads
//   are their own eager work and behave as always.
// * No event queries by the capturing thread. Querying or synchronising an event recorded inside a
//   capture is invalid in every capture mode, and querying any event is among the calls CUDA may
//   forbid during capture; so the capturing thread neither records, queries nor waits for events
//   in the allocator while it captures. Pending frees of other streams wait for the next
//   allocation after the capture (or for another thread's).
// * A capture in global mode restricts every thread (cudaStreamCaptureModeGlobal: while it runs,
//   no thread may make potentially unsafe calls, and event queries are among them; PyTorch's
//   allocator keeps the same rule). While one is active, no thread records, queries or waits for
//   an event in the allocator: another thread's free of a block used on other streams is
//   deferred (counted in pending_frees) and its events are recorded at the first allocate() or
//   empty_cache() after the last global capture has ended. Thread-local and relaxed captures
//   leave other threads alone, as CUDA does.
// * No cudaFree while any capture is active on the device: cudaFree synchronises the device,
//   which is invalid while one of its streams captures. empty_cache() returns nothing then, the
//   no_cache mode keeps freed segments, and running out of memory during a capture is an
//   Error{Cuda} that says so (the out-of-memory path would wait for events and free segments).
//   cudaMalloc is allowed (the backend switches the thread to cudaStreamCaptureModeRelaxed around
//   it: the allocation is deliberately not part of the graph, which is what that mode is for).
// * The pool's segments stay while the graph lives. A segment of the pool whose blocks are all free
//   (e.g. one that held only activations freed within the capture) is still written by every
//   replay, so neither empty_cache() nor the out-of-memory path (of any thread) returns it to the
//   driver, and the no_cache mode keeps it, from begin_capture until release_pool.
// * The pool dies with the graph. release_pool (after the graph's last replay completed) frees the
//   held blocks. The pool's free blocks stay cached under the dead capture stream's key; whole free
//   segments go back to the driver at the next empty_cache(). Blocks of the pool that tensors
//   still hold (outputs of the captured step) are ordinary blocks from then on.
class CachingAllocator {
 public:
  explicit CachingAllocator(std::unique_ptr<AllocatorBackend> backend, CachingAllocatorConfig config = {});
  /// Waits for pending events and returns every free segment. Blocks still handed out are not
  /// returned (the process-wide allocators are therefore never destroyed).
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  /// A block of at least `nbytes` (nullptr for 0) for use on `stream`. Throws Error{Cuda} on
  /// exhaustion (see the note).
  void* allocate(size_t nbytes, StreamRef stream);
  /// Returns a block from allocate(). Never throws (called from destructors); a pointer this
  /// allocator did not hand out is reported to stderr and ignored.
  void free(void* ptr) noexcept;
  /// Notes that the block starting at `ptr` is used by work on `stream`: when it is freed it is
  /// reused only after the work queued on `stream` up to the free has completed. Returns false
  /// when `ptr` is not a live block of this allocator.
  bool record_stream(void* ptr, StreamRef stream);
  /// Forgets every record_stream() use of `stream`: called when that stream is destroyed, after
  /// its queued work has completed (cuda::Stream's destructor synchronises it first), so those
  /// uses are over and no event may be recorded on the dead handle when the blocks are freed.
  void forget_stream(StreamRef stream);
  /// True when `ptr` is the start of a live block of this allocator.
  bool owns(const void* ptr) const;
  /// Returns every entirely free segment to the backend (pending blocks whose events completed
  /// are collected first; nothing blocks), except the segments of a pool whose graph lives
  /// (between begin_capture and release_pool) and nothing while any thread captures.
  void empty_cache();
  /// Starts a capture by the calling thread into the private pool of `pool_stream` (Note [cuda
  /// graph memory]). Until end_capture, this thread's allocations come from that pool and its
  /// frees follow the note's rules. One capture per thread at a time (Error{InvalidArgument}).
  /// `global`: the capture restricts every thread (cudaStreamCaptureModeGlobal), so no thread
  /// touches events until it ends (see the note).
  void begin_capture(StreamRef pool_stream, bool global = false);
  /// Ends the calling thread's capture into `pool_stream`; blocks freed during it stay held, and
  /// the pool's segments stay reserved, until release_pool(pool_stream).
  void end_capture(StreamRef pool_stream);
  /// The graph of `pool_stream` is gone (its last replay has completed, or the capture failed):
  /// frees the blocks held for it; the pool's whole free segments may then go back to the driver.
  /// Never throws.
  void release_pool(StreamRef pool_stream) noexcept;
  /// True while some thread captures into a pool of this allocator.
  bool capturing() const;
  cuda::MemoryStats stats() const;
  void reset_peak_stats();

  /// The block size a request of `nbytes` gets (before any split remainder).
  size_t round_size(size_t nbytes) const;
  /// The segment size allocated for a block of rounded size `size` when no cached block fits.
  size_t segment_size(size_t size) const;

 private:
  struct Block;
  struct BlockLess {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BlockLess>;
  struct PendingEvent {
    AllocatorBackend::Event event;
    Block* block;
  };

  Block* find_free_block_(Pool& pool, StreamRef stream, size_t size);
  Block* take_and_split_(Block* block, size_t size);
  void return_block_(Block* block);
  void process_events_();
  void synchronize_events_();
  void release_free_segments_();
  [[noreturn]] void throw_oom_(size_t requested, size_t rounded, size_t segment);
  [[noreturn]] void throw_capture_oom_(size_t requested, size_t rounded, size_t segment);
  void note_allocated_(size_t size);
  void free_block_(Block* b);
  // free_block_, or deferred while a global capture is active (mutex held).
  void free_or_defer_(Block* b);
  // The capture of the calling thread, or nullptr (mutex held).
  struct Capture {
    std::thread::id thread;
    StreamRef pool;
    bool global = false;
  };
  const Capture* this_thread_capture_() const;
  // True while a capture in global mode is active: no thread touches events (mutex held).
  bool global_capture_active_() const;
  // Whether the calling thread may record, query or wait for events now (mutex held).
  bool may_touch_events_() const { return this_thread_capture_() == nullptr && !global_capture_active_(); }
  // Records the events of the frees deferred during global captures (mutex held, may_touch_events_()).
  void flush_deferred_frees_();
  // The key of a capture's blocks on `stream`: the pool for the capture stream, else the key the
  // pool keeps for `stream`, made on first use (mutex held).
  StreamRef capture_key_(const Capture& capture, StreamRef stream);
  // True when `key` is `capture`'s pool or one of the pool's keys for other streams (mutex held).
  bool is_capture_key_(const Capture& capture, StreamRef key) const;
  // True for a block of a pool whose graph may still replay (mutex held).
  bool in_live_pool_(const Block* b) const;

  std::unique_ptr<AllocatorBackend> backend_;
  CachingAllocatorConfig config_;
  mutable std::mutex mutex_;
  Pool small_pool_;
  Pool large_pool_;
  std::unordered_map<const void*, Block*> live_;  // handed out, by pointer
  std::deque<PendingEvent> pending_;
  std::vector<Capture> captures_;  // active captures (Note [cuda graph memory])
  std::vector<StreamRef> live_pools_;  // pools (and their side keys) from begin_capture until release_pool
  std::map<std::pair<StreamRef, StreamRef>, StreamRef> side_keys_;  // (pool, side stream) -> its key
  std::map<StreamRef, StreamRef> side_key_pools_;                   // side key -> its pool
  uintptr_t next_side_key_ = 0;
  std::vector<std::pair<StreamRef, Block*>> held_;  // freed during a capture: kept until release_pool
  std::vector<Block*> deferred_frees_;  // freed by another thread during a global capture, events not yet recorded
  cuda::MemoryStats stats_;
};

/// "1.50 GiB (1610612736 bytes)": sizes in error messages.
std::string format_bytes(size_t nbytes);

}  // namespace kirzl::alloc
