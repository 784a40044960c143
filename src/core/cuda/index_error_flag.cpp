// The per-device index error flag of the CUDA runtime (Note [deferred index check]).
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>

#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "core/cuda/device_guard.h"
#include "core/index_error.h"

namespace kirzl::cuda_rt {

namespace {

constexpr int kMaxFlagDevices = 64;

// The record in mapped pinned host memory (the host reads it without a CUDA call); the claim in
// device memory (device atomics on host memory are not atomic across PCIe).
class DeviceIndexErrorFlag final : public index_error::IndexErrorFlag {
 public:
  explicit DeviceIndexErrorFlag(int device) : device_(device) {
    DeviceGuard guard(device);
    void* host = nullptr;
    // Portable: the record of this device stays valid whichever device is current later.
    KIRZL_CUDA_CHECK(cudaHostAlloc(&host, sizeof(index_error::IndexErrorRecord),
                                   cudaHostAllocMapped | cudaHostAllocPortable));
    std::memset(host, 0, sizeof(index_error::IndexErrorRecord));
    host_ = static_cast<index_error::IndexErrorRecord*>(host);
    void* dev = nullptr;
    KIRZL_CUDA_CHECK(cudaHostGetDevicePointer(&dev, host, 0));
    slot_.record = static_cast<index_error::IndexErrorRecord*>(dev);
    KIRZL_CUDA_CHECK(cudaMalloc(&slot_.claim, sizeof(int)));
    reset_claim();
  }
  // Never destroyed (as the allocators): kernels may still be queued at static destruction.

  const IndexErrorSlot& slot() const { return slot_; }

  std::optional<index_error::IndexErrorRecord> take() override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::optional<index_error::IndexErrorRecord> r = index_error::take_record(host_);
    // Only now may the next bad index claim the record; until then later ones are dropped.
    if (r) reset_claim();
    return r;
  }

 private:
  // Synchronous, so that a check kernel queued after this call on any stream sees the claim free.
  void reset_claim() {
    DeviceGuard guard(device_);
    cudaStream_t s = current_stream(device_);
    KIRZL_CUDA_CHECK(cudaMemsetAsync(slot_.claim, 0, sizeof(int), s));
    KIRZL_CUDA_CHECK(cudaStreamSynchronize(s));
  }

  int device_;
  index_error::IndexErrorRecord* host_ = nullptr;
  IndexErrorSlot slot_;
  std::mutex mutex_;
};

// One flag per device, created by the first index check there (the per-device state of the
// runtime, like the allocators). `made` lets the synchronising points skip devices without one.
struct Flags {
  std::array<std::once_flag, kMaxFlagDevices> once;
  std::array<std::atomic<DeviceIndexErrorFlag*>, kMaxFlagDevices> made{};
};

Flags& flags() {
  static auto* f = new Flags();
  return *f;
}

}  // namespace

IndexErrorSlot CudaBackend::index_error_slot(int device) {
  KIRZL_CHECK(device < kMaxFlagDevices, "cuda index check: device index ", device, " out of range");
  Flags& f = flags();
  auto d = static_cast<size_t>(device);
  std::call_once(f.once[d], [&] { f.made[d].store(new DeviceIndexErrorFlag(device), std::memory_order_release); });
  return f.made[d].load(std::memory_order_acquire)->slot();
}

void CudaBackend::throw_if_index_error(int device) {
  if (device < 0 || device >= kMaxFlagDevices) return;
  DeviceIndexErrorFlag* flag = flags().made[static_cast<size_t>(device)].load(std::memory_order_acquire);
  if (flag) index_error::throw_if_index_error(*flag);
}

}  // namespace kirzl::cuda_rt
