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
  std::string name;  ///< the product name the driver reports, e.g. "NVIDIA H100 80GB HBM3"
  int major = 0;  ///< compute capability, major part (9 for sm_90)
  int minor = 0;  ///< compute capability, minor part (0 for sm_90)
  int sm_count = 0;                        ///< streaming multiprocessors
  size_t total_memory = 0;                 ///< bytes of device memory
  size_t shared_memory_per_block = 0;      ///< default limit per block (48 KiB)
  size_t shared_memory_per_block_optin = 0;  ///< limit with cudaFuncAttributeMaxDynamicSharedMemorySize
  size_t shared_memory_per_sm = 0;         ///< bytes of shared memory of one multiprocessor
  size_t l2_cache_bytes = 0;               ///< bytes of L2 cache of the whole device
  int max_threads_per_block = 0;           ///< the largest block a kernel may launch with (1024)
  int warp_size = 0;                       ///< threads per warp (32 on every NVIDIA GPU so far)
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
/// The properties of CUDA device `device`, read from the driver at each call (not cached).
/// Throws Error{Unsupported} when there is no CUDA device (or no CUDA in this build), and
/// Error{InvalidArgument} when `device` is not in [0, device_count()).
DeviceProperties device_properties(int device);

/// Statistics of one of kirzl's caching allocators (bytes unless said otherwise). "allocated"
/// counts blocks handed to tensors (rounded to the allocator's size classes); "reserved" counts
/// memory obtained from the driver (cudaMalloc / cudaHostAlloc), which includes the cache.
struct MemoryStats {
  size_t allocated_bytes = 0;       ///< in blocks held by live tensors (freed ones no longer count)
  size_t peak_allocated_bytes = 0;  ///< highest allocated_bytes since start or reset_peak_memory_stats
  size_t reserved_bytes = 0;        ///< obtained from the driver: allocated plus the cache
  size_t peak_reserved_bytes = 0;   ///< highest reserved_bytes since start or reset_peak_memory_stats
  size_t requested_bytes = 0;   ///< as asked for by callers, before rounding
  uint64_t allocations = 0;     ///< allocation calls served (nonzero sizes)
  uint64_t cache_hits = 0;      ///< allocations served from cached memory (no driver call)
  uint64_t device_mallocs = 0;  ///< driver allocations (segments)
  uint64_t device_frees = 0;    ///< driver frees (segments)
  uint64_t ooms = 0;            ///< driver allocations that failed (each empties the cache and retries)
  size_t segments = 0;          ///< segments currently reserved
  size_t pending_frees = 0;     ///< freed blocks waiting for events of other streams
  /// Blocks freed during a CUDA graph capture that the graph may still use at replay, kept out of
  /// the cache until the graph is destroyed (Note [cuda graph memory]; not counted as allocated).
  size_t graph_held_frees = 0;
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
  size_t free_bytes = 0;   ///< bytes the driver could still hand out on the device (any process)
  size_t total_bytes = 0;  ///< bytes of memory the device has in all
};
/// cudaMemGetInfo on `device`. Throws Error{Unsupported} when there is no CUDA device (or no CUDA
/// in this build), and Error{InvalidArgument} when `device` is not in [0, device_count()).
MemInfo mem_get_info(int device);

}  // namespace kirzl::cuda
