// dev/cuda/: shared by the standalone kernel drivers (see README.md). Error checks, random
// inputs, a validation against the CPU reference that names the first bad element, and a timer.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#define CUDA_CHECK(call)                                                                             \
  do {                                                                                               \
    cudaError_t err_ = (call);                                                                       \
    if (err_ != cudaSuccess) {                                                                       \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", #call, __FILE__, __LINE__, cudaGetErrorString(err_)); \
      std::exit(1);                                                                                  \
    }                                                                                                \
  } while (0)

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

/// Uniform values in [lo, hi) from a fixed seed.
inline std::vector<float> random_floats(size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& e : v) e = d(gen);
  return v;
}

/// A device copy of `v`.
inline float* to_device(const std::vector<float>& v) {
  float* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, v.size() * sizeof(float)));
  CUDA_CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
  return p;
}

/// A device buffer of n floats filled with NaN (0xFF bytes): unwritten elements fail validation.
inline float* poisoned_device(size_t n) {
  float* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
  CUDA_CHECK(cudaMemset(p, 0xFF, n * sizeof(float)));
  return p;
}

/// Compares a device result with the CPU reference: |got - want| <= tol * (1 + |want|).
inline bool validate(const char* what, const float* device_result, const std::vector<float>& want, float tol) {
  std::vector<float> got(want.size());
  CUDA_CHECK(cudaMemcpy(got.data(), device_result, want.size() * sizeof(float), cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * (1 + std::fabs(want[i])))) {
      std::printf("%s: MISMATCH at %zu: %g vs reference %g\n", what, i, got[i], want[i]);
      return false;
    }
  std::printf("%s: OK (%zu elements)\n", what, want.size());
  return true;
}

/// Milliseconds per call of `launch` (after a warm-up), by CUDA events.
template <class F>
float time_ms(F launch, int reps = 100) {
  launch();
  CUDA_CHECK(cudaGetLastError());
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  CUDA_CHECK(cudaEventRecord(start));
  for (int i = 0; i < reps; ++i) launch();
  CUDA_CHECK(cudaEventRecord(stop));
  CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  return ms / reps;
}

/// The kernel number from argv[1] (default 1), checked against [1, count].
inline int kernel_number(int argc, char** argv, int count, const char* program) {
  const int k = argc > 1 ? std::atoi(argv[1]) : 1;
  if (k < 1 || k > count) {
    std::fprintf(stderr, "usage: %s [kernel 1..%d]\n", program, count);
    std::exit(2);
  }
  return k;
}
