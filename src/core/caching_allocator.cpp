// The caching allocator's logic: size classes, best-fit with split and merge, stream-ordered
// reuse, deferred reuse behind events, and the out-of-memory path. See Note [cuda caching allocator].
#include "core/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <sstream>

#include "kirzl/core/error.hpp"

namespace kirzl::alloc {

struct CachingAllocator::Block {
  char* ptr = nullptr;
  size_t size = 0;       // bytes of this block (a multiple of min_block)
  size_t requested = 0;  // what the caller asked for, while handed out
  StreamRef stream;      // the stream of the segment's first allocation: its free list
  bool small = false;    // which pool
  bool allocated = false;
  int pending_events = 0;  // > 0: freed, waiting for other streams
  bool held = false;       // freed during a capture, kept for its graph (Note [cuda graph memory])
  bool deferred = false;   // freed during another thread's global capture, its events not yet recorded
  Block* prev = nullptr;   // neighbours within the segment
  Block* next = nullptr;
  std::vector<StreamRef> stream_uses;  // other streams that used it (record_stream)
  bool is_free() const { return !allocated && pending_events == 0 && !held && !deferred; }
  bool is_whole_segment() const { return prev == nullptr && next == nullptr; }
};

bool CachingAllocator::BlockLess::operator()(const Block* a, const Block* b) const {
  if (a->stream != b->stream) return a->stream < b->stream;
  if (a->size != b->size) return a->size < b->size;
  return a->ptr < b->ptr;
}

CachingAllocator::CachingAllocator(std::unique_ptr<AllocatorBackend> backend, CachingAllocatorConfig config)
    : backend_(std::move(backend)), config_(config) {
  KIRZL_INTERNAL_ASSERT(backend_ != nullptr, "CachingAllocator needs a backend");
  KIRZL_INTERNAL_ASSERT(config_.min_block > 0 && config_.small_limit <= config_.small_segment &&
                            config_.small_segment % config_.min_block == 0 && config_.large_round % config_.min_block == 0 &&
                            config_.large_segment % config_.min_block == 0,
                        "CachingAllocator: inconsistent size classes");
}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    flush_deferred_frees_();
    synchronize_events_();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kirzl: waiting for pending frees of %s failed: %s\n", backend_->name().c_str(), e.what());
  }
  release_free_segments_();
}

size_t CachingAllocator::round_size(size_t nbytes) const {
  if (nbytes < config_.min_block) return config_.min_block;
  return (nbytes + config_.min_block - 1) / config_.min_block * config_.min_block;
}

size_t CachingAllocator::segment_size(size_t size) const {
  if (config_.no_cache) return size;
  if (size <= config_.small_limit) return config_.small_segment;
  if (size < config_.min_large_alloc) return config_.large_segment;
  return (size + config_.large_round - 1) / config_.large_round * config_.large_round;
}

void CachingAllocator::note_allocated_(size_t size) {
  stats_.allocated_bytes += size;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
}

CachingAllocator::Block* CachingAllocator::find_free_block_(Pool& pool, StreamRef stream, size_t size) {
  Block key;
  key.stream = stream;
  key.size = size;
  key.ptr = nullptr;
  auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  Block* b = *it;
  pool.erase(it);
  return b;
}

// `block` is out of its pool; hands out its first `size` bytes and keeps the rest free when it is
// worth keeping (Note [cuda caching allocator]).
CachingAllocator::Block* CachingAllocator::take_and_split_(Block* block, size_t size) {
  size_t rest = block->size - size;
  bool split = block->small ? rest >= config_.min_block : rest > config_.small_limit;
  if (split) {
    auto* r = new Block;
    r->ptr = block->ptr + size;
    r->size = rest;
    r->stream = block->stream;
    r->small = block->small;
    r->prev = block;
    r->next = block->next;
    if (block->next) block->next->prev = r;
    block->next = r;
    block->size = size;
    (block->small ? small_pool_ : large_pool_).insert(r);
  }
  block->allocated = true;
  return block;
}

