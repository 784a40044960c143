// kirzl::cuda device selection, properties and memory statistics (include/kirzl/core/cuda.hpp):
// the CudaBackend methods behind them, called once the entry points in core/cuda_api.cpp have
// checked the device (Note [cuda backend]).
#include <cuda_runtime.h>

#include "core/cuda/allocators.h"
#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_guard.h"

namespace kirzl::cuda_rt {

using cuda::DeviceProperties;
using cuda::MemInfo;
using cuda::MemoryStats;

void CudaBackend::set_device(int device) {
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
}

int CudaBackend::current_device() {
  int d = 0;
  KIRZL_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void CudaBackend::synchronize(int device) {
  check_not_capturing(device, "cuda::synchronize", "the host cannot wait for work that is being captured");
  // Synchronising a device while any of its streams captures is invalid (CUDA programming guide,
  // "Prohibited and Unhandled Operations") and would invalidate another thread's capture.
  KIRZL_CHECK_CODE(!device_allocator(device).capturing(), ErrorCode::Unsupported, "cuda::synchronize(", device,
                   "): another thread is capturing a CUDA graph on this device, and CUDA forbids synchronising a "
                   "device while one of its streams captures; wait for the capture to end, or synchronise a stream");
  DeviceGuard guard(device);
  KIRZL_CUDA_CHECK(cudaDeviceSynchronize());
  throw_if_index_error(device);  // Note [deferred index check]
}

DeviceProperties CudaBackend::device_properties(int device) {
  cudaDeviceProp p{};
  KIRZL_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  DeviceProperties out;
  out.name = p.name;
  out.major = p.major;
  out.minor = p.minor;
  out.sm_count = p.multiProcessorCount;
  out.total_memory = p.totalGlobalMem;
  out.shared_memory_per_block = p.sharedMemPerBlock;
  out.shared_memory_per_block_optin = p.sharedMemPerBlockOptin;
  out.shared_memory_per_sm = p.sharedMemPerMultiprocessor;
  out.l2_cache_bytes = static_cast<size_t>(p.l2CacheSize);
  out.max_threads_per_block = p.maxThreadsPerBlock;
  out.warp_size = p.warpSize;
  // Some drivers report no memory clock (0 or an error): leave the fields 0 then.
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrGlobalMemoryBusWidth, device) == cudaSuccess) out.memory_bus_width_bits = v;
  else (void)cudaGetLastError();
  v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryClockRate, device) == cudaSuccess) out.memory_clock_khz = v;
  else (void)cudaGetLastError();
  char bus[32] = {0};  // "0000:3b:00.0" needs 13 bytes
  KIRZL_CUDA_CHECK(cudaDeviceGetPCIBusId(bus, static_cast<int>(sizeof bus), device));
  out.pci_bus_id = bus;
  return out;
}

MemoryStats CudaBackend::memory_stats(int device) {
  return device_allocator(device).stats();
}

void CudaBackend::reset_peak_memory_stats(int device) {
  device_allocator(device).reset_peak_stats();
}

void CudaBackend::empty_cache() {
  for (int d = 0; d < device_count(); ++d) device_allocator(d).empty_cache();
}

MemoryStats CudaBackend::host_memory_stats() {
  return host_allocator().stats();
}

void CudaBackend::empty_host_cache() {
  host_allocator().empty_cache();
}

MemInfo CudaBackend::mem_get_info(int device) {
  DeviceGuard guard(device);
  MemInfo info;
  KIRZL_CUDA_CHECK(cudaMemGetInfo(&info.free_bytes, &info.total_bytes));
  return info;
}

}  // namespace kirzl::cuda_rt
