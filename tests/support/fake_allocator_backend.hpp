// A fake AllocatorBackend for the caching allocator's CPU tests (tests/core/test_caching_allocator*.cpp):
// segments are address ranges of a pretend device whose memory is never touched, and events
// complete only when the test says so. Counts every call so tests can check what was (not) called.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/caching_allocator.h"

namespace kirzl::test {

using alloc::AllocatorBackend;
using alloc::CachingAllocator;
using alloc::StreamRef;


constexpr size_t KiB = 1024, MiB = 1024 * KiB;

// A pretend device: segments are address ranges within `capacity`; events complete only when
// the test says so (or when synchronised).
struct FakeDevice {
  std::mutex mutex;
  size_t capacity = 1024 * MiB;
  size_t used = 0;
  uintptr_t next_address = 0x10000000;
  std::map<uintptr_t, size_t> segments;
  int allocate_calls = 0, release_calls = 0, failed_allocs = 0;
  struct FakeEvent {
    StreamRef stream;
    bool recorded = false;
    bool complete = false;
  };
  std::map<int, FakeEvent> events;  // live events by id
  int next_event = 1;
  int records = 0, syncs = 0, queries = 0;

  void complete_stream(StreamRef s) {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& [id, e] : events)
      if (e.stream == s) e.complete = true;
  }
  int live_events() {
    std::lock_guard<std::mutex> lock(mutex);
    return static_cast<int>(events.size());
  }
};

class FakeBackend final : public AllocatorBackend {
 public:
  explicit FakeBackend(std::shared_ptr<FakeDevice> d) : d_(std::move(d)) {}
  void* allocate(size_t n) override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    ++d_->allocate_calls;
    if (d_->used + n > d_->capacity) {
      ++d_->failed_allocs;
      return nullptr;
    }
    d_->used += n;
    uintptr_t a = d_->next_address;
    d_->next_address += n + 4096;  // gaps: blocks of different segments are never adjacent
    d_->segments[a] = n;
    return reinterpret_cast<void*>(a);
  }
  void release(void* p, size_t n) noexcept override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    ++d_->release_calls;
    auto it = d_->segments.find(reinterpret_cast<uintptr_t>(p));
    EXPECT_TRUE(it != d_->segments.end()) << "release of an unknown segment";
    if (it == d_->segments.end()) return;
    EXPECT_EQ(it->second, n) << "segment released with another size";
    d_->used -= it->second;
    d_->segments.erase(it);
  }
  Event create_event(StreamRef s) override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    int id = d_->next_event++;
    d_->events[id] = {s, false, false};
    return reinterpret_cast<Event>(static_cast<uintptr_t>(id));
  }
  void record_event(Event e, StreamRef s) override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    auto& ev = d_->events.at(id(e));
    EXPECT_EQ(ev.stream, s);
    ev.recorded = true;
    ev.complete = false;
    ++d_->records;
  }
  bool query_event(Event e) override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    ++d_->queries;
    return d_->events.at(id(e)).complete;
  }
  void synchronize_event(Event e) override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    ++d_->syncs;
    d_->events.at(id(e)).complete = true;  // "waited until it completed"
  }
  void destroy_event(Event e) noexcept override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    d_->events.erase(id(e));
  }
  cuda::MemInfo mem_info() override {
    std::lock_guard<std::mutex> lock(d_->mutex);
    return {d_->capacity - d_->used, d_->capacity};
  }
  std::string name() const override { return "fake:0"; }

 private:
  static int id(Event e) { return static_cast<int>(reinterpret_cast<uintptr_t>(e)); }
  std::shared_ptr<FakeDevice> d_;
};

struct Fixture {
  std::shared_ptr<FakeDevice> dev = std::make_shared<FakeDevice>();
  std::unique_ptr<CachingAllocator> a = std::make_unique<CachingAllocator>(std::make_unique<FakeBackend>(dev));
};

inline const StreamRef kA{0x100, 0}, kB{0x200, 0}, kC{0x300, 0};

inline uintptr_t addr(void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace kirzl::test
