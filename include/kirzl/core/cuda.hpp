// Device selection, device properties and memory statistics of kirzl's CUDA runtime.
// No CUDA header is included. Every call that needs a GPU throws Error{Unsupported} naming the
// call when there is none: "kirzl was built without CUDA" in builds without the toolkit, "no CUDA
// device is available" in CUDA builds on a machine without a GPU. cuda::device_count() and
// cuda::is_available() (core/device.hpp) never throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kirzl/core/device.hpp"

namespace kirzl::cuda {

/// Makes `device` the calling thread's current CUDA device (cudaSetDevice). kirzl's own calls
/// select the device of the tensors they work on and restore the caller's choice afterwards where
/// they can; set_device matters for code that calls CUDA directly.
void set_device(int device);
/// The calling thread's current CUDA device (cudaGetDevice).
int current_device();
/// Blocks until all work on every stream of `device` has completed (cudaDeviceSynchronize).
void synchronize(int device);

/// Whether embedding, cross_entropy and linear_cross_entropy check their indices on CUDA eagerly.
/// By default (false) the check runs as a kernel that records the first bad index in its device's
/// error flag without waiting for it; the next point where the host waits for that device anyway
/// (cuda::synchronize, Stream/Event::synchronize, a copy to the host such as Tensor::to(cpu) or
/// item(), a blocking copy to the device) throws Error{InvalidArgument} naming the op, the value
/// and the valid range (Note [deferred index check]). The ops themselves never read out of bounds
/// on a bad index. Set the environment variable KIRZL_SYNC_INDEX_CHECKS=1 (read once, at the first
/// call) for the eager check when debugging: each call then synchronises its stream and throws at
/// the call. Indices on the CPU are always checked at the call. Never throws; thread-safe.
bool sync_index_checks();

/// What a CUDA device is (cudaGetDeviceProperties).
struct DeviceProperties {
  std::string name;
  int major = 0;  ///< compute capability
  int minor = 0;
  int sm_count = 0;                        ///< streaming multiprocessors
  size_t total_memory = 0;                 ///< bytes of device memory
  size_t shared_memory_per_block = 0;      ///< default limit per block (48 KiB)
  size_t shared_memory_per_block_optin = 0;  ///< limit with cudaFuncAttributeMaxDynamicSharedMemorySize
  size_t shared_memory_per_sm = 0;
  size_t l2_cache_bytes = 0;
  int max_threads_per_block = 0;
  int warp_size = 0;
  int memory_bus_width_bits = 0;  ///< 0 when the driver does not report it
  int memory_clock_khz = 0;       ///< 0 when the driver does not report it
  /// The physical GPU: "domain:bus:device.function" (cudaDeviceGetPCIBusId), the same in every
  /// process of the node whatever CUDA_VISIBLE_DEVICES says.
  std::string pci_bus_id;
  /// Theoretical DRAM bandwidth from bus width and clock (2 transfers per clock), 0 if unknown.
  double peak_memory_bandwidth_gbs() const {
    return 2.0 * memory_clock_khz * 1e3 * (memory_bus_width_bits / 8.0) / 1e9;
  }
};
DeviceProperties device_properties(int device);

/// Statistics of one of kirzl's caching allocators (bytes unless said otherwise). "allocated"
/// counts blocks handed to tensors (rounded to the allocator's size classes); "reserved" counts
/// memory obtained from the driver (cudaMalloc / cudaHostAlloc), which includes the cache.
struct MemoryStats {
  size_t allocated_bytes = 0;
  size_t peak_allocated_bytes = 0;
  size_t reserved_bytes = 0;
  size_t peak_reserved_bytes = 0;
  size_t requested_bytes = 0;   ///< as asked for by callers, before rounding
  uint64_t allocations = 0;     ///< allocation calls served (nonzero sizes)
  uint64_t cache_hits = 0;      ///< allocations served from cached memory (no driver call)
  uint64_t device_mallocs = 0;  ///< driver allocations (segments)
  uint64_t device_frees = 0;    ///< driver frees (segments)
  uint64_t ooms = 0;            ///< driver allocations that failed (each empties the cache and retries)
  size_t segments = 0;          ///< segments currently reserved
  size_t pending_frees = 0;     ///< freed blocks waiting for events of other streams
};

/// Statistics of the caching device allocator of `device`. Thread-safe.
MemoryStats memory_stats(int device);
/// Sets the peaks (allocated, reserved) of `device` to the current values.
void reset_peak_memory_stats(int device);
/// Returns every cached, unused device segment of every device to the driver (cudaFree). Memory
/// still held by tensors, or freed blocks still waiting for another stream, stays. Thread-safe.
void empty_cache();

/// Statistics of the caching pinned (page-locked) host allocator behind Tensor::pin_memory().
MemoryStats host_memory_stats();
/// Returns every cached, unused pinned host segment to the driver (cudaFreeHost).
void empty_host_cache();

/// Free and total bytes of device memory as the driver sees them (cudaMemGetInfo); kirzl's cache
/// counts as used.
struct MemInfo {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
};
MemInfo mem_get_info(int device);

}  // namespace kirzl::cuda