// A block nobody uses any more: merge it with free neighbours and put it on its free list.
void CachingAllocator::return_block_(Block* block) {
  Pool& pool = block->small ? small_pool_ : large_pool_;
  if (Block* p = block->prev; p && p->is_free()) {
    pool.erase(p);
    p->size += block->size;
    p->next = block->next;
    if (block->next) block->next->prev = p;
    delete block;
    block = p;
  }
  if (Block* n = block->next; n && n->is_free()) {
    pool.erase(n);
    block->size += n->size;
    block->next = n->next;
    if (n->next) n->next->prev = block;
    delete n;
  }
  if (config_.no_cache && block->is_whole_segment() && captures_.empty() && !in_live_pool_(block)) {
    backend_->release(block->ptr, block->size);
    stats_.reserved_bytes -= block->size;
    ++stats_.device_frees;
    --stats_.segments;
    delete block;
    return;
  }
  pool.insert(block);
}

void CachingAllocator::process_events_() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (!backend_->query_event(it->event)) {
      ++it;
      continue;
    }
    backend_->destroy_event(it->event);
    Block* b = it->block;
    it = pending_.erase(it);
    if (--b->pending_events == 0) {
      --stats_.pending_frees;
      return_block_(b);
    }
  }
}

void CachingAllocator::synchronize_events_() {
  while (!pending_.empty()) {
    PendingEvent pe = pending_.front();
    backend_->synchronize_event(pe.event);
    pending_.pop_front();
    backend_->destroy_event(pe.event);
    if (--pe.block->pending_events == 0) {
      --stats_.pending_frees;
      return_block_(pe.block);
    }
  }
}

void CachingAllocator::release_free_segments_() {
  if (!captures_.empty()) return;  // cudaFree would synchronise a capturing device (Note [cuda graph memory])
  for (Pool* pool : {&small_pool_, &large_pool_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (!b->is_whole_segment() || in_live_pool_(b)) {  // a live graph replays into its pool's segments
        ++it;
        continue;
      }
      it = pool->erase(it);
      backend_->release(b->ptr, b->size);
      stats_.reserved_bytes -= b->size;
      ++stats_.device_frees;
      --stats_.segments;
      delete b;
    }
  }
}

void* CachingAllocator::allocate(size_t nbytes, StreamRef stream) {
  if (nbytes == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  // Note [cuda graph memory]: the capturing thread takes from its graph's pool and queries no events.
  const Capture* capture = this_thread_capture_();
  const StreamRef key = capture ? capture_key_(*capture, stream) : stream;
  if (may_touch_events_()) {
    flush_deferred_frees_();
    process_events_();
  }
  size_t size = round_size(nbytes);
  KIRZL_CHECK_CODE(size >= nbytes, ErrorCode::Cuda, "out of memory on ", backend_->name(), ": cannot allocate ", nbytes, " bytes");
  bool small = size <= config_.small_limit;
  Pool& pool = small ? small_pool_ : large_pool_;
  Block* block = config_.no_cache ? nullptr : find_free_block_(pool, key, size);
  if (block) {
    ++stats_.cache_hits;
  } else {
    size_t seg = segment_size(size);
    void* p = backend_->allocate(seg);
    if (!p) {
      // Note [cuda caching allocator], out of memory: wait for other streams, give the cache back, retry once.
      // During a capture the capturing thread waits for no event and nobody frees segments.
      ++stats_.ooms;
      if (may_touch_events_()) synchronize_events_();
      block = find_free_block_(pool, key, size);
      if (block) {
        ++stats_.cache_hits;
      } else {
        if (!captures_.empty()) throw_capture_oom_(nbytes, size, seg);
        release_free_segments_();
        p = backend_->allocate(seg);
        if (!p) throw_oom_(nbytes, size, seg);
      }
    }
    if (!block) {
      block = new Block;
      block->ptr = static_cast<char*>(p);
      block->size = seg;
      block->stream = key;
      block->small = small;
      stats_.reserved_bytes += seg;
      stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
      ++stats_.device_mallocs;
      ++stats_.segments;
    }
  }
  take_and_split_(block, size);
  block->requested = nbytes;
  live_.emplace(block->ptr, block);
  ++stats_.allocations;
  stats_.requested_bytes += nbytes;
  note_allocated_(block->size);
  return block->ptr;
}

void CachingAllocator::free(void* ptr) noexcept {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    std::fprintf(stderr, "kirzl: %s allocator: free of %p, which it did not allocate (ignored)\n", backend_->name().c_str(), ptr);
    return;
  }
  Block* b = it->second;
  live_.erase(it);
  b->allocated = false;
  stats_.allocated_bytes -= b->size;
  stats_.requested_bytes -= b->requested;
  b->requested = 0;
  if (const Capture* capture = this_thread_capture_()) {
    if (is_capture_key_(*capture, b->stream) && b->stream_uses.empty()) {
      return_block_(b);  // the graph orders later uses on its stream after this one
    } else {
      b->held = true;  // the graph may use it at every replay: kept until it dies
      held_.emplace_back(capture->pool, b);
      ++stats_.graph_held_frees;
    }
    return;
  }
  free_or_defer_(b);
}

