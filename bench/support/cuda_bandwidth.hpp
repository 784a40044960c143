// Benchmark support for memory-bound CUDA kernels: CUDA-event timing of back-to-back launches on
// the current stream, and the device-to-device copy bandwidth those kernels are compared to in
// the same run. Only for benchmark programs built with CUDA.
#pragma once

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include <kirzl/kirzl.hpp>

#include "core/cuda/current_stream.h"

#define BENCH_CUDA_CHECK(call)                                                                            \
  do {                                                                                                    \
    cudaError_t e_ = (call);                                                                              \
    if (e_ != cudaSuccess) throw std::runtime_error(std::string(#call) + ": " + cudaGetErrorString(e_)); \
  } while (0)

namespace kirzl::bench {

/// Seconds per call of fn, averaged over `reps` back-to-back calls on device 0's current stream.
inline double time_launches(const std::function<void()>& fn, int reps) {
  cudaStream_t s = cuda_rt::current_stream(0);
  cudaEvent_t start, stop;
  BENCH_CUDA_CHECK(cudaEventCreate(&start));
  BENCH_CUDA_CHECK(cudaEventCreate(&stop));
  BENCH_CUDA_CHECK(cudaEventRecord(start, s));
  for (int i = 0; i < reps; ++i) fn();
  BENCH_CUDA_CHECK(cudaEventRecord(stop, s));
  BENCH_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  BENCH_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  BENCH_CUDA_CHECK(cudaEventDestroy(start));
  BENCH_CUDA_CHECK(cudaEventDestroy(stop));
  return ms * 1e-3 / reps;
}

/// Device-to-device cudaMemcpyAsync bandwidth (bytes read + written per second) of a `bytes`
/// buffer on device 0: the best of five timings, measured once per size and process.
inline double device_copy_bandwidth(int64_t bytes, int reps) {
  static std::map<int64_t, double> measured;
  if (auto it = measured.find(bytes); it != measured.end()) return it->second;
  Tensor src = zeros({bytes}, {.dtype = DType::u8, .device = Device::cuda(0)});
  Tensor dst = empty({bytes}, {.dtype = DType::u8, .device = Device::cuda(0)});
  cudaStream_t s = cuda_rt::current_stream(0);
  double best = 1e30;
  for (int t = 0; t < 5; ++t)
    best = std::min(best, time_launches([&] {
      BENCH_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), bytes, cudaMemcpyDeviceToDevice, s));
    }, reps));
  return measured[bytes] = 2.0 * static_cast<double>(bytes) / best;
}

/// Times fn (which moves `bytes` per call) with `reps` calls per iteration (UseManualTime) and
/// sets the counters GB/s, memcpy_GB/s (a `copy_bytes` device copy) and ratio = GB/s / memcpy_GB/s.
inline void run_bandwidth(benchmark::State& state, int64_t bytes, int reps, int64_t copy_bytes,
                          const std::function<void()>& fn) {
  const double ref = device_copy_bandwidth(copy_bytes, reps);
  fn();  // warm-up (and first touch of the allocator's blocks)
  BENCH_CUDA_CHECK(cudaDeviceSynchronize());
  double total = 0;
  for (auto _ : state) {
    const double sec = time_launches(fn, reps);
    total += sec;
    state.SetIterationTime(sec);
  }
  const double bw = static_cast<double>(bytes) * static_cast<double>(state.iterations()) / total;
  state.counters["GB/s"] = bw * 1e-9;
  state.counters["memcpy_GB/s"] = ref * 1e-9;
  state.counters["ratio"] = bw / ref;
  state.SetBytesProcessed(state.iterations() * reps * bytes);
}

/// False (and the benchmark marked skipped) when no CUDA device is visible.
inline bool have_gpu(benchmark::State& state) {
  if (cuda::is_available()) return true;
  state.SkipWithError("no CUDA device");
  return false;
}

}  // namespace kirzl::bench
