// The CUDA runtime side of kirzl::cuda::Graph (CudaBackend methods; the class itself is in
// core/cuda_graph.cpp, Note [cuda backend]): stream capture, instantiation, launch, and the
// allocator's private pool around them (Note [cuda graph memory]).
#include <cuda_runtime.h>

#include <cstdio>

#include "core/cuda/allocators.h"
#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_guard.h"

namespace kirzl::cuda_rt {
namespace {

cudaStreamCaptureMode to_cuda(cuda::CaptureMode mode) {
  switch (mode) {
    case cuda::CaptureMode::Global:
      return cudaStreamCaptureModeGlobal;
    case cuda::CaptureMode::Relaxed:
      return cudaStreamCaptureModeRelaxed;
    case cuda::CaptureMode::ThreadLocal:
      break;
  }
  return cudaStreamCaptureModeThreadLocal;
}

alloc::StreamRef pool_of(void* stream, int device) { return stream_ref(static_cast<cudaStream_t>(stream), device); }

// Ends the capture of `stream` whatever state it is in and destroys what it captured. Returns
// cudaStreamEndCapture's result (cudaErrorStreamCaptureInvalidated when CUDA invalidated it).
cudaError_t end_and_discard(cudaStream_t stream) noexcept {
  cudaGraph_t graph = nullptr;
  cudaError_t err = cudaStreamEndCapture(stream, &graph);
  if (graph) KIRZL_CUDA_CHECK_NOTHROW(cudaGraphDestroy(graph));
  if (err != cudaSuccess) (void)cudaGetLastError();  // capture errors are not sticky: clear the last error
  return err;
}

}  // namespace

bool CudaBackend::stream_capturing(void* stream, int device) {
  DeviceGuard guard(device);  // cudaStreamLegacy means the current device's stream
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaError_t err = cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &status);
  if (err == cudaErrorStreamCaptureImplicit) {
    // The legacy default stream while a blocking stream of the device captures: using it would
    // be invalid, so it counts as capturing (the other capture is not affected by the question).
    (void)cudaGetLastError();
    return true;
  }
  KIRZL_CUDA_CHECK(err);
  // An invalidated capture still has to be ended: count it as capturing.
  return status != cudaStreamCaptureStatusNone;
}

void CudaBackend::begin_capture(void* stream, int device, cuda::CaptureMode mode) {
  DeviceGuard guard(device);
  device_allocator(device).begin_capture(pool_of(stream, device), mode == cuda::CaptureMode::Global);
  cudaError_t err = cudaStreamBeginCapture(static_cast<cudaStream_t>(stream), to_cuda(mode));
  if (err != cudaSuccess) {
    device_allocator(device).end_capture(pool_of(stream, device));
    device_allocator(device).release_pool(pool_of(stream, device));
    KIRZL_CUDA_CHECK(err);
  }
}

GraphHandles CudaBackend::end_capture(void* stream, int device) {
  DeviceGuard guard(device);
  auto s = static_cast<cudaStream_t>(stream);
  device_allocator(device).end_capture(pool_of(stream, device));
  cudaGraph_t graph = nullptr;
  cudaError_t err = cudaStreamEndCapture(s, &graph);
  if (err != cudaSuccess) {
    if (graph) KIRZL_CUDA_CHECK_NOTHROW(cudaGraphDestroy(graph));
    (void)cudaGetLastError();
    device_allocator(device).release_pool(pool_of(stream, device));
    KIRZL_FAIL(ErrorCode::Cuda, "cuda::Graph::capture: CUDA rejected the capture: ", cudaGetErrorName(err), " (",
               cudaGetErrorString(err),
               "). The step made a CUDA call that cannot be captured (a synchronisation, a legacy-stream use, or "
               "work on a stream that was not forked from the capture stream and joined back); nothing was captured");
  }
  cudaGraphExec_t exec = nullptr;
  err = cudaGraphInstantiate(&exec, graph, 0);
  if (err != cudaSuccess) {
    KIRZL_CUDA_CHECK_NOTHROW(cudaGraphDestroy(graph));
    (void)cudaGetLastError();
    device_allocator(device).release_pool(pool_of(stream, device));
    KIRZL_FAIL(ErrorCode::Cuda, "cuda::Graph::capture: cudaGraphInstantiate failed: ", cudaGetErrorName(err), " (",
               cudaGetErrorString(err), ")");
  }
  return {graph, exec};
}

void CudaBackend::abort_capture(void* stream, int device) noexcept {
  DeviceGuard guard(device, std::nothrow);
  (void)end_and_discard(static_cast<cudaStream_t>(stream));
  try {
    device_allocator(device).end_capture(pool_of(stream, device));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kirzl: ending the allocator's capture failed: %s\n", e.what());
  }
  device_allocator(device).release_pool(pool_of(stream, device));  // nothing will replay
}

void CudaBackend::launch_graph(void* exec, void* stream, int device) {
  DeviceGuard guard(device);
  KIRZL_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), static_cast<cudaStream_t>(stream)));
}

void CudaBackend::destroy_graph(GraphHandles graph, void* pool_stream, int device) noexcept {
  DeviceGuard guard(device, std::nothrow);
  if (graph.exec) KIRZL_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph.exec)));
  if (graph.graph) KIRZL_CUDA_CHECK_NOTHROW(cudaGraphDestroy(static_cast<cudaGraph_t>(graph.graph)));
  device_allocator(device).release_pool(pool_of(pool_stream, device));
}

}  // namespace kirzl::cuda_rt
