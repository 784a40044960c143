// CUDA memory: allocation through kirzl's caching allocator against raw cudaMalloc/cudaFree;
// host<->device copy bandwidth from pinned and pageable memory; device-to-device copy bandwidth
// (the reference the kernel benchmarks compare to). Each benchmark measures the raw CUDA call in
// the same run and reports the ratio. Skips with "no CUDA device" when there is none.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>

#include <kirzl/config.hpp>
#include <kirzl/kirzl.hpp>

#if KIRZL_HAS_CUDA
#include <cuda_runtime.h>
#endif

using namespace kirzl;

namespace {

bool skip_without_gpu(benchmark::State& state) {
  if (!KIRZL_HAS_CUDA || !cuda::is_available()) {
    state.SkipWithError("no CUDA device");
    return true;
  }
  return false;
}

template <class F>
double seconds_per_call(F&& f, int reps) {
  f();  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

#if KIRZL_HAS_CUDA
#define CHECK_CUDA(call)                                                    \
  do {                                                                      \
    cudaError_t e_ = (call);                                                \
    if (e_ != cudaSuccess) KIRZL_FAIL(ErrorCode::Cuda, #call, ": ", cudaGetErrorString(e_)); \
  } while (0)
#endif

// allocate + free of one block of range(0) bytes.
void BM_AllocFree(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
#if KIRZL_HAS_CUDA
  const size_t n = static_cast<size_t>(state.range(0));
  const Device d = Device::cuda(0);
  CHECK_CUDA(cudaSetDevice(0));
  double raw = seconds_per_call(
      [&] {
        void* p = nullptr;
        CHECK_CUDA(cudaMalloc(&p, n));
        CHECK_CUDA(cudaFree(p));
      },
      50);
  Storage warm = Storage::allocate(n, d);  // the first allocation of this size may call cudaMalloc
  warm = Storage();
  const uint64_t mallocs = cuda::memory_stats(0).device_mallocs;
  double total = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    Storage s = Storage::allocate(n, d);
    benchmark::DoNotOptimize(s.data());
    s = Storage();
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double cached = total / static_cast<double>(state.iterations());
  state.counters["kirzl_us"] = cached * 1e6;
  state.counters["cudaMalloc_free_us"] = raw * 1e6;
  state.counters["speedup_vs_raw"] = raw / cached;
  state.counters["device_mallocs_in_loop"] = static_cast<double>(cuda::memory_stats(0).device_mallocs - mallocs);
#endif
}
BENCHMARK(BM_AllocFree)->Arg(4 << 10)->Arg(1 << 20)->Arg(64 << 20)->Arg(512 << 20);

// Host<->device copy of range(0) bytes: arg1 = 0 host-to-device, 1 device-to-host;
// arg2 = 0 pageable, 1 pinned. kirzl's Tensor::to (output from the cache) vs raw cudaMemcpy.
void BM_HostDeviceCopy(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
#if KIRZL_HAS_CUDA
  const int64_t n = state.range(0);
  const bool d2h = state.range(1) == 1;
  const bool pinned = state.range(2) == 1;
  const Device d = Device::cuda(0);
  Tensor host = zeros({n}, {.dtype = DType::u8});
  if (pinned) host = host.pin_memory();
  Tensor dev = zeros({n}, {.dtype = DType::u8, .device = d});
  // Raw reference: the same bytes, the same buffers.
  CHECK_CUDA(cudaSetDevice(0));
  double raw = seconds_per_call(
      [&] {
        if (d2h) CHECK_CUDA(cudaMemcpy(host.data_ptr(), dev.data_ptr(), static_cast<size_t>(n), cudaMemcpyDeviceToHost));
        else CHECK_CUDA(cudaMemcpy(dev.data_ptr(), host.data_ptr(), static_cast<size_t>(n), cudaMemcpyHostToDevice));
      },
      10);
  double total = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    Tensor out = d2h ? dev.to(Device::cpu(), /*non_blocking=*/pinned) : host.to(d, /*non_blocking=*/pinned);
    if (pinned) cuda::Stream::current(0).synchronize();
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(out.data_ptr());
  }
  const double per = total / static_cast<double>(state.iterations());
  state.counters["GB/s"] = static_cast<double>(n) / per / 1e9;
  state.counters["raw_GB/s"] = static_cast<double>(n) / raw / 1e9;
  state.counters["ratio_vs_raw"] = raw / per;
  state.SetLabel(std::string(d2h ? "D2H " : "H2D ") + (pinned ? "pinned" : "pageable") +
                 (d2h && pinned ? " (output pinned, from the cache)" : ""));
#endif
}
BENCHMARK(BM_HostDeviceCopy)
    ->ArgsProduct({{64 << 20, 512 << 20}, {0, 1}, {0, 1}})
    ->UseRealTime();

// Device-to-device copy of range(0) bytes: raw cudaMemcpyAsync (the bandwidth reference, bytes
// read + written) and kirzl's clone() of a contiguous tensor (cached output + the copy path).
void BM_DeviceCopy(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
#if KIRZL_HAS_CUDA
  const int64_t n = state.range(0);
  const Device d = Device::cuda(0);
  Tensor a = zeros({n / 4}, {.device = d});
  Tensor b = zeros({n / 4}, {.device = d});
  CHECK_CUDA(cudaSetDevice(0));
  cuda::Stream s = cuda::Stream::current(0);
  cuda::Event start(true), stop(true);
  // Raw reference: 20 copies timed with events.
  start.record(s);
  for (int i = 0; i < 20; ++i)
    CHECK_CUDA(cudaMemcpyAsync(b.data_ptr(), a.data_ptr(), static_cast<size_t>(n), cudaMemcpyDeviceToDevice,
                               static_cast<cudaStream_t>(s.native_handle())));
  stop.record(s);
  stop.synchronize();
  double raw_s = cuda::Event::elapsed_ms(start, stop) / 1e3 / 20;
  double total = 0;
  for (auto _ : state) {
    start.record(s);
    Tensor c = a.clone();
    stop.record(s);
    stop.synchronize();
    double t = cuda::Event::elapsed_ms(start, stop) / 1e3;
    state.SetIterationTime(t);
    total += t;
  }
  const double moved = 2.0 * static_cast<double>(n);
  const double per = total / static_cast<double>(state.iterations());
  state.counters["GB/s"] = moved / per / 1e9;
  state.counters["raw_memcpy_GB/s"] = moved / raw_s / 1e9;
  state.counters["ratio_vs_raw"] = raw_s / per;
  state.SetLabel("bytes read + written");
#endif
}
BENCHMARK(BM_DeviceCopy)->Arg(16 << 20)->Arg(256 << 20)->Arg(1 << 30)->UseManualTime();

}  // namespace