void CachingAllocator::free_or_defer_(Block* b) {
  if (!b->stream_uses.empty() && global_capture_active_()) {
    b->deferred = true;  // no event may be recorded now (Note [cuda graph memory])
    deferred_frees_.push_back(b);
    ++stats_.pending_frees;
    return;
  }
  free_block_(b);
}

void CachingAllocator::flush_deferred_frees_() {
  std::vector<Block*> blocks = std::move(deferred_frees_);
  deferred_frees_.clear();
  for (Block* b : blocks) {
    b->deferred = false;
    --stats_.pending_frees;
    free_block_(b);
  }
}

bool CachingAllocator::global_capture_active_() const {
  return std::any_of(captures_.begin(), captures_.end(), [](const Capture& c) { return c.global; });
}

// An ordinary free of a block nobody holds any more (outside any capture of this thread).
void CachingAllocator::free_block_(Block* b) {
  if (b->stream_uses.empty()) {
    return_block_(b);
    return;
  }
  // Other streams may still be using the block: it becomes free when their work so far is done.
  std::vector<StreamRef> uses = std::move(b->stream_uses);
  b->stream_uses.clear();
  try {
    for (StreamRef s : uses) {
      AllocatorBackend::Event e = backend_->create_event(s);
      try {
        backend_->record_event(e, s);
      } catch (...) {
        backend_->destroy_event(e);
        throw;
      }
      pending_.push_back({e, b});
      if (b->pending_events++ == 0) ++stats_.pending_frees;
    }
  } catch (const std::exception& e) {
    // Without an event there is no safe moment to reuse the block: keep it out of the cache.
    std::fprintf(stderr, "kirzl: %s allocator: recording the free of a block used on other streams failed (%s); the block is not reused\n",
                 backend_->name().c_str(), e.what());
    if (b->pending_events == 0) {
      b->allocated = true;  // leaked on purpose: never merged, never handed out
      return;
    }
  }
  if (b->pending_events == 0) return_block_(b);
}

const CachingAllocator::Capture* CachingAllocator::this_thread_capture_() const {
  if (captures_.empty()) return nullptr;
  const std::thread::id self = std::this_thread::get_id();
  for (const Capture& c : captures_)
    if (c.thread == self) return &c;
  return nullptr;
}

// A key no real stream has: handles count up from 1 on a device index no device has.
constexpr int kSideKeyDevice = -1000;

StreamRef CachingAllocator::capture_key_(const Capture& capture, StreamRef stream) {
  if (stream == capture.pool) return capture.pool;
  auto [it, made] = side_keys_.try_emplace({capture.pool, stream});
  if (made) {
    it->second = StreamRef{++next_side_key_, kSideKeyDevice};
    side_key_pools_.emplace(it->second, capture.pool);
    live_pools_.push_back(it->second);
  }
  return it->second;
}

bool CachingAllocator::is_capture_key_(const Capture& capture, StreamRef key) const {
  if (key == capture.pool) return true;
  auto it = side_key_pools_.find(key);
  return it != side_key_pools_.end() && it->second == capture.pool;
}

bool CachingAllocator::in_live_pool_(const Block* b) const {
  return std::find(live_pools_.begin(), live_pools_.end(), b->stream) != live_pools_.end();
}

void CachingAllocator::begin_capture(StreamRef pool_stream, bool global) {
  std::lock_guard<std::mutex> lock(mutex_);
  KIRZL_CHECK(this_thread_capture_() == nullptr, "cuda graph capture on ", backend_->name(),
              ": this thread is already capturing a graph; captures cannot nest");
  for (const Capture& c : captures_)
    KIRZL_CHECK(c.pool != pool_stream, "cuda graph capture on ", backend_->name(), ": the pool is already in use by another capture");
  captures_.push_back({std::this_thread::get_id(), pool_stream, global});
  if (std::find(live_pools_.begin(), live_pools_.end(), pool_stream) == live_pools_.end()) live_pools_.push_back(pool_stream);
}

