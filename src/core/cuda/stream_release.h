// Internal: per-stream resources kept outside the allocators (the libraries' workspaces in
// kernels/cuda/library_context.cpp) are dropped when their stream is destroyed. cuda::Stream's
// destructor calls forget_stream once the stream's work has completed; that runs every hook
// added here, after the allocators have forgotten the stream. Without it, each destroyed stream
// that made a library call left its workspace behind (32 MiB for cuBLASLt), and a cuda::Graph
// creates one such stream per capture.
#pragma once

namespace kirzl::cuda_rt {

/// Called with the destroyed stream's handle (cudaStream_t as void*) and device. Must not throw.
using StreamReleaseHook = void (*)(void* stream, int device) noexcept;

/// Adds `hook` (once per hook; adding it again does nothing). Thread-safe.
void add_stream_release_hook(StreamReleaseHook hook);

/// Runs every hook for a destroyed stream (CudaBackend::forget_stream).
void run_stream_release_hooks(void* stream, int device) noexcept;

}  // namespace kirzl::cuda_rt
