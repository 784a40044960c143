// Internal: switches the calling thread to cudaStreamCaptureModeRelaxed for a scope.
//
// Note [relaxed capture mode]: CUDA calls some API calls (cudaMalloc, event queries and waits,
// synchronisation) potentially unsafe during stream capture: made by a capturing thread in
// cudaStreamCaptureModeThreadLocal, or by any thread while a capture in cudaStreamCaptureModeGlobal
// runs, they invalidate the capture. A thread in Relaxed mode may make them, as long as they do
// not touch the capture itself (querying an event recorded inside it fails in every mode). kirzl
// switches to Relaxed, push-pop as the documentation of cudaThreadExchangeStreamCaptureMode
// suggests, around calls whose objects are deliberately outside every graph: the allocator's
// cudaMalloc (Note [cuda graph memory]) and the profiler's timing events (Note [profiler]).
// Outside a capture it changes nothing.
#pragma once

#include <cuda_runtime.h>

#include "core/cuda/cuda_check.h"

namespace kirzl::cuda_rt {

class RelaxedCaptureMode {
 public:
  RelaxedCaptureMode() { KIRZL_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&previous_)); }
  ~RelaxedCaptureMode() { KIRZL_CUDA_CHECK_NOTHROW(cudaThreadExchangeStreamCaptureMode(&previous_)); }
  RelaxedCaptureMode(const RelaxedCaptureMode&) = delete;
  RelaxedCaptureMode& operator=(const RelaxedCaptureMode&) = delete;

 private:
  cudaStreamCaptureMode previous_ = cudaStreamCaptureModeRelaxed;
};

}  // namespace kirzl::cuda_rt