void CachingAllocator::end_capture(StreamRef pool_stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::thread::id self = std::this_thread::get_id();
  auto it = std::find_if(captures_.begin(), captures_.end(), [&](const Capture& c) { return c.thread == self && c.pool == pool_stream; });
  KIRZL_INTERNAL_ASSERT(it != captures_.end(), "end_capture without begin_capture on this thread");
  captures_.erase(it);
}

void CachingAllocator::release_pool(StreamRef pool_stream) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase(live_pools_, pool_stream);  // its whole free segments may go back to the driver now
  for (auto it = side_keys_.begin(); it != side_keys_.end();) {
    if (it->first.first != pool_stream) {
      ++it;
      continue;
    }
    std::erase(live_pools_, it->second);
    side_key_pools_.erase(it->second);
    it = side_keys_.erase(it);
  }
  std::vector<Block*> blocks;
  std::erase_if(held_, [&](const std::pair<StreamRef, Block*>& h) {
    if (h.first != pool_stream) return false;
    blocks.push_back(h.second);
    return true;
  });
  for (Block* b : blocks) {
    b->held = false;
    --stats_.graph_held_frees;
    free_or_defer_(b);  // its events, if any, are recorded now, outside the capture (or deferred)
  }
}

bool CachingAllocator::capturing() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !captures_.empty();
}

bool CachingAllocator::record_stream(void* ptr, StreamRef stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) return false;
  Block* b = it->second;
  if (stream == b->stream) return true;  // its own stream orders every use
  if (std::find(b->stream_uses.begin(), b->stream_uses.end(), stream) == b->stream_uses.end()) b->stream_uses.push_back(stream);
  return true;
}

void CachingAllocator::forget_stream(StreamRef stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [ptr, b] : live_) std::erase(b->stream_uses, stream);
  // Blocks held for a graph are freed (with events on their other streams) only at release_pool,
  // which may come after this stream is gone.
  for (auto& [pool, b] : held_) std::erase(b->stream_uses, stream);
  for (Block* b : deferred_frees_) std::erase(b->stream_uses, stream);
}

bool CachingAllocator::owns(const void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return live_.count(ptr) != 0;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (may_touch_events_()) {
    flush_deferred_frees_();
    process_events_();
  }
  release_free_segments_();
}

cuda::MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

void CachingAllocator::throw_oom_(size_t requested, size_t rounded, size_t segment) {
  cuda::MemInfo info{};
  try {
    info = backend_->mem_info();
  } catch (const std::exception&) {
    // the message below still names what kirzl holds
  }
  KIRZL_FAIL(ErrorCode::Cuda, "out of memory on ", backend_->name(), ": tried to allocate ", format_bytes(requested),
             " (a ", format_bytes(segment), " segment for a block of ", rounded, " bytes); kirzl has ",
             format_bytes(stats_.allocated_bytes), " allocated to tensors and ", format_bytes(stats_.reserved_bytes),
             " reserved (cache emptied before this retry); the device has ", format_bytes(info.free_bytes), " free of ",
             format_bytes(info.total_bytes), " total");
}

void CachingAllocator::throw_capture_oom_(size_t requested, size_t rounded, size_t segment) {
  KIRZL_FAIL(ErrorCode::Cuda, "out of memory on ", backend_->name(), " during CUDA graph capture: tried to allocate ",
             format_bytes(requested), " (a ", format_bytes(segment), " segment for a block of ", rounded,
             " bytes); kirzl has ", format_bytes(stats_.allocated_bytes), " allocated to tensors and ",
             format_bytes(stats_.reserved_bytes), " reserved. The cache cannot be emptied while a graph is being "
             "captured (cudaFree would synchronise the device): call cuda::empty_cache() before the capture, or make "
             "the captured step smaller (Note [cuda graph memory])");
}

std::string format_bytes(size_t nbytes) {
  static const char* const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(nbytes);
  int u = 0;
  while (v >= 1024.0 && u < 6) v /= 1024.0, ++u;
  std::ostringstream os;
  if (u == 0) {
    os << nbytes << " bytes";
  } else {
    os.setf(std::ios::fixed);
    os.precision(2);
    os << v << ' ' << units[u] << " (" << nbytes << " bytes)";
  }
  return os.str();
}

}  // namespace kirzl::alloc
