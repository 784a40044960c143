// The CUDA backends of the caching allocator: device memory (cudaMalloc) and pinned host memory
// (cudaHostAlloc), with events for deferred reuse. The logic lives in core/caching_allocator.cpp.
#include "core/cuda/allocators.h"
#include "core/environment.h"

#include <cuda_runtime.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/device_guard.h"
#include "core/cuda/relaxed_capture_mode.h"

namespace kirzl::cuda_rt {
namespace {

constexpr int kMaxDevices = 64;

// Events are recycled: cudaEventCreate is cheap but not free, and a training step that frees
// blocks used on a communication stream records several per step. One pool per device, because
// an event can only be recorded on streams of the device it was created on.
class EventPool {
 public:
  cudaEvent_t get(int device) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& v = free_[static_cast<size_t>(device)];
      if (!v.empty()) {
        cudaEvent_t e = v.back();
        v.pop_back();
        return e;
      }
    }
    DeviceGuard guard(device);
    cudaEvent_t e = nullptr;
    KIRZL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }
  void put(int device, cudaEvent_t e) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    free_[static_cast<size_t>(device)].push_back(e);
  }

 private:
  std::mutex mutex_;
  std::array<std::vector<cudaEvent_t>, kMaxDevices> free_;
};

EventPool& event_pool() {
  static auto* pool = new EventPool;  // never destroyed (see allocators.h)
  return *pool;
}

// The event handle given to the allocator remembers its device so that it returns to its pool.
struct PooledEvent {
  cudaEvent_t event;
  int device;
};

// Event calls shared by both backends.
class EventBackend : public alloc::AllocatorBackend {
 public:
  Event create_event(alloc::StreamRef stream) override {
    return new PooledEvent{event_pool().get(stream.device), stream.device};
  }
  void record_event(Event e, alloc::StreamRef stream) override {
    auto* pe = static_cast<PooledEvent*>(e);
    DeviceGuard guard(stream.device);  // cudaStreamLegacy means the current device's stream
    KIRZL_CUDA_CHECK(cudaEventRecord(pe->event, reinterpret_cast<cudaStream_t>(stream.handle)));
  }
  bool query_event(Event e) override {
    cudaError_t err = cudaEventQuery(static_cast<PooledEvent*>(e)->event);
    if (err == cudaSuccess) return true;
    if (err == cudaErrorNotReady) {
      (void)cudaGetLastError();
      return false;
    }
    KIRZL_CUDA_CHECK(err);
    return false;
  }
  void synchronize_event(Event e) override { KIRZL_CUDA_CHECK(cudaEventSynchronize(static_cast<PooledEvent*>(e)->event)); }
  void destroy_event(Event e) noexcept override {
    auto* pe = static_cast<PooledEvent*>(e);
    event_pool().put(pe->device, pe->event);
    delete pe;
  }
};

class DeviceBackend final : public EventBackend {
 public:
  explicit DeviceBackend(int device) : device_(device) {}
  void* allocate(size_t nbytes) override {
    DeviceGuard guard(device_);
    void* p = nullptr;
    RelaxedCaptureMode relaxed;  // Note [relaxed capture mode]
    cudaError_t err = cudaMalloc(&p, nbytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // not sticky; clear it so later calls do not see it
      return nullptr;
    }
    KIRZL_CUDA_CHECK(err);
    return p;
  }
  void release(void* ptr, size_t) noexcept override {
    DeviceGuard guard(device_, std::nothrow);
    KIRZL_CUDA_CHECK_NOTHROW(cudaFree(ptr));
  }
  cuda::MemInfo mem_info() override {
    DeviceGuard guard(device_);
    cuda::MemInfo info;
    KIRZL_CUDA_CHECK(cudaMemGetInfo(&info.free_bytes, &info.total_bytes));
    return info;
  }
  std::string name() const override { return "cuda:" + std::to_string(device_); }

 private:
  int device_;
};

class PinnedHostBackend final : public EventBackend {
 public:
  void* allocate(size_t nbytes) override {
    void* p = nullptr;
    // Portable: usable by copies on every device, not only the current one.
    cudaError_t err = cudaHostAlloc(&p, nbytes, cudaHostAllocPortable);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return nullptr;
    }
    KIRZL_CUDA_CHECK(err);
    return p;
  }
  void release(void* ptr, size_t) noexcept override { KIRZL_CUDA_CHECK_NOTHROW(cudaFreeHost(ptr)); }
  cuda::MemInfo mem_info() override {  // page-locked memory comes out of physical memory
    long page = sysconf(_SC_PAGESIZE);
    return {static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<size_t>(page),
            static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(page)};
  }
  std::string name() const override { return "pinned host memory"; }
};

// KIRZL_CUDA_NO_CACHE=1: no caching (for compute-sanitizer; see CachingAllocatorConfig::no_cache).
alloc::CachingAllocatorConfig config_from_env() {
  alloc::CachingAllocatorConfig c;
  c.no_cache = env::flag("KIRZL_CUDA_NO_CACHE");
  return c;
}

}  // namespace

alloc::CachingAllocator& device_allocator(int device) {
  static std::array<std::once_flag, kMaxDevices> once;
  static std::array<alloc::CachingAllocator*, kMaxDevices> allocators{};
  KIRZL_CHECK(device >= 0 && device < kMaxDevices, "cuda: device index ", device, " out of range");
  auto d = static_cast<size_t>(device);
  std::call_once(once[d], [&] { allocators[d] = new alloc::CachingAllocator(std::make_unique<DeviceBackend>(device), config_from_env()); });
  return *allocators[d];
}

alloc::CachingAllocator& host_allocator() {
  static auto* a = new alloc::CachingAllocator(std::make_unique<PinnedHostBackend>(), config_from_env());
  return *a;
}

}  // namespace kirzl::cuda_rt
